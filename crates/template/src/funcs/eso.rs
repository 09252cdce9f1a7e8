//! External Secrets' certificate and key functions; the work is done in `crate::eso`.

use super::*;

pub(super) fn filter_pem(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    arity(&a, 2)?;
    let (kind, input) = (s_arg(&a[0])?, s_arg(&a[1])?);
    if c.name == "filterPEM" {
        crate::eso::filter_pem(kind, input).map_err(ferr)
    } else {
        crate::eso::filter_cert_chain(kind, input).map_err(ferr)
    }
}

pub(super) fn cert_sans(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 1)?;
    crate::eso::cert_sans(s_arg(&a[0])?).map_err(ferr)
}

pub(super) fn pkcs12(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    let (pass, input): (&[u8], &[u8]) = if c.name.ends_with("Pass") {
        arity(&a, 2)?;
        (s_arg(&a[0])?, s_arg(&a[1])?)
    } else {
        arity(&a, 1)?;
        (b"", s_arg(&a[0])?)
    };
    if c.name.starts_with("pkcs12key") {
        crate::eso::pkcs12_key(pass, input, c.name).map_err(ferr)
    } else {
        crate::eso::pkcs12_cert(pass, input, c.name).map_err(ferr)
    }
}

pub(super) fn pem_to_pkcs12(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    let pass: &[u8] = if c.name.ends_with("Pass") {
        arity(&a, 3)?;
        s_arg(&a[2])?
    } else {
        arity(&a, 2)?;
        b""
    };
    let full = c.name.starts_with("full");
    crate::eso::pem_to_pkcs12(s_arg(&a[0])?, s_arg(&a[1])?, pass, full, c.name).map_err(ferr)
}

pub(super) fn pem_truststore_to_pkcs12(a: Vec<Value>, c: &mut Call<'_>) -> FResult {
    let pass: &[u8] = if c.name.ends_with("Pass") {
        arity(&a, 2)?;
        s_arg(&a[1])?
    } else {
        arity(&a, 1)?;
        b""
    };
    crate::eso::pem_truststore_to_pkcs12(s_arg(&a[0])?, pass, c.name).map_err(ferr)
}

pub(super) fn rsa_decrypt(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 4)?;
    crate::eso::rsa_decrypt(s_arg(&a[0])?, s_arg(&a[1])?, s_arg(&a[2])?, s_arg(&a[3])?)
        .map_err(ferr)
}

pub(super) fn jwk_public_key_pem(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 1)?;
    crate::eso::jwk_public_pem(s_arg(&a[0])?).map_err(ferr)
}

pub(super) fn jwk_private_key_pem(a: Vec<Value>, _: &mut Call<'_>) -> FResult {
    arity(&a, 1)?;
    crate::eso::jwk_private_pem(s_arg(&a[0])?).map_err(ferr)
}
