//! Encodings: base64, base32, hex, JSON and YAML.

use super::*;

pub(super) fn b64enc(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    str_bytes(&a, |s| {
        base64::engine::general_purpose::STANDARD
            .encode(s)
            .into_bytes()
    })
}

pub(super) fn b64dec(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 1)?;
    let s = s_arg(&a[0])?;
    // Go's StdEncoding skips CR and LF and accepts non-zero trailing bits.
    let clean: Vec<u8> = s
        .iter()
        .copied()
        .filter(|c| *c != b'\r' && *c != b'\n')
        .collect();
    Ok(Value::Str(match GO_STD_B64.decode(&clean) {
        Ok(d) => d,
        Err(e) => go_b64_error(&e, clean.len()).into_bytes(),
    }))
}

pub(super) fn b32enc(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    str_bytes(&a, base32_encode)
}

pub(super) fn b32dec(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 1)?;
    let s = s_arg(&a[0])?;
    Ok(Value::Str(base32_decode(s).unwrap_or_else(|at| {
        format!("illegal base32 data at input byte {at}").into_bytes()
    })))
}

pub(super) fn hexdec(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 1)?;
    let s = s_arg(&a[0])?;
    hex::decode(s)
        .map(Value::Str)
        .map_err(|_| ferr("invalid hex"))
}

pub(super) fn to_yaml(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    arity(&a, 1)?;
    crate::yaml::to_yaml(&a[0], c.meter.max_bytes())?
        .map(Value::Str)
        .map_err(ferr)
}

pub(super) fn from_yaml(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 1)?;
    crate::yaml::from_yaml(s_arg(&a[0])?).map_err(ferr)
}

pub(super) fn to_json(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    arity(&a, 1)?;
    let max = c.meter.max_bytes();
    let out = match c.name {
        "toJson" => crate::json::encode(&a[0], true, false, max),
        "toRawJson" => crate::json::encode(&a[0], false, false, max),
        _ => crate::json::encode(&a[0], true, true, max),
    };
    Ok(Value::Str(out?))
}

pub(super) fn from_json(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    arity(&a, 1)?;
    let s = s_arg(&a[0])?;
    match serde_json::from_slice::<serde_json::Value>(s) {
        Ok(j) => Ok(Value::from_json(&j)),
        Err(_) if c.must => Err(ferr("invalid JSON")),
        Err(_) => Ok(Value::Nil),
    }
}

const GO_STD_B64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireCanonical),
);

/// sprig's b64dec prints the decode error (a position, no data) instead of failing.
fn go_b64_error(e: &base64::DecodeError, len: usize) -> String {
    let i = match e {
        base64::DecodeError::InvalidByte(i, _) | base64::DecodeError::InvalidLastSymbol(i, _) => *i,
        // Go reports the start of the incomplete quantum.
        base64::DecodeError::InvalidLength(n) => n / 4 * 4,
        base64::DecodeError::InvalidPadding => len / 4 * 4,
    };
    format!("illegal base64 data at input byte {i}")
}

const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn base32_encode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in s.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let n = u64::from_be_bytes([0, 0, 0, buf[0], buf[1], buf[2], buf[3], buf[4]]);
        let chars = (chunk.len() * 8).div_ceil(5);
        for i in 0..8 {
            if i < chars {
                out.push(B32[((n >> (35 - 5 * i)) & 31) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
    out
}

/// base32.StdEncoding.DecodeString; the error is the offending input position.
fn base32_decode(s: &[u8]) -> Result<Vec<u8>, usize> {
    let s: Vec<u8> = s
        .iter()
        .copied()
        .filter(|c| *c != b'\r' && *c != b'\n')
        .collect();
    if let Some(i) = s.iter().position(|c| *c != b'=' && !B32.contains(c)) {
        return Err(i);
    }
    if !s.len().is_multiple_of(8) {
        return Err(s.len() / 8 * 8);
    }
    let mut out = Vec::new();
    for (ci, chunk) in s.chunks(8).enumerate() {
        let pad = chunk.iter().rev().take_while(|c| **c == b'=').count();
        let mut n: u64 = 0;
        for (i, &c) in chunk[..8 - pad].iter().enumerate() {
            let v = B32.iter().position(|&b| b == c).ok_or(ci * 8 + i)? as u64;
            n = (n << 5) | v;
        }
        n <<= 5 * pad as u64;
        let bytes = match pad {
            0 => 5,
            1 => 4,
            3 => 3,
            4 => 2,
            6 => 1,
            _ => return Err(ci * 8),
        };
        let be = n.to_be_bytes();
        out.extend_from_slice(&be[3..3 + bytes]);
    }
    Ok(out)
}
