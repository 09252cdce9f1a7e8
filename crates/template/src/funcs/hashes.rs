//! sprig's hash functions.

use super::*;

pub(super) fn sha1sum(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    str_bytes(&a, |s| hex::encode(sha1::Sha1::digest(s)).into_bytes())
}

pub(super) fn sha256sum(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    str_bytes(&a, |s| hex::encode(sha2::Sha256::digest(s)).into_bytes())
}

pub(super) fn sha512sum(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    str_bytes(&a, |s| hex::encode(sha2::Sha512::digest(s)).into_bytes())
}

pub(super) fn adler32sum(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    str_bytes(&a, |s| adler32(s).to_string().into_bytes())
}

fn adler32(s: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &c in s {
        a = (a + u32::from(c)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}
