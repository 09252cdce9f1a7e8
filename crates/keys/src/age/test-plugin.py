#!/usr/bin/env python3
# age-plugin-hushtest: a test-only age plugin (recipient-v1 and identity-v1 state machines,
# https://github.com/C2SP/C2SP/blob/main/age-plugin.md). It "wraps" the file key in the clear:
# never use it for anything but testing that hush drives age plugins.
import base64
import sys

inp, out = sys.stdin.buffer, sys.stdout.buffer


def b64d(s):
    return base64.b64decode(s + "=" * (-len(s) % 4))


def b64e(b):
    return base64.b64encode(b).decode().rstrip("=")


def read_stanza():
    line = inp.readline().decode()
    if not line.startswith("-> "):
        sys.exit(2)
    parts = line[3:].rstrip("\n").split(" ")
    body = b""
    while True:
        chunk = inp.readline().decode().rstrip("\n")
        body += b64d(chunk)
        if len(chunk) < 64:
            return parts, body


def write_stanza(parts, body):
    encoded = b64e(body)
    lines = [encoded[i : i + 64] for i in range(0, len(encoded), 64)]
    if not lines or len(lines[-1]) == 64:
        lines.append("")
    out.write(("-> " + " ".join(parts) + "\n" + "\n".join(lines) + "\n").encode())
    out.flush()


mode = sys.argv[1].split("=", 1)[1]
received = []
while True:
    parts, body = read_stanza()
    if parts[0] == "done":
        break
    received.append((parts, body))

if mode == "recipient-v1":
    keys = [body for parts, body in received if parts[0] == "wrap-file-key"]
    for index, key in enumerate(keys):
        write_stanza(["recipient-stanza", str(index), "hushtest", "clear"], key)
        read_stanza()  # ok
elif mode == "identity-v1":
    for parts, body in received:
        if parts[0] == "recipient-stanza" and parts[2] == "hushtest":
            write_stanza(["file-key", parts[1]], body)
            read_stanza()  # ok
            break
write_stanza(["done"], b"")
