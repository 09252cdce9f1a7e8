//! The X25519 identity of an unencrypted OpenSSH Ed25519 key, as ssh-to-age and sops derive
//! it: the clamped first half of SHA-512(seed) (RFC 8032 §5.1.5).
//! Format: <https://github.com/openssh/openssh-portable/blob/master/PROTOCOL.key>.

use base64::Engine as _;
use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

/// `None` for anything but an unencrypted single Ed25519 key.
pub(super) fn x25519_from_openssh(pem: &[u8]) -> Option<age::x25519::Identity> {
    let text = std::str::from_utf8(pem).ok()?;
    let body: String = text
        .trim()
        .strip_prefix("-----BEGIN OPENSSH PRIVATE KEY-----")?
        .strip_suffix("-----END OPENSSH PRIVATE KEY-----")?
        .split_whitespace()
        .collect();
    let blob = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .ok()?,
    );
    let mut r = Reader(blob.strip_prefix(b"openssh-key-v1\0")?);
    if r.string()? != b"none" || r.string()? != b"none" {
        return None; // encrypted: derived after unlocking is not supported
    }
    r.string()?; // kdf options
    if r.u32()? != 1 {
        return None;
    }
    r.string()?; // public key
    let mut private = Reader(r.string()?);
    if private.u32()? != private.u32()? || private.string()? != b"ssh-ed25519" {
        return None;
    }
    private.string()?; // public part
    let secret = private.string()?;
    let seed = secret.get(..32)?;
    let hash = Zeroizing::new(Sha512::digest(seed));
    let mut scalar = Zeroizing::new([0u8; 32]);
    scalar.copy_from_slice(&hash[..32]);
    scalar[0] &= 248;
    scalar[31] &= 127;
    scalar[31] |= 64;
    let encoded = Zeroizing::new(bech32_upper("age-secret-key-", &scalar[..]));
    encoded.parse().ok()
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u32(&mut self) -> Option<u32> {
        let (head, rest) = self.0.split_first_chunk::<4>()?;
        self.0 = rest;
        Some(u32::from_be_bytes(*head))
    }

    fn string(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.u32()?).ok()?;
        if len > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(head)
    }
}

/// BIP-173 Bech32, upper case (age's secret-key encoding).
fn bech32_upper(hrp: &str, data: &[u8]) -> String {
    const CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    fn polymod(values: &[u8]) -> u32 {
        const GEN: [u32; 5] = [
            0x3b6a_57b2,
            0x2650_8e6d,
            0x1ea1_19fa,
            0x3d42_33dd,
            0x2a14_62b3,
        ];
        let mut chk = 1u32;
        for &v in values {
            let top = chk >> 25;
            chk = ((chk & 0x01ff_ffff) << 5) ^ u32::from(v);
            for (i, g) in GEN.iter().enumerate() {
                if (top >> i) & 1 == 1 {
                    chk ^= g;
                }
            }
        }
        chk
    }
    let mut five = Zeroizing::new(Vec::with_capacity(data.len() * 8 / 5 + 1));
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in data {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            five.push(((acc >> bits) & 31) as u8);
        }
    }
    if bits > 0 {
        five.push(((acc << (5 - bits)) & 31) as u8);
    }
    let mut values: Vec<u8> = hrp.bytes().map(|c| c >> 5).collect();
    values.push(0);
    values.extend(hrp.bytes().map(|c| c & 31));
    values.extend_from_slice(&five);
    values.extend_from_slice(&[0; 6]);
    let checksum = polymod(&values) ^ 1;
    let mut out = String::with_capacity(hrp.len() + 1 + five.len() + 6);
    out.push_str(hrp);
    out.push('1');
    for &d in five.iter() {
        out.push(char::from(CHARSET[usize::from(d)]));
    }
    for i in 0..6 {
        out.push(char::from(
            CHARSET[((checksum >> (5 * (5 - i))) & 31) as usize],
        ));
    }
    out.to_uppercase()
}
