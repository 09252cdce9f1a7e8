#!/usr/bin/env python3
"""Generates the known-answer vectors of hush-crypto with independent tools.

Run once (the output is committed): .venv/bin/python crates/crypto/tests/vectors/generate.py

- Sealed Secrets envelopes: Python `cryptography` (RSA-OAEP SHA-256/MGF1-SHA-256 with label,
  AES-256-GCM with a zero 12-byte nonce), to the committed openssl-generated test keys.
- sops values: AES-256-GCM with a 32-byte nonce and AAD, from fixed key/nonce bytes.
- Shamir: an independent GF(2^8) implementation (log/exp tables, generator 3) fed with a fixed
  coefficient stream, the same stream the Rust test injects.
The keys in this directory are test keys only.
"""
import base64, json, os, struct, pathlib
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

HERE = pathlib.Path(__file__).parent


def load_pub(name):
    key = serialization.load_pem_private_key((HERE / name).read_bytes(), password=None)
    return key.public_key()


def envelope(pub, plaintext, label):
    session = os.urandom(32)
    rsa_ct = pub.encrypt(session, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()),
                                               algorithm=hashes.SHA256(), label=label))
    sym = AESGCM(session).encrypt(b"\0" * 12, plaintext, None)
    return struct.pack(">H", len(rsa_ct)) + rsa_ct + sym


sealed = []
for key in ["rsa2048.pkcs1.pem", "rsa4096.pkcs8.pem"]:
    pub = load_pub(key)
    for label, pt in [(b"myns/myname", b"s3cr3t"), (b"myns", b""), (b"", bytes(range(256)))]:
        sealed.append({
            "key": key,
            "label": label.decode(),
            "plaintext_b64": base64.b64encode(pt).decode(),
            "envelope_b64": base64.b64encode(envelope(pub, pt, label)).decode(),
        })

sops = []
for i, (pt, aad) in enumerate([(b"hello", b"a:b:"), (b"", b"x:"), (b"\xe2\x98\x83 unicode", b"")]):
    key = bytes((i * 7 + j) & 0xFF for j in range(32))
    nonce = bytes((0xA0 + i + j) & 0xFF for j in range(32))
    out = AESGCM(key).encrypt(nonce, pt, aad)
    sops.append({
        "key_hex": key.hex(), "iv_hex": nonce.hex(), "aad": aad.decode(),
        "plaintext_hex": pt.hex(), "data_hex": out[:-16].hex(), "tag_hex": out[-16:].hex(),
    })

# GF(2^8) with x^8+x^4+x^3+x+1 via log/exp tables over generator 3.
EXP, LOG = [0] * 512, [0] * 256
x = 1
for i in range(255):
    EXP[i] = x
    LOG[x] = i
    x ^= (x << 1) ^ (0x11B if x & 0x80 else 0)
    x &= 0xFF
for i in range(255, 512):
    EXP[i] = EXP[i - 255]


def gmul(a, b):
    return 0 if a == 0 or b == 0 else EXP[LOG[a] + LOG[b]]


def stream(n):
    # The coefficient stream the Rust test injects: byte k is (k * 31 + 7) mod 256.
    return bytes(((k * 31 + 7) & 0xFF) for k in range(n))


shamir = []
for secret, parts, threshold in [(bytes(range(1, 33)), 3, 2), (b"\xff" * 32 + b"\x00", 5, 3)]:
    rnd = stream(len(secret) * (threshold - 1))
    shares = [bytearray(len(secret) + 1) for _ in range(parts)]
    for i in range(parts):
        shares[i][-1] = i + 1
    for idx, byte in enumerate(secret):
        coeffs = [byte] + list(rnd[idx * (threshold - 1):(idx + 1) * (threshold - 1)])
        for i in range(parts):
            xv, y, p = i + 1, 0, 1
            for c in coeffs:
                y ^= gmul(c, p)
                p = gmul(p, xv)
            shares[i][idx] = y
    shamir.append({"secret_hex": secret.hex(), "parts": parts, "threshold": threshold,
                   "shares_hex": [bytes(s).hex() for s in shares]})

(HERE / "vectors.json").write_text(json.dumps({"sealed": sealed, "sops_gcm": sops, "shamir": shamir}, indent=1) + "\n")
print("wrote", HERE / "vectors.json")
