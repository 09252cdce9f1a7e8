"""What the two cloud test servers share: RS256 JWTs, a call counter and the management API.

The counter is the evidence of hush's call-count discipline (one token per credential per
lifetime, one read per distinct key per refresh wave): tests read it from ``GET /hush/calls`` and
reset it with ``POST /hush/reset-calls``.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import Counter

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


class JwtError(Exception):
    """A JWT that does not verify; the message says why (never the token)."""


def jwt_unverified(token: str) -> tuple[dict, dict]:
    """Header and claims of a compact JWS, without checking the signature."""
    try:
        head, body, _sig = token.split(".")
        return json.loads(b64url_decode(head)), json.loads(b64url_decode(body))
    except (ValueError, json.JSONDecodeError) as exc:
        raise JwtError(f"malformed JWT: {exc}") from exc


def jwt_verify(token: str, public_key, audience: str | list[str] | None) -> dict:
    """Checks an RS256 JWT's signature, expiry and audience; returns the claims."""
    header, claims = jwt_unverified(token)
    pads = {
        "RS256": padding.PKCS1v15,
        "PS256": lambda: padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH),
    }
    if header.get("alg") not in pads:
        raise JwtError(f"unsupported alg {header.get('alg')!r} (RS256, PS256)")
    head, body, sig = token.split(".")
    try:
        public_key.verify(
            b64url_decode(sig),
            f"{head}.{body}".encode("ascii"),
            pads[header["alg"]](),
            hashes.SHA256(),
        )
    except InvalidSignature as exc:
        raise JwtError("bad signature") from exc
    now = time.time()
    if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] < now - 30:
        raise JwtError("expired or no exp")
    if claims.get("iat", 0) > now + 300:
        raise JwtError("iat in the future")
    if audience is not None:
        wanted = audience if isinstance(audience, list) else [audience]
        got = claims.get("aud")
        got = got if isinstance(got, list) else [got]
        if not set(wanted) & set(got):
            raise JwtError(f"audience {got!r} is not {wanted!r}")
    return claims


class Calls:
    """Thread-safe counters: token grants per principal, API calls per route."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.tokens: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()

    def token(self, principal: str) -> None:
        with self._lock:
            self.tokens[principal] += 1

    def call(self, what: str) -> None:
        with self._lock:
            self.calls[what] += 1

    def snapshot(self) -> dict:
        with self._lock:
            return {"tokens": dict(self.tokens), "calls": dict(self.calls)}

    def reset(self) -> None:
        with self._lock:
            self.tokens.clear()
            self.calls.clear()


class Tokens:
    """Opaque bearer tokens the servers hand out, with their principal and expiry."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, float]] = {}

    def issue(self, principal: str, lifetime: int) -> str:
        import secrets

        token = "hush-test." + secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = (principal, time.time() + lifetime)
        return token

    def principal(self, token: str) -> str | None:
        with self._lock:
            entry = self._tokens.get(token)
        if entry is None or entry[1] < time.time():
            return None
        return entry[0]


def bearer(headers) -> str | None:
    value = headers.get("Authorization") or ""
    if value[:7].lower() == "bearer ":
        return value[7:].strip()
    return None


def jwks_public_keys(jwks: dict) -> list:
    """The RSA public keys of a JWK set (RFC 7517; what an OIDC issuer such as the kube-apiserver
    publishes at its ``jwks_uri``)."""
    keys = []
    for jwk in jwks.get("keys", []):
        if jwk.get("kty") != "RSA":
            continue
        n = int.from_bytes(b64url_decode(jwk["n"]), "big")
        e = int.from_bytes(b64url_decode(jwk["e"]), "big")
        keys.append(rsa.RSAPublicNumbers(e, n).public_key())
    return keys
