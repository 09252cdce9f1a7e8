//! `cargo bench -p hush-crypto`: RSA-4096 OAEP decryption on one thread (compare with
//! `openssl speed rsa4096` sign/s) and AES-256-GCM throughput in both shapes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure is the assertion

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hush_crypto::{DataKey, SystemEntropy, aead, envelope, rsa::RsaPrivateKey};
use std::hint::black_box;

fn rsa_oaep_decrypt(c: &mut Criterion) {
    let key = RsaPrivateKey::generate(4096).expect("keygen");
    let ct = key
        .public_key()
        .encrypt_oaep(&[7u8; 32], b"ns/name")
        .expect("encrypt");
    let mut g = c.benchmark_group("rsa4096");
    g.throughput(Throughput::Elements(1));
    g.bench_function("oaep_decrypt", |b| {
        b.iter(|| {
            key.decrypt_oaep(black_box(&ct), b"ns/name")
                .expect("decrypt")
        })
    });
    let env =
        envelope::seal(key.public_key(), b"value", b"ns/name", &mut SystemEntropy).expect("seal");
    g.bench_function("envelope_open", |b| {
        b.iter(|| envelope::open(&key, black_box(&env), b"ns/name").expect("open"))
    });
    g.finish();
}

fn aes_gcm(c: &mut Criterion) {
    let key = DataKey::from_bytes([9u8; 32]);
    let data = vec![0x5au8; 1 << 20];
    let mut g = c.benchmark_group("aes256gcm_1MiB");
    g.throughput(Throughput::Bytes(data.len() as u64));
    let iv = [3u8; aead::SOPS_NONCE_LEN];
    let ct = aead::sops_encrypt_with_iv(&key, &iv, &data, b"a:b:").expect("enc");
    g.bench_function("sops_decrypt", |b| {
        b.iter(|| {
            aead::sops_decrypt(&key, &iv, black_box(&ct.data), &ct.tag, b"a:b:").expect("dec")
        })
    });
    let sealed = aead::zero_nonce_seal(&key, &data).expect("seal");
    g.bench_function("zero_nonce_open", |b| {
        b.iter(|| aead::zero_nonce_open(&key, black_box(&sealed)).expect("open"))
    });
    g.finish();
}

criterion_group!(benches, rsa_oaep_decrypt, aes_gcm);
criterion_main!(benches);
