"""An Azure test server: Microsoft Entra ID's token endpoint and one Key Vault (secrets and keys),
written from the published REST references, over HTTPS (Azure's clients refuse bearer tokens
over plain HTTP).

Why not the PyPI candidate: amber-cloud 1.0.0 keeps Key Vault secrets and keys in SQLite behind a
Python API, but its HTTP server only serves resource groups and ARM resources: no Key Vault data
plane (``/secrets``, ``/keys``), no wrap/unwrap, no token endpoint (docs/decisions.md).

Entra ID (``/{tenant}/oauth2/v2.0/token``, client-credentials grant): a client secret, a client
certificate (``client_assertion`` RS256 JWT with ``x5t``/``x5t#S256``) or a federated token
(workload identity: an RS256 JWT of a registered issuer/subject, audience
``api://AzureADTokenExchange``, its signature checked with the issuer's keys: PEM public keys or
the issuer's JWK set, e.g. the kube-apiserver's ``/openid/v1/jwks``); OpenID discovery and
instance discovery documents, as MSAL asks.

Key Vault (any ``api-version``): the bearer challenge (401 + ``WWW-Authenticate``), secrets
(set, get by version, list, list versions, update attributes/tags, delete + deleted-secret
get/purge) and RSA keys (create, get, list, wrapkey/unwrapkey/encrypt/decrypt with RSA-OAEP-256,
RSA-OAEP, RSA1_5), certificates (import from PEM, get by version: ``cer`` is the DER).
Names must match ``^[0-9a-zA-Z-]{1,127}$``.

Management (no auth, loopback only): ``POST /hush/apps`` registers an application
(``{"certificate_pem"?, "federated"?: {"issuer", "subject", "public_keys_pem"?: [..], "jwks"?: {"keys": [..]}},
"token_lifetime"?}``) and
returns ``tenant_id``, ``client_id`` and ``client_secret``; ``POST /hush/token-lifetime
{"seconds"}``; ``GET /hush/calls`` (token grants per client id, calls per route);
``POST /hush/reset-calls``; ``POST /hush/managed-identities {"client_id"?}`` registers a managed
identity (none = the system-assigned one) for the instance metadata service
``GET /metadata/identity/oauth2/token`` (``Metadata: true``, ``resource``, ``client_id``?; IMDS'
answer with ``expires_in`` as a string).

Run: ``python tests/cloud/azure_server.py --port N --state DIR`` (writes DIR/ca.pem).
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import json
import re
import secrets
import ssl
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cloudcommon import (  # noqa: E402
    Calls,
    JwtError,
    Tokens,
    b64url,
    b64url_decode,
    bearer,
    jwks_public_keys,
    jwt_unverified,
    jwt_verify,
)
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

VAULT_RESOURCE = "https://vault.azure.net"
EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
MAX_BODY = 1 << 20
PAGE = 25


def now() -> int:
    return int(time.time())


class App:
    def __init__(self, client_id: str, secret: str, cert, federated: dict | None, lifetime: int | None) -> None:
        self.lifetime = lifetime
        self.client_id = client_id
        self.secret = secret
        self.cert = cert
        self.federated = federated


class State:
    def __init__(self, tenant: str) -> None:
        self.lock = threading.Lock()
        self.tenant = tenant
        self.apps: dict[str, App] = {}
        self.secrets: dict[str, list[dict]] = {}  # name -> versions, oldest first
        self.deleted: dict[str, list[dict]] = {}
        self.keys: dict[str, list[dict]] = {}  # name -> [{version, key, attributes, tags}]
        self.certificates: dict[str, list[dict]] = {}  # name -> [{version, der, attributes, tags}]
        self.identities: set[str] = set()  # managed identities (client ids; "system" = system-assigned)
        self.calls = Calls()
        self.tokens = Tokens()
        self.token_lifetime = 3600


STATE: State


class KvError(Exception):
    def __init__(self, status: int, code: str, message: str, inner: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.inner = status, code, message, inner

    def body(self) -> dict:
        err = {"code": self.code, "message": self.message}
        if self.inner:
            err["innererror"] = {"code": self.inner}
        return {"error": err}


def attributes(enabled: bool = True) -> dict:
    t = now()
    return {"enabled": enabled, "created": t, "updated": t, "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90}


def check_name(name: str, what: str) -> None:
    if not NAME.match(name):
        raise KvError(400, "BadParameter", f"The request URI contains an invalid name: {what} {name!r}")


class Handler(BaseHTTPRequestHandler):
    server_version = "hush-azure-test"
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    # -- plumbing ----------------------------------------------------------------------------

    def base(self) -> str:
        return f"https://{self.headers.get('Host', '')}"

    def send(self, status: int, payload: dict | None, headers: dict | None = None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if payload is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise KvError(413, "RequestTooLarge", "body too large")
        return self.rfile.read(length) if length else b""

    def dispatch(self) -> None:
        split = urlsplit(self.path)
        path, query = split.path, {k: v[0] for k, v in parse_qs(split.query).items()}
        try:
            body = self.read_body()
            if path.startswith("/hush/"):
                return self.send(200, self.management(path, body))
            if path == "/metadata/identity/oauth2/token":
                return self.imds(query)
            parts = path.split("/")
            if len(parts) >= 2 and parts[1] in (STATE.tenant, "common", "organizations") or path.startswith("/common/"):
                return self.entra(path, body, query)
            self.vault(path, body, query)
        except KvError as exc:
            self.send(exc.status, exc.body())
        except (ValueError, KeyError, json.JSONDecodeError) as exc:
            self.send(400, {"error": {"code": "BadParameter", "message": f"bad request: {exc}"}})

    do_GET = dispatch
    do_POST = dispatch
    do_PUT = dispatch
    do_PATCH = dispatch
    do_DELETE = dispatch

    # -- management --------------------------------------------------------------------------

    def management(self, path: str, body: bytes) -> dict:
        payload = json.loads(body or b"{}")
        if path == "/hush/calls":
            return STATE.calls.snapshot()
        if path == "/hush/reset-calls":
            STATE.calls.reset()
            return {}
        if path == "/hush/token-lifetime":
            STATE.token_lifetime = int(payload["seconds"])
            return {}
        if path == "/hush/apps":
            cert = None
            if payload.get("certificate_pem"):
                cert = x509.load_pem_x509_certificate(payload["certificate_pem"].encode())
            client_id = str(uuid.uuid4())
            app = App(client_id, secrets.token_urlsafe(30), cert, payload.get("federated"),
                      payload.get("token_lifetime"))
            with STATE.lock:
                STATE.apps[client_id] = app
            return {"tenant_id": STATE.tenant, "client_id": client_id, "client_secret": app.secret}
        if path == "/hush/managed-identities":
            client_id = payload.get("client_id") or "system"
            with STATE.lock:
                STATE.identities.add(client_id)
            return {"client_id": client_id}
        raise KvError(404, "NotFound", f"unknown management route {path}")

    # -- the instance metadata service (managed identities) ------------------------------------

    def imds(self, query: dict) -> None:
        """``GET /metadata/identity/oauth2/token`` as Azure's IMDS answers it (api-version
        2018-02-01): ``Metadata: true`` required, ``resource``, optional ``client_id``."""
        if self.headers.get("Metadata") != "true":
            return self.send(400, {"error": "invalid_request", "error_description": "Required metadata header not specified"})
        if query.get("resource") != VAULT_RESOURCE:
            return self.send(400, {"error": "invalid_resource", "error_description": f"resource {query.get('resource')!r}"})
        who = query.get("client_id") or "system"
        with STATE.lock:
            known = who in STATE.identities
        if not known:
            return self.send(400, {"error": "invalid_request", "error_description": "Identity not found"})
        STATE.calls.token(who)
        lifetime = STATE.token_lifetime
        token = STATE.tokens.issue(who, lifetime)
        self.send(200, {"access_token": token, "expires_in": str(lifetime), "expires_on": str(now() + lifetime),
                        "resource": VAULT_RESOURCE, "token_type": "Bearer", "client_id": who})

    # -- Entra ID ----------------------------------------------------------------------------

    def entra(self, path: str, body: bytes, query: dict) -> None:
        tenant = path.split("/")[1]
        base = self.base()
        if path.endswith("/discovery/instance"):
            return self.send(200, {
                "tenant_discovery_endpoint": f"{base}/{tenant}/v2.0/.well-known/openid-configuration",
                "api-version": "1.1",
                "metadata": [],
            })
        if path.endswith("/.well-known/openid-configuration"):
            return self.send(200, {
                "token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/devicecode",
                "issuer": f"{base}/{tenant}/v2.0",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
            })
        if path == f"/{tenant}/oauth2/v2.0/token" and self.command == "POST":
            return self.token(tenant, body)
        raise KvError(404, "NotFound", f"no such endpoint {path}")

    def token_error(self, status: int, error: str, description: str) -> None:
        self.send(status, {"error": error, "error_description": description, "error_codes": [0],
                           "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat()})

    def token(self, tenant: str, body: bytes) -> None:
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if tenant != STATE.tenant:
            return self.token_error(400, "invalid_request", f"AADSTS90002: Tenant '{tenant}' not found.")
        if form.get("grant_type") != "client_credentials":
            return self.token_error(400, "unsupported_grant_type", "AADSTS70003: client_credentials only")
        if form.get("scope") != f"{VAULT_RESOURCE}/.default":
            return self.token_error(400, "invalid_scope", f"AADSTS70011: scope {form.get('scope')!r} is not {VAULT_RESOURCE}/.default")
        with STATE.lock:
            app = STATE.apps.get(form.get("client_id", ""))
        if app is None:
            return self.token_error(400, "unauthorized_client", "AADSTS700016: Application not found in the directory.")
        endpoint = f"{self.base()}/{tenant}/oauth2/v2.0/token"
        if "client_secret" in form:
            if not secrets.compare_digest(form["client_secret"], app.secret):
                return self.token_error(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
        elif form.get("client_assertion_type") == ASSERTION_TYPE:
            try:
                self.check_assertion(app, form.get("client_assertion", ""), endpoint)
            except JwtError as exc:
                return self.token_error(401, "invalid_client", f"AADSTS700027: Client assertion failed: {exc}")
        else:
            return self.token_error(401, "invalid_client", "AADSTS7000218: client_assertion or client_secret required.")
        STATE.calls.token(app.client_id)
        lifetime = app.lifetime or STATE.token_lifetime
        token = STATE.tokens.issue(app.client_id, lifetime)
        self.send(200, {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token})

    def check_assertion(self, app: App, assertion: str, endpoint: str) -> None:
        header, claims = jwt_unverified(assertion)
        fed = app.federated
        if fed and claims.get("iss") == fed.get("issuer"):
            if claims.get("sub") != fed.get("subject"):
                raise JwtError(f"subject {claims.get('sub')!r} has no federated credential")
            keys = [serialization.load_pem_public_key(pem.encode()) for pem in fed.get("public_keys_pem", [])]
            keys += jwks_public_keys(fed.get("jwks") or {})
            for key in keys:
                try:
                    jwt_verify(assertion, key, EXCHANGE_AUDIENCE)
                    return
                except JwtError:
                    continue
            raise JwtError("federated token does not verify with the issuer's keys")
        if app.cert is None:
            raise JwtError("no certificate registered")
        der = app.cert.public_bytes(serialization.Encoding.DER)
        thumbs = {b64url(hashlib.sha1(der).digest()), b64url(hashlib.sha256(der).digest())}
        # Thumbprints are base64url; MSAL pads them, other clients do not.
        given = {str(header.get(h, "")).rstrip("=") for h in ("x5t", "x5t#S256")}
        if not thumbs & given:
            raise JwtError("x5t does not match the registered certificate")
        claims = jwt_verify(assertion, app.cert.public_key(), endpoint)
        if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
            raise JwtError("iss and sub must be the client id")

    # -- Key Vault ---------------------------------------------------------------------------

    def vault(self, path: str, body: bytes, query: dict) -> None:
        token = bearer(self.headers)
        if not token or STATE.tokens.principal(token) is None:
            STATE.calls.call("challenge")
            challenge = f'Bearer authorization="{self.base()}/{STATE.tenant}", resource="{VAULT_RESOURCE}"'
            return self.send(401, {"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}},
                             {"WWW-Authenticate": challenge})
        parts = path.strip("/").split("/") if path.strip("/") else []
        STATE.calls.call(f"{self.command} {path}")
        payload = json.loads(body) if body else {}
        with STATE.lock:
            status, answer = self.vault_op(parts, payload, query)
        self.send(status, answer)

    def vault_op(self, parts: list[str], payload: dict, query: dict):
        m, n = self.command, len(parts)
        if n and parts[0] == "secrets":
            if n == 1 and m == "GET":
                return 200, self.page([self.secret_item(name, v[-1], False) for name, v in sorted(STATE.secrets.items())], query, "secrets")
            name = parts[1]
            check_name(name, "secret")
            if n == 2 and m == "PUT":
                return 200, self.set_secret(name, payload)
            if n == 2 and m == "DELETE":
                versions = self.secret_versions(name)
                del STATE.secrets[name]
                STATE.deleted[name] = versions
                return 200, self.deleted_bundle(name, versions[-1])
            if n == 3 and parts[2] == "versions" and m == "GET":
                versions = self.secret_versions(name)
                return 200, self.page([self.secret_item(name, v, True) for v in versions], query, f"secrets/{name}/versions")
            if n in (2, 3) and m in ("GET", "PATCH"):
                version = parts[2] if n == 3 else ""
                v = self.secret_version(name, version)
                if m == "PATCH":
                    if "enabled" in (payload.get("attributes") or {}):
                        v["attributes"]["enabled"] = bool(payload["attributes"]["enabled"])
                    if "tags" in payload:
                        v["tags"] = payload["tags"] or {}
                    if "contentType" in payload:
                        v["contentType"] = payload["contentType"]
                    v["attributes"]["updated"] = now()
                    return 200, self.secret_bundle(name, v, with_value=False)
                if not v["attributes"]["enabled"]:
                    raise KvError(403, "Forbidden", "Operation get is not allowed on a disabled secret.", "SecretDisabled")
                return 200, self.secret_bundle(name, v, with_value=True)
        if n >= 2 and parts[0] == "deletedsecrets":
            name = parts[1]
            if name not in STATE.deleted:
                raise KvError(404, "SecretNotFound", f"Deleted Secret not found: {name}")
            if m == "DELETE":
                del STATE.deleted[name]
                return 204, None
            return 200, self.deleted_bundle(name, STATE.deleted[name][-1])
        if n and parts[0] == "keys":
            if n == 1 and m == "GET":
                return 200, self.page([self.key_item(name, v[-1], False) for name, v in sorted(STATE.keys.items())], query, "keys")
            name = parts[1]
            check_name(name, "key")
            if n == 3 and parts[2] == "create" and m == "POST":
                return 200, self.create_key(name, payload)
            if n == 3 and parts[2] == "versions" and m == "GET":
                return 200, self.page([self.key_item(name, v, True) for v in self.key_versions(name)], query, f"keys/{name}/versions")
            if n in (2, 3) and m == "GET":
                return 200, self.key_bundle(name, self.key_version(name, parts[2] if n == 3 else ""))
            if n == 4 and m == "POST" and parts[3] in ("wrapkey", "unwrapkey", "encrypt", "decrypt"):
                return 200, self.key_op(name, parts[2], parts[3], payload)
        if n and parts[0] == "certificates":
            name = parts[1]
            check_name(name, "certificate")
            if n == 3 and parts[2] == "import" and m == "POST":
                return 200, self.import_certificate(name, payload)
            if n in (2, 3) and m == "GET":
                return 200, self.certificate_bundle(name, self.certificate_version(name, parts[2] if n == 3 else ""))
        raise KvError(404, "NotFound", f"no such Key Vault operation: {m} /{'/'.join(parts)}")

    def import_certificate(self, name: str, payload: dict) -> dict:
        """``POST /certificates/{name}/import`` with a PEM ``value`` (contentType
        application/x-pem-file); the certificate is kept, the private key is not needed here."""
        cert = x509.load_pem_x509_certificate(payload["value"].encode())
        v = {"version": uuid.uuid4().hex, "der": cert.public_bytes(serialization.Encoding.DER),
             "attributes": attributes(), "tags": payload.get("tags") or {}}
        STATE.certificates.setdefault(name, []).append(v)
        return self.certificate_bundle(name, v)

    def certificate_version(self, name: str, version: str) -> dict:
        versions = STATE.certificates.get(name)
        if not versions:
            raise KvError(404, "CertificateNotFound", f"A certificate with (name/id) {name} was not found in this key vault.")
        if not version:
            return versions[-1]
        for v in versions:
            if v["version"] == version:
                return v
        raise KvError(404, "CertificateNotFound", f"A certificate with (name/id) {name}/{version} was not found in this key vault.")

    def certificate_bundle(self, name: str, v: dict) -> dict:
        base = self.base()
        thumb = hashlib.sha1(v["der"]).digest()
        return {"id": f"{base}/certificates/{name}/{v['version']}", "kid": f"{base}/keys/{name}/{v['version']}",
                "sid": f"{base}/secrets/{name}/{v['version']}", "x5t": b64url(thumb),
                "cer": base64.b64encode(v["der"]).decode(), "attributes": v["attributes"], "tags": v["tags"]}

    def page(self, items: list[dict], query: dict, path: str) -> dict:
        size = min(int(query.get("maxresults") or PAGE), PAGE)
        start = int(query.get("$skiptoken") or 0)
        out: dict = {"value": items[start:start + size], "nextLink": None}
        if start + size < len(items):
            out["nextLink"] = f"{self.base()}/{path}?api-version={query.get('api-version', '7.4')}&$skiptoken={start + size}&maxresults={size}"
        return out

    # secrets

    def secret_versions(self, name: str) -> list[dict]:
        if name not in STATE.secrets:
            raise KvError(404, "SecretNotFound", f"A secret with (name/id) {name} was not found in this key vault. "
                          "If you recently deleted this secret you may be able to recover it using the correct recovery command.")
        return STATE.secrets[name]

    def secret_version(self, name: str, version: str) -> dict:
        versions = self.secret_versions(name)
        if not version:
            return versions[-1]
        for v in versions:
            if v["version"] == version:
                return v
        raise KvError(404, "SecretNotFound", f"A secret with (name/id) {name}/{version} was not found in this key vault.")

    def set_secret(self, name: str, payload: dict) -> dict:
        if not isinstance(payload.get("value"), str):
            raise KvError(400, "BadParameter", "Property 'value' is required.")
        attrs = attributes(bool((payload.get("attributes") or {}).get("enabled", True)))
        v = {"version": uuid.uuid4().hex, "value": payload["value"], "attributes": attrs,
             "tags": payload.get("tags") or {}, "contentType": payload.get("contentType")}
        STATE.secrets.setdefault(name, []).append(v)
        return self.secret_bundle(name, v, with_value=True)

    def secret_bundle(self, name: str, v: dict, with_value: bool) -> dict:
        out = {"id": f"{self.base()}/secrets/{name}/{v['version']}", "attributes": v["attributes"], "tags": v["tags"]}
        if with_value:
            out["value"] = v["value"]
        if v.get("contentType"):
            out["contentType"] = v["contentType"]
        return out

    def secret_item(self, name: str, v: dict, versioned: bool) -> dict:
        sid = f"{self.base()}/secrets/{name}" + (f"/{v['version']}" if versioned else "")
        out = {"id": sid, "attributes": v["attributes"], "tags": v["tags"]}
        if v.get("contentType"):
            out["contentType"] = v["contentType"]
        return out

    def deleted_bundle(self, name: str, v: dict) -> dict:
        out = self.secret_bundle(name, v, with_value=False)
        out.update({"recoveryId": f"{self.base()}/deletedsecrets/{name}", "deletedDate": now(), "scheduledPurgeDate": now() + 90 * 86400})
        return out

    # keys

    def key_versions(self, name: str) -> list[dict]:
        if name not in STATE.keys:
            raise KvError(404, "KeyNotFound", f"A key with (name/id) {name} was not found in this key vault.")
        return STATE.keys[name]

    def key_version(self, name: str, version: str) -> dict:
        versions = self.key_versions(name)
        if not version:
            return versions[-1]
        for v in versions:
            if v["version"] == version:
                return v
        raise KvError(404, "KeyNotFound", f"A key with (name/id) {name}/{version} was not found in this key vault.")

    def create_key(self, name: str, payload: dict) -> dict:
        kty = payload.get("kty")
        if kty not in ("RSA", "RSA-HSM"):
            raise KvError(400, "BadParameter", f"kty {kty!r} is not supported by this test server (RSA, RSA-HSM)")
        size = int(payload.get("key_size") or 2048)
        if size not in (2048, 3072, 4096):
            raise KvError(400, "BadParameter", f"key_size {size} (2048, 3072, 4096)")
        ops = payload.get("key_ops") or ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"]
        v = {"version": uuid.uuid4().hex, "private": rsa.generate_private_key(public_exponent=65537, key_size=size),
             "kty": kty, "ops": ops, "attributes": attributes(), "tags": payload.get("tags") or {}}
        STATE.keys.setdefault(name, []).append(v)
        return self.key_bundle(name, v)

    def key_bundle(self, name: str, v: dict) -> dict:
        pub = v["private"].public_key().public_numbers()
        n = pub.n.to_bytes((pub.n.bit_length() + 7) // 8, "big")
        e = pub.e.to_bytes((pub.e.bit_length() + 7) // 8, "big")
        key = {"kid": f"{self.base()}/keys/{name}/{v['version']}", "kty": v["kty"], "key_ops": v["ops"], "n": b64url(n), "e": b64url(e)}
        return {"key": key, "attributes": v["attributes"], "tags": v["tags"]}

    def key_item(self, name: str, v: dict, versioned: bool) -> dict:
        kid = f"{self.base()}/keys/{name}" + (f"/{v['version']}" if versioned else "")
        return {"kid": kid, "attributes": v["attributes"], "tags": v["tags"]}

    def key_op(self, name: str, version: str, op: str, payload: dict) -> dict:
        v = self.key_version(name, version)
        wanted = {"wrapkey": "wrapKey", "unwrapkey": "unwrapKey", "encrypt": "encrypt", "decrypt": "decrypt"}[op]
        if wanted not in v["ops"]:
            raise KvError(403, "Forbidden", f"Operation {wanted} is not permitted on this key.", "KeyOperationForbidden")
        alg = payload.get("alg")
        pads = {
            "RSA-OAEP-256": lambda: padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None),
            "RSA-OAEP": lambda: padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None),
            "RSA1_5": padding.PKCS1v15,
        }
        if alg not in pads:
            raise KvError(400, "BadParameter", f"Invalid algorithm {alg!r} for an RSA key")
        data = b64url_decode(payload.get("value") or "")
        try:
            if op in ("wrapkey", "encrypt"):
                out = v["private"].public_key().encrypt(data, pads[alg]())
            else:
                out = v["private"].decrypt(data, pads[alg]())
        except ValueError as exc:
            raise KvError(400, "BadParameter", f"{op} failed: {exc}") from exc
        return {"kid": f"{self.base()}/keys/{name}/{v['version']}", "value": b64url(out)}


def make_tls(state_dir: Path) -> ssl.SSLContext:
    """A throwaway CA (written to ca.pem for clients) and a leaf for 127.0.0.1 and localhost."""
    state_dir.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    end = start + datetime.timedelta(days=2)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hush azure test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    import ipaddress

    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (state_dir / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain = state_dir / "server.pem"
    chain.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + leaf_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    chain.chmod(0o600)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(chain)
    return ctx


def main() -> None:
    global STATE
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--tenant", default=str(uuid.uuid4()))
    args = parser.parse_args()
    STATE = State(args.tenant)
    ctx = make_tls(args.state)
    httpd = ThreadingHTTPServer((args.host, args.port), Handler)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    print(f"azure test server on https://{args.host}:{args.port} tenant {args.tenant}", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
