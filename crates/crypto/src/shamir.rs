//! Shamir secret sharing over GF(2^8), byte-compatible with sops (a fork of HashiCorp Vault's).
//!
//! - Field: GF(2^8) with the AES polynomial x^8 + x^4 + x^3 + x + 1; multiplication in constant time.
//! - One random polynomial of degree `threshold - 1` per secret byte; its intercept is the byte.
//! - Share `i` is `y_0 … y_{n-1} || x` with **x = i + 1** (sops uses sequential x; Vault random).
//! - Combine: Lagrange interpolation at x = 0; duplicate x coordinates are rejected.

use zeroize::Zeroizing;

use crate::{Entropy, Error, Result, SecretBytes};

/// Constant-time multiplication in GF(2^8) (Russian-peasant, no table lookups, no branches on data).
fn mul(mut a: u8, mut b: u8) -> u8 {
    let mut r = 0u8;
    for _ in 0..8 {
        r ^= a & 0u8.wrapping_sub(b & 1);
        let hi = a >> 7;
        a = (a << 1) ^ (0x1b & 0u8.wrapping_sub(hi));
        b >>= 1;
    }
    r
}

/// Multiplicative inverse as a^254 (constant time); inverse(0) is 0 and never used.
fn inverse(a: u8) -> u8 {
    let mut result = 1u8;
    let mut base = a;
    let mut e = 254u8;
    while e > 0 {
        if e & 1 == 1 {
            result = mul(result, base);
        }
        base = mul(base, base);
        e >>= 1;
    }
    result
}

fn div(a: u8, b: u8) -> u8 {
    mul(a, inverse(b))
}

/// Splits `secret` into `parts` shares, any `threshold` of which recover it.
///
/// Randomness is drawn from `rng` per secret byte, `threshold - 1` coefficients at a time.
pub fn split(
    secret: &[u8],
    parts: usize,
    threshold: usize,
    rng: &mut dyn Entropy,
) -> Result<Vec<SecretBytes>> {
    if parts < threshold {
        return Err(Error::Shamir("parts cannot be less than threshold"));
    }
    if parts > 255 {
        return Err(Error::Shamir("parts cannot exceed 255"));
    }
    if threshold < 2 {
        return Err(Error::Shamir("threshold must be at least 2"));
    }
    if secret.is_empty() {
        return Err(Error::Shamir("cannot split an empty secret"));
    }
    let mut shares: Vec<Zeroizing<Vec<u8>>> = (0..parts)
        .map(|i| {
            let mut s = Zeroizing::new(vec![0u8; secret.len() + 1]);
            // parts <= 255, so i + 1 fits in a byte.
            s[secret.len()] = (i + 1) as u8;
            s
        })
        .collect();
    let mut coeffs = Zeroizing::new(vec![0u8; threshold]);
    for (idx, &byte) in secret.iter().enumerate() {
        coeffs[0] = byte;
        rng.fill(&mut coeffs[1..])?;
        for (i, share) in shares.iter_mut().enumerate() {
            let x = (i + 1) as u8;
            // Horner's rule from the highest coefficient down.
            let mut y = 0u8;
            for &c in coeffs.iter().rev() {
                y = mul(y, x) ^ c;
            }
            share[idx] = y;
        }
    }
    Ok(shares
        .into_iter()
        .map(|s| SecretBytes::from_slice(&s))
        .collect())
}

/// Recombines shares produced by [`split`] (or by sops). At least two shares of equal length.
pub fn combine(shares: &[SecretBytes]) -> Result<SecretBytes> {
    if shares.len() < 2 {
        return Err(Error::Shamir(
            "less than two parts cannot be used to reconstruct the secret",
        ));
    }
    let len = shares[0].len();
    if len < 2 {
        return Err(Error::Shamir("parts must be at least two bytes"));
    }
    if shares.iter().any(|s| s.len() != len) {
        return Err(Error::Shamir("all parts must be the same length"));
    }
    let xs: Vec<u8> = shares.iter().map(|s| s.expose()[len - 1]).collect();
    for (i, x) in xs.iter().enumerate() {
        if xs[..i].contains(x) {
            return Err(Error::Shamir("duplicate part detected"));
        }
    }
    let mut secret = Zeroizing::new(vec![0u8; len - 1]);
    for (idx, out) in secret.iter_mut().enumerate() {
        let mut acc = 0u8;
        for (i, share) in shares.iter().enumerate() {
            let mut basis = 1u8;
            for (j, &xj) in xs.iter().enumerate() {
                if i != j {
                    basis = mul(basis, div(xj, xs[i] ^ xj));
                }
            }
            acc ^= mul(share.expose()[idx], basis);
        }
        *out = acc;
    }
    Ok(SecretBytes::from_slice(&secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_inverse_is_inverse() {
        for a in 1..=255u8 {
            assert_eq!(mul(a, inverse(a)), 1, "a={a}");
        }
    }

    #[test]
    fn aes_field_known_products() {
        // FIPS-197 §4.2: {57} • {83} = {c1}, {57} • {13} = {fe}.
        assert_eq!(mul(0x57, 0x83), 0xc1);
        assert_eq!(mul(0x57, 0x13), 0xfe);
    }
}
