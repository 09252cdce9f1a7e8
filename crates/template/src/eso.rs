//! External Secrets' own template functions on PEM, X.509, PKCS#12 and JWK data.
//!
//! Outputs that Go computes deterministically (PEM text, re-encoded keys) follow Go's
//! `encoding/pem`, `crypto/x509` and go-pkcs12's decoder byte for byte; PKCS#12 *output* has
//! random salts and is checked by opening it with openssl (see docs/template.md). Errors name
//! the function and what is wrong, never the data.

use std::collections::BTreeMap;

use base64::Engine as _;
use sha1::Digest as _;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer as _;

use crate::value::Value;

const PEM_START: &[u8] = b"-----BEGIN ";
const PEM_END: &[u8] = b"\n-----END ";
const PEM_EOL: &[u8] = b"-----";

/// Go's `encoding/base64.StdEncoding` (padding required, trailing bits ignored).
const GO_STD_B64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireCanonical),
);

/// A PEM block as Go's `pem.Block`.
pub(crate) struct PemBlock {
    typ: String,
    headers: BTreeMap<String, String>,
    bytes: Vec<u8>,
}

/// Go's `getLine`: the line without `\r\n`/`\n` and trailing spaces/tabs, the rest, and how
/// many bytes were consumed.
fn get_line(data: &[u8]) -> (&[u8], &[u8], usize) {
    let (mut i, j) = match data.iter().position(|&c| c == b'\n') {
        Some(i) => (i, i + 1),
        None => (data.len(), data.len()),
    };
    if j > i && i > 0 && data[i - 1] == b'\r' {
        i -= 1;
    }
    let mut line = &data[..i];
    while let [rest @ .., b' ' | b'\t'] = line {
        line = rest;
    }
    (line, &data[j..], j)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

fn trim_ascii_space(s: &[u8]) -> &[u8] {
    s.trim_ascii()
}

/// Go's `pem.Decode` (Go 1.26): the first END line, the last BEGIN line before it, headers,
/// base64 body; a malformed candidate is skipped. `Err` where Go would panic (a header run
/// past the END line).
pub(crate) fn pem_decode(data: &[u8]) -> Result<(Option<PemBlock>, &[u8]), ()> {
    let mut rest = data;
    let mut end_trailer: isize = 0;
    loop {
        if end_trailer < 0 || end_trailer as usize > rest.len() {
            return Ok((None, data));
        }
        rest = &rest[end_trailer as usize..];
        let Some(end) = find(rest, PEM_END) else {
            return Ok((None, data));
        };
        let mut end_index = end as isize;
        end_trailer = end_index + PEM_END.len() as isize;
        let begin = match rfind(&rest[..end], PEM_START) {
            Some(b) if b == 0 || rest[b - 1] == b'\n' => b,
            _ => continue,
        };
        let skip = begin + PEM_START.len();
        rest = &rest[skip..];
        end_index -= skip as isize;
        end_trailer -= skip as isize;
        let (type_line, next, consumed) = get_line(rest);
        rest = next;
        end_index -= consumed as isize;
        end_trailer -= consumed as isize;
        let Some(typ) = type_line.strip_suffix(PEM_EOL) else {
            continue;
        };
        let mut headers = BTreeMap::new();
        loop {
            if rest.is_empty() {
                return Ok((None, data));
            }
            let (line, next, consumed) = get_line(rest);
            let Some(colon) = line.iter().position(|&c| c == b':') else {
                break;
            };
            let key = String::from_utf8_lossy(trim_ascii_space(&line[..colon])).into_owned();
            let val = String::from_utf8_lossy(trim_ascii_space(&line[colon + 1..])).into_owned();
            headers.insert(key, val);
            rest = next;
            end_index -= consumed as isize;
            end_trailer -= consumed as isize;
        }
        if !headers.is_empty() && end_index < 0 {
            continue;
        }
        if end_trailer < 0 || end_trailer as usize > rest.len() {
            return Err(());
        }
        let trailer = &rest[end_trailer as usize..];
        let trailer_len = typ.len() + PEM_EOL.len();
        if trailer.len() < trailer_len {
            continue;
        }
        let (trailer, rest_of_end_line) = trailer.split_at(trailer_len);
        if !trailer.starts_with(typ) || !trailer.ends_with(PEM_EOL) {
            continue;
        }
        if !get_line(rest_of_end_line).0.is_empty() {
            continue;
        }
        let mut bytes = Vec::new();
        if end_index > 0 {
            let b64: Vec<u8> = rest[..end_index as usize]
                .iter()
                .copied()
                .filter(|c| !matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
                .collect();
            match GO_STD_B64.decode(&b64) {
                Ok(b) => bytes = b,
                Err(_) => continue,
            }
        }
        let after = (end_index + PEM_END.len() as isize - 1) as usize;
        let (_, rest, _) = get_line(rest.get(after..).ok_or(())?);
        return Ok((
            Some(PemBlock {
                typ: String::from_utf8_lossy(typ).into_owned(),
                headers,
                bytes,
            }),
            rest,
        ));
    }
}

/// Go's `pem.EncodeToMemory`: `Proc-Type` first, other headers sorted, 64-column base64.
pub(crate) fn pem_encode(b: &PemBlock) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(format!("-----BEGIN {}-----\n", b.typ).as_bytes());
    if !b.headers.is_empty() {
        if let Some(v) = b.headers.get("Proc-Type") {
            out.extend_from_slice(format!("Proc-Type: {v}\n").as_bytes());
        }
        for (k, v) in b.headers.iter().filter(|(k, _)| *k != "Proc-Type") {
            out.extend_from_slice(format!("{k}: {v}\n").as_bytes());
        }
        out.push(b'\n');
    }
    let b64 = GO_STD_B64.encode(&b.bytes);
    for line in b64.as_bytes().chunks(64) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.extend_from_slice(format!("-----END {}-----\n", b.typ).as_bytes());
    out
}

fn pem_of(typ: &str, der: &[u8]) -> Vec<u8> {
    pem_encode(&PemBlock {
        typ: typ.to_owned(),
        headers: BTreeMap::new(),
        bytes: der.to_vec(),
    })
}

/// ESO's `trimJunk`: everything before the first `-----BEGIN`.
fn trim_junk(input: &[u8]) -> &[u8] {
    find(input, b"-----BEGIN").map_or(input, |i| &input[i..])
}

fn fold_eq(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

/// `filterPEM TYPE input`: the blocks of that type (case-insensitive), re-encoded.
pub(crate) fn filter_pem(typ: &[u8], input: &[u8]) -> Result<Value, String> {
    let typ = String::from_utf8_lossy(typ);
    let mut data = trim_junk(input);
    let mut out = Vec::new();
    loop {
        let (block, rest) =
            pem_decode(data).map_err(|_| "filterPEM: malformed PEM headers".to_owned())?;
        data = rest;
        let Some(block) = block else { break };
        if fold_eq(&block.typ, &typ) {
            out.extend_from_slice(&pem_encode(&block));
        }
    }
    if out.is_empty() && !data.is_empty() {
        return Err("error filtering pem: found junk".into());
    }
    Ok(Value::Str(out))
}

/// The parts of an X.509 certificate the chain functions use.
struct Cert {
    der: Vec<u8>,
    /// `AuthorityKeyId` (None = Go's nil).
    aki: Option<Vec<u8>>,
    /// `SubjectKeyId`.
    ski: Option<Vec<u8>>,
}

fn parse_cert(der: &[u8], func: &str) -> Result<Cert, String> {
    let (rest, c) = x509_parser::certificate::X509Certificate::from_der(der)
        .map_err(|_| format!("{func}: a PEM block is not a valid X.509 certificate"))?;
    if !rest.is_empty() {
        return Err(format!("{func}: x509: trailing data after a certificate"));
    }
    let (mut aki, mut ski) = (None, None);
    for ext in c.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                aki = a.key_identifier.as_ref().map(|k| k.0.to_vec());
            }
            ParsedExtension::SubjectKeyIdentifier(k) => ski = Some(k.0.to_vec()),
            _ => {}
        }
    }
    Ok(Cert {
        der: der.to_vec(),
        aki,
        ski,
    })
}

/// Go's `bytes.Equal` on possibly-nil slices (nil equals empty).
fn same_id(a: &Option<Vec<u8>>, b: &Option<Vec<u8>>) -> bool {
    a.as_deref().unwrap_or_default() == b.as_deref().unwrap_or_default()
}

fn is_root(c: &Cert) -> bool {
    c.aki.is_none() || same_id(&c.aki, &c.ski)
}

fn certs_from_pem(input: &[u8], func: &str) -> Result<Vec<Cert>, String> {
    let mut data = input;
    let mut certs = Vec::new();
    loop {
        let (block, rest) =
            pem_decode(data).map_err(|_| format!("{func}: malformed PEM headers"))?;
        data = rest;
        let Some(block) = block else { break };
        certs.push(parse_cert(&block.bytes, func)?);
    }
    Ok(certs)
}

/// Orders certificates leaf → intermediates → root by AuthorityKeyId/SubjectKeyId links, as
/// ESO's `fetchX509CertChains` (no signature or trust checks: it only formats).
fn order_chain(certs: Vec<Cert>) -> Result<Vec<Cert>, String> {
    let n = certs.len();
    let mut parent = vec![None; n];
    let mut is_parent = vec![false; n];
    for i in 0..n {
        for j in 0..n {
            if i != j && same_id(&certs[i].aki, &certs[j].ski) {
                is_parent[j] = true;
                parent[i] = Some(j);
                break;
            }
        }
    }
    let mut leaf = None;
    for (i, p) in is_parent.iter().enumerate() {
        if !p {
            if leaf.is_some() {
                return Err("found multiple leaf or disjunct certificates".into());
            }
            leaf = Some(i);
        }
    }
    let mut at = leaf.ok_or("no leaf certificate found")?;
    let mut order = vec![at];
    while let Some(p) = parent[at] {
        if order.len() >= n {
            return Err("constructing chain resulted in cycle".into());
        }
        order.push(p);
        at = p;
    }
    let mut slots: Vec<Option<Cert>> = certs.into_iter().map(Some).collect();
    Ok(order.into_iter().filter_map(|i| slots[i].take()).collect())
}

/// `filterCertChain leaf|intermediate|root input`.
pub(crate) fn filter_cert_chain(kind: &[u8], input: &[u8]) -> Result<Value, String> {
    let certs = order_chain(certs_from_pem(input, "filterCertChain")?)
        .map_err(|e| format!("filterCertChain: {e}"))?;
    let out = match kind {
        b"leaf" => certs
            .first()
            .filter(|c| c.aki.is_some() && !same_id(&c.aki, &c.ski))
            .map(|c| pem_of("CERTIFICATE", &c.der))
            .unwrap_or_default(),
        b"intermediate" => certs
            .iter()
            .skip(1)
            .take_while(|c| !is_root(c))
            .flat_map(|c| pem_of("CERTIFICATE", &c.der))
            .collect(),
        b"root" => certs
            .last()
            .filter(|c| is_root(c))
            .map(|c| pem_of("CERTIFICATE", &c.der))
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    Ok(Value::Str(out))
}

/// `certSANs input`: DNS names, IP addresses, e-mail addresses, URIs of the first certificate.
pub(crate) fn cert_sans(input: &[u8]) -> Result<Value, String> {
    let (block, _) =
        pem_decode(trim_junk(input)).map_err(|_| "certSANs: malformed PEM headers".to_owned())?;
    let block = block.ok_or("certSANs: failed to decode PEM block")?;
    let (_, c) = x509_parser::certificate::X509Certificate::from_der(&block.bytes)
        .map_err(|_| "certSANs: failed to parse certificate".to_owned())?;
    let (mut dns, mut ips, mut emails, mut uris) = (vec![], vec![], vec![], vec![]);
    if let Ok(Some(san)) = c.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(s) => dns.push(s.to_string()),
                GeneralName::RFC822Name(s) => emails.push(s.to_string()),
                GeneralName::URI(s) => uris.push(s.to_string()),
                GeneralName::IPAddress(b) => ips.push(go_ip_string(b)),
                _ => {}
            }
        }
    }
    let all = dns.into_iter().chain(ips).chain(emails).chain(uris);
    Ok(Value::List(all.map(Value::str).collect()))
}

/// Go's `net.IP.String()`.
fn go_ip_string(b: &[u8]) -> String {
    match b.len() {
        4 => std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string(),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            let v6 = std::net::Ipv6Addr::from(a);
            match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => v6.to_string(),
            }
        }
        _ => format!("?{}", hex::encode(b)),
    }
}

// ---- PKCS#12

/// go-pkcs12's `DecodeChain`: the one private key, the first certificate and the others in file
/// order.
fn decode_pkcs12(
    pfx: &[u8],
    password: &str,
    func: &str,
) -> Result<(Vec<u8>, Vec<Vec<u8>>), String> {
    let archive = p12_keystore::Pkcs12Archive::from_pkcs12(pfx, password).map_err(|e| {
        format!("{func}: unable to decode pkcs12 (wrong password or not a PKCS#12 file): {e}")
    })?;
    let mut keys = archive.keys.into_iter();
    let key = keys
        .next()
        .ok_or_else(|| format!("{func}: pkcs12: private key missing"))?;
    if keys.next().is_some() {
        return Err(format!("{func}: pkcs12: expected exactly one key bag"));
    }
    if archive.certs.is_empty() {
        return Err(format!("{func}: pkcs12: certificate missing"));
    }
    let certs = archive
        .certs
        .iter()
        .map(|c| c.cert.as_der().to_vec())
        .collect();
    Ok((key.key.as_der().to_vec(), certs))
}

/// `pkcs12keyPass PASSWORD input` / `pkcs12key input`: the private key as PKCS#8 PEM.
pub(crate) fn pkcs12_key(password: &[u8], input: &[u8], func: &str) -> Result<Value, String> {
    let password =
        std::str::from_utf8(password).map_err(|_| format!("{func}: the password is not UTF-8"))?;
    let (key, _) = decode_pkcs12(input, password, func)?;
    let key = canonical_pkcs8(&key).ok_or_else(|| format!("{func}: unsupported private key"))?;
    Ok(Value::Str(pem_of("PRIVATE KEY", &key)))
}

/// `pkcs12certPass PASSWORD input` / `pkcs12cert input`: the certificates as PEM, leaf first
/// when they form one chain, else in file order.
pub(crate) fn pkcs12_cert(password: &[u8], input: &[u8], func: &str) -> Result<Value, String> {
    let password =
        std::str::from_utf8(password).map_err(|_| format!("{func}: the password is not UTF-8"))?;
    let (_, certs) = decode_pkcs12(input, password, func)?;
    let parsed = certs
        .iter()
        .map(|d| parse_cert(d, func))
        .collect::<Result<Vec<_>, _>>()?;
    let ders: Vec<Vec<u8>> = match order_chain(parsed) {
        Ok(ordered) => ordered.into_iter().map(|c| c.der).collect(),
        Err(_) => certs,
    };
    Ok(Value::Str(
        ders.iter().flat_map(|d| pem_of("CERTIFICATE", d)).collect(),
    ))
}

/// The first PEM block's bytes; Go dereferences a nil block (a panic, i.e. an error).
fn first_block<'a>(
    input: &'a [u8],
    func: &str,
    what: &str,
) -> Result<(PemBlock, &'a [u8]), String> {
    match pem_decode(input) {
        Ok((Some(b), rest)) => Ok((b, rest)),
        _ => Err(format!("{func}: the {what} is not PEM")),
    }
}

/// ESO's `parseCaCerts`: every remaining byte must be a PEM certificate.
fn all_certs(mut rest: &[u8], func: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (b, r) = first_block(rest, func, "certificate bundle")?;
        parse_cert(&b.bytes, func)?;
        out.push(b.bytes);
        rest = r;
    }
    Ok(out)
}

/// `pemToPkcs12Pass CERT KEY PASSWORD` and friends (`full` adds the rest of CERT as CA
/// certificates): base64 of a PKCS#12 file in go-pkcs12's `Modern` profile (PBES2 AES-256-CBC,
/// PBKDF2-HMAC-SHA256 and an HMAC-SHA256 MAC, 2048 iterations).
pub(crate) fn pem_to_pkcs12(
    cert: &[u8],
    key: &[u8],
    password: &[u8],
    full: bool,
    func: &str,
) -> Result<Value, String> {
    let password =
        std::str::from_utf8(password).map_err(|_| format!("{func}: the password is not UTF-8"))?;
    let (leaf, rest) = first_block(cert, func, "certificate")?;
    parse_cert(&leaf.bytes, func)?;
    let cas = if full {
        all_certs(rest, func)?
    } else {
        Vec::new()
    };
    let (key_block, _) = first_block(key, func, "private key")?;
    let pkcs8 = any_key_to_pkcs8(&key_block.bytes)
        .ok_or_else(|| format!("{func}: unable to parse private key type"))?;
    let local_key_id = sha1::Sha1::digest(&leaf.bytes).to_vec();
    let mut chain = vec![cert_obj(&leaf.bytes, func)?];
    for ca in &cas {
        chain.push(cert_obj(ca, func)?);
    }
    let key = p12_keystore::PrivateKey::from_der(&pkcs8)
        .map_err(|_| format!("{func}: unable to parse private key type"))?;
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry(
        "1",
        p12_keystore::KeyStoreEntry::PrivateKeyChain(p12_keystore::PrivateKeyChain::new(
            local_key_id,
            key,
            chain,
        )),
    );
    write_store(&store, password, func)
}

/// `pemTruststoreToPKCS12Pass CERTS PASSWORD`: a Java trust store of the certificates.
pub(crate) fn pem_truststore_to_pkcs12(
    certs: &[u8],
    password: &[u8],
    func: &str,
) -> Result<Value, String> {
    let password =
        std::str::from_utf8(password).map_err(|_| format!("{func}: the password is not UTF-8"))?;
    let mut store = p12_keystore::KeyStore::new();
    for (i, der) in all_certs(certs, func)?.iter().enumerate() {
        let c = cert_obj(der, func)?;
        // Aliases must be unique; go-pkcs12 uses the subject as the friendly name.
        let alias = format!("{} #{i}", c.subject());
        store.add_entry(&alias, p12_keystore::KeyStoreEntry::Certificate(c));
    }
    write_store(&store, password, func)
}

fn cert_obj(der: &[u8], func: &str) -> Result<p12_keystore::Certificate, String> {
    p12_keystore::Certificate::from_der(der)
        .map_err(|_| format!("{func}: a certificate is not valid X.509"))
}

fn write_store(
    store: &p12_keystore::KeyStore,
    password: &str,
    func: &str,
) -> Result<Value, String> {
    let pfx = store
        .writer(password)
        .encryption_algorithm(p12_keystore::EncryptionAlgorithm::PbeWithHmacSha256AndAes256)
        .encryption_iterations(2048)
        .mac_algorithm(p12_keystore::MacAlgorithm::HmacSha256)
        .mac_iterations(2048)
        .write()
        .map_err(|e| format!("{func}: writing PKCS#12 failed: {e}"))?;
    Ok(Value::str(GO_STD_B64.encode(pfx)))
}

// ---- keys and DER

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let len = n.to_be_bytes();
        let skip = len.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (len.len() - skip) as u8);
        out.extend_from_slice(&len[skip..]);
    }
    out.extend_from_slice(content);
    out
}

fn der_seq(parts: &[Vec<u8>]) -> Vec<u8> {
    der_tlv(0x30, &parts.concat())
}

/// A non-negative INTEGER from big-endian magnitude bytes.
fn der_uint(mag: &[u8]) -> Vec<u8> {
    let skip = mag.iter().take_while(|b| **b == 0).count();
    let mut m = mag[skip..].to_vec();
    if m.is_empty() || m[0] & 0x80 != 0 {
        m.insert(0, 0);
    }
    der_tlv(0x02, &m)
}

fn der_oid(oid: &[u8]) -> Vec<u8> {
    der_tlv(0x06, oid)
}

fn der_bits(b: &[u8]) -> Vec<u8> {
    let mut c = vec![0u8];
    c.extend_from_slice(b);
    der_tlv(0x03, &c)
}

const DER_NULL: [u8; 2] = [0x05, 0x00];

/// Reads one TLV: (tag, content, rest). Short and long definite lengths only.
fn der_read(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, b) = b.split_first()?;
    let (&l, mut b) = b.split_first()?;
    let len = if l < 0x80 {
        l as usize
    } else {
        let n = (l & 0x7f) as usize;
        if n == 0 || n > 4 || b.len() < n {
            return None;
        }
        let v = b[..n].iter().fold(0usize, |a, x| (a << 8) | *x as usize);
        b = &b[n..];
        v
    };
    (b.len() >= len).then(|| (tag, &b[..len], &b[len..]))
}

/// Parses PKCS#8 and returns what Go's `MarshalPKCS8PrivateKey` writes for the key: RSA and
/// Ed25519 as they are, EC with the curve in the algorithm and none inside `ECPrivateKey`.
fn canonical_pkcs8(der: &[u8]) -> Option<Vec<u8>> {
    let (tag, body, _) = der_read(der)?;
    if tag != 0x30 {
        return None;
    }
    let (_, version, r) = der_read(body)?;
    let (_, alg, r) = der_read(r)?;
    let (ktag, key, _) = der_read(r)?;
    if version != [0] && version != [1] || ktag != 0x04 {
        return None;
    }
    let (_, oid, params) = der_read(alg)?;
    if oid == OID_RSA {
        Some(rsa_pkcs8(key))
    } else if oid == OID_ED25519 {
        let (t, seed, _) = der_read(key)?;
        (t == 0x04 && seed.len() == 32).then(|| ed25519_pkcs8(seed))
    } else if oid == OID_EC {
        let (t, curve, _) = der_read(params)?;
        if t != 0x06 {
            return None;
        }
        ec_pkcs8_from_sec1(key, Some(curve))
    } else {
        None
    }
}

fn rsa_pkcs8(pkcs1: &[u8]) -> Vec<u8> {
    der_seq(&[
        der_uint(&[0]),
        der_seq(&[der_oid(OID_RSA), DER_NULL.to_vec()]),
        der_tlv(0x04, pkcs1),
    ])
}

fn ed25519_pkcs8(seed: &[u8]) -> Vec<u8> {
    der_seq(&[
        der_uint(&[0]),
        der_seq(&[der_oid(OID_ED25519)]),
        der_tlv(0x04, &der_tlv(0x04, seed)),
    ])
}

fn curve_sizes(oid: &[u8]) -> Option<(usize, usize)> {
    // (private scalar bytes, field element bytes)
    match oid {
        OID_P256 => Some((32, 32)),
        OID_P384 => Some((48, 48)),
        OID_P521 => Some((66, 66)),
        _ => None,
    }
}

fn ec_pkcs8(curve: &[u8], d: &[u8], point: Option<&[u8]>) -> Vec<u8> {
    let mut inner = vec![der_uint(&[1]), der_tlv(0x04, d)];
    if let Some(p) = point {
        inner.push(der_tlv(0xa1, &der_bits(p)));
    }
    der_seq(&[
        der_uint(&[0]),
        der_seq(&[der_oid(OID_EC), der_oid(curve)]),
        der_tlv(0x04, &der_seq(&inner)),
    ])
}

/// SEC1 `ECPrivateKey` → Go's PKCS#8 form (curve from the PKCS#8 algorithm or the SEC1
/// parameters).
fn ec_pkcs8_from_sec1(sec1: &[u8], curve: Option<&[u8]>) -> Option<Vec<u8>> {
    let (t, body, _) = der_read(sec1)?;
    if t != 0x30 {
        return None;
    }
    let (_, version, mut r) = der_read(body)?;
    let (dt, d, rest) = der_read(r)?;
    if version != [1] || dt != 0x04 {
        return None;
    }
    r = rest;
    let (mut params, mut point) = (None, None);
    while !r.is_empty() {
        let (tag, content, rest) = der_read(r)?;
        match tag {
            0xa0 => {
                let (ot, oid, _) = der_read(content)?;
                if ot != 0x06 {
                    return None;
                }
                params = Some(oid);
            }
            0xa1 => {
                let (bt, bits, _) = der_read(content)?;
                if bt != 0x03 || bits.first() != Some(&0) {
                    return None;
                }
                point = Some(&bits[1..]);
            }
            _ => return None,
        }
        r = rest;
    }
    let curve = curve.or(params)?;
    let (dlen, _) = curve_sizes(curve)?;
    let d = pad_to(d, dlen)?;
    // Go writes the public point it computed; without one in the input hush cannot.
    Some(ec_pkcs8(curve, &d, Some(point?)))
}

fn pad_to(b: &[u8], len: usize) -> Option<Vec<u8>> {
    let skip = b.iter().take_while(|x| **x == 0).count();
    let m = &b[skip..];
    if m.len() > len {
        return None;
    }
    let mut out = vec![0u8; len - m.len()];
    out.extend_from_slice(m);
    Some(out)
}

/// ESO's `parsePrivateKey` order: PKCS#1 RSA, PKCS#8, SEC1 EC.
fn any_key_to_pkcs8(der: &[u8]) -> Option<Vec<u8>> {
    if is_pkcs1_rsa(der) {
        return Some(rsa_pkcs8(der));
    }
    canonical_pkcs8(der).or_else(|| ec_pkcs8_from_sec1(der, None))
}

fn is_pkcs1_rsa(der: &[u8]) -> bool {
    let Some((0x30, body, [])) = der_read(der) else {
        return false;
    };
    let mut r = body;
    let mut ints = 0;
    while let Some((tag, _, rest)) = der_read(r) {
        if tag != 0x02 {
            return false;
        }
        ints += 1;
        r = rest;
    }
    r.is_empty() && ints == 9
}

// ---- rsaDecrypt

/// `rsaDecrypt SCHEME HASH ciphertext privateKeyPEM`: scheme `None` returns the input, `RSA-OAEP`
/// decrypts with OAEP (MGF1 with the same hash; `SHA1`, `SHA512`, else SHA-256) through
/// aws-lc-rs. The key may be PKCS#1 or PKCS#8 RSA.
pub(crate) fn rsa_decrypt(
    scheme: &[u8],
    hash: &[u8],
    input: &[u8],
    key_pem: &[u8],
) -> Result<Value, String> {
    use aws_lc_rs::rsa;
    match scheme {
        b"None" => Ok(Value::Str(input.to_vec())),
        b"RSA-OAEP" => {
            let block = match pem_decode(key_pem) {
                Ok((Some(b), _)) => b,
                _ => return Err("rsaDecrypt: failed to decode PEM block".into()),
            };
            let pkcs8 =
                any_key_to_pkcs8(&block.bytes).ok_or("rsaDecrypt: could not parse private key")?;
            let not_rsa = || "rsaDecrypt: could not parse RSA private key".to_owned();
            let key = rsa::PrivateDecryptingKey::from_pkcs8(&pkcs8).map_err(|_| not_rsa())?;
            let key = rsa::OaepPrivateDecryptingKey::new(key).map_err(|_| not_rsa())?;
            let alg = match hash {
                b"SHA1" => &rsa::OAEP_SHA1_MGF1SHA1,
                b"SHA512" => &rsa::OAEP_SHA512_MGF1SHA512,
                _ => &rsa::OAEP_SHA256_MGF1SHA256,
            };
            let mut out = vec![0u8; key.min_output_size()];
            let n = key
                .decrypt(alg, input, &mut out, None)
                .map_err(|_| "rsaDecrypt: error decrypting data with RSA".to_owned())?
                .len();
            out.truncate(n);
            Ok(Value::Str(out))
        }
        _ => Err("rsaDecrypt: decryption scheme is not supported (None or RSA-OAEP)".into()),
    }
}

// ---- JWK

fn b64url(v: &serde_json::Value, field: &str) -> Result<Vec<u8>, String> {
    let s = v
        .get(field)
        .and_then(|x| x.as_str())
        .ok_or_else(|| format!("required field {field} is missing"))?;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| format!("field {field} is not base64url"))
}

enum Jwk {
    RsaPublic {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    RsaPrivate(Vec<u8>),
    EcPublic {
        curve: &'static [u8],
        point: Vec<u8>,
    },
    EcPrivate(Vec<u8>),
    Ed25519Public(Vec<u8>),
    Ed25519Private(Vec<u8>),
}

fn parse_jwk(s: &[u8]) -> Result<Jwk, String> {
    let v: serde_json::Value =
        serde_json::from_slice(s).map_err(|_| "the JWK is not valid JSON".to_owned())?;
    let kty = v
        .get("kty")
        .and_then(|k| k.as_str())
        .ok_or("the JWK has no kty")?;
    let private = v.get("d").is_some();
    match kty {
        "RSA" => {
            let (n, e) = (b64url(&v, "n")?, b64url(&v, "e")?);
            if !private {
                return Ok(Jwk::RsaPublic { n, e });
            }
            if v.get("oth").is_some() {
                return Err("multi-prime RSA JWKs are not supported by hush-template".into());
            }
            let mut ints = vec![der_uint(&[0]), der_uint(&n), der_uint(&e)];
            for f in ["d", "p", "q", "dp", "dq", "qi"] {
                ints.push(der_uint(&b64url(&v, f)?));
            }
            Ok(Jwk::RsaPrivate(der_seq(&ints)))
        }
        "EC" => {
            let (curve, size): (&'static [u8], usize) = match v.get("crv").and_then(|c| c.as_str())
            {
                Some("P-256") => (OID_P256, 32),
                Some("P-384") => (OID_P384, 48),
                Some("P-521") => (OID_P521, 66),
                _ => return Err("unsupported EC curve".into()),
            };
            let x = pad_to(&b64url(&v, "x")?, size).ok_or("x is too long for the curve")?;
            let y = pad_to(&b64url(&v, "y")?, size).ok_or("y is too long for the curve")?;
            let point = [&[4u8][..], &x, &y].concat();
            if !private {
                return Ok(Jwk::EcPublic { curve, point });
            }
            let d = pad_to(&b64url(&v, "d")?, size).ok_or("d is too long for the curve")?;
            Ok(Jwk::EcPrivate(ec_pkcs8(curve, &d, Some(&point))))
        }
        "OKP" => {
            if v.get("crv").and_then(|c| c.as_str()) != Some("Ed25519") {
                return Err("only Ed25519 OKP keys have a PEM form".into());
            }
            let x = b64url(&v, "x")?;
            if x.len() != 32 {
                return Err("invalid Ed25519 public key".into());
            }
            if !private {
                return Ok(Jwk::Ed25519Public(x));
            }
            let d = b64url(&v, "d")?;
            if d.len() != 32 {
                return Err("invalid Ed25519 private key".into());
            }
            Ok(Jwk::Ed25519Private(ed25519_pkcs8(&d)))
        }
        _ => Err("unsupported key type".into()),
    }
}

/// `jwkPublicKeyPem`: a public JWK as PKIX PEM (Go refuses private JWKs here).
pub(crate) fn jwk_public_pem(s: &[u8]) -> Result<Value, String> {
    let spki = match parse_jwk(s).map_err(|e| format!("jwkPublicKeyPem: {e}"))? {
        Jwk::RsaPublic { n, e } => der_seq(&[
            der_seq(&[der_oid(OID_RSA), DER_NULL.to_vec()]),
            der_bits(&der_seq(&[der_uint(&n), der_uint(&e)])),
        ]),
        Jwk::EcPublic { curve, point } => der_seq(&[
            der_seq(&[der_oid(OID_EC), der_oid(curve)]),
            der_bits(&point),
        ]),
        Jwk::Ed25519Public(x) => der_seq(&[der_seq(&[der_oid(OID_ED25519)]), der_bits(&x)]),
        _ => {
            return Err(
                "jwkPublicKeyPem: x509: unsupported public key type (the JWK is a private key)"
                    .into(),
            );
        }
    };
    Ok(Value::Str(pem_of("PUBLIC KEY", &spki)))
}

/// `jwkPrivateKeyPem`: a private JWK as PKCS#8 PEM.
pub(crate) fn jwk_private_pem(s: &[u8]) -> Result<Value, String> {
    let pkcs8 = match parse_jwk(s).map_err(|e| format!("jwkPrivateKeyPem: {e}"))? {
        Jwk::RsaPrivate(pkcs1) => rsa_pkcs8(&pkcs1),
        Jwk::EcPrivate(p) | Jwk::Ed25519Private(p) => p,
        _ => {
            return Err(
                "jwkPrivateKeyPem: x509: unknown key type (the JWK is a public key)".into(),
            );
        }
    };
    Ok(Value::Str(pem_of("PRIVATE KEY", &pkcs8)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_and_junk() {
        let block = pem_of("TEST", &[1, 2, 3]);
        let mut input = b"junk\n".to_vec();
        input.extend_from_slice(&block);
        let (b, rest) = pem_decode(&input).unwrap();
        let b = b.unwrap();
        assert_eq!(
            (b.typ.as_str(), b.bytes.as_slice(), rest),
            ("TEST", &[1u8, 2, 3][..], &b""[..])
        );
        assert!(filter_pem(b"TEST", b"not pem at all").is_err());
        assert_eq!(filter_pem(b"other", &block).unwrap(), Value::str(""));
    }

    #[test]
    fn der_integers_are_minimal() {
        assert_eq!(der_uint(&[0, 0, 0x7f]), vec![2, 1, 0x7f]);
        assert_eq!(der_uint(&[0x80]), vec![2, 2, 0, 0x80]);
        assert_eq!(der_uint(&[]), vec![2, 1, 0]);
    }
}
