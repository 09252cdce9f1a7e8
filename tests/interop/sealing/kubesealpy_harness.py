#!/usr/bin/env python3
"""Drives kubesealpy's Python API (its CLI is a placeholder) for hush's interop tests.

One document at a time, over stdin and stdout:

  seal CERT SCOPE            stdin: JSON {"name", "namespace", "data": {key: base64}}
                             stdout: the SealedSecret as YAML (Sealer.seal)
  unseal KEY [KEY...]        stdin: a SealedSecret (YAML or JSON)
                             stdout: JSON {key: base64(plaintext)} (Unsealer.unseal)
  encrypt CERT SCOPE NS NAME stdin: raw bytes; stdout: base64 envelope
                             (crypto.encrypt with scopes.build_label)
  decrypt KEY SCOPE NS NAME  stdin: base64 envelope; stdout: base64 plaintext
                             (crypto.decrypt with scopes.build_label)

A failure exits 1 with the exception class and message on stderr (never the plaintext).
"""
import base64
import json
import sys

from kubesealpy import SealedSecret, Sealer, SealingScope, Unsealer
from kubesealpy.certificate import load_private_key_from_file
from kubesealpy.crypto import decrypt, encrypt
from kubesealpy.scopes import build_label


def scope(name):
    return SealingScope(name)


def label(scope_name, ns, name):
    return build_label(scope(scope_name), ns or None, name or None)


def main(argv):
    cmd, args = argv[1], argv[2:]
    stdin = sys.stdin.buffer.read()
    if cmd == "seal":
        cert, scope_name = args
        doc = json.loads(stdin)
        data = {k: base64.b64decode(v) for k, v in doc["data"].items()}
        sealer = Sealer.from_certificate_file(cert)
        sealed = sealer.seal(
            name=doc["name"],
            namespace=doc["namespace"],
            data=data,
            scope=scope(scope_name),
        )
        sys.stdout.write(sealed.to_yaml())
    elif cmd == "unseal":
        keys = [load_private_key_from_file(k) for k in args]
        sealed = SealedSecret.from_yaml(stdin.decode())
        secret = Unsealer(keys).unseal(sealed)
        sys.stdout.write(json.dumps(secret.data or {}, sort_keys=True))
    elif cmd == "encrypt":
        cert, scope_name, ns, name = args
        sealer = Sealer.from_certificate_file(cert)
        out = encrypt(stdin, sealer.public_key, label(scope_name, ns, name))
        sys.stdout.write(base64.b64encode(out).decode())
    elif cmd == "decrypt":
        key, scope_name, ns, name = args
        plain = decrypt(base64.b64decode(stdin), load_private_key_from_file(key), label(scope_name, ns, name))
        sys.stdout.write(base64.b64encode(plain).decode())
    else:
        raise SystemExit(f"unknown command {cmd!r}")


if __name__ == "__main__":
    try:
        main(sys.argv)
    except Exception as e:  # noqa: BLE001 - report the class, exit 1
        sys.stderr.write(f"{type(e).__name__}: {e}\n")
        sys.exit(1)
