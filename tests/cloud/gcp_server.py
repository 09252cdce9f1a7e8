"""A Google Cloud test server: drongo's Secret Manager and Cloud KMS (REST v1), plus what drongo
leaves out and hush needs to be tested as against the real cloud.

Added here (drongo 0.8.0 has none of it):
- the OAuth2 token endpoint (``POST /token``, RFC 7523 JWT-bearer grant, as
  ``oauth2.googleapis.com/token``): RS256 assertions of registered service-account keys are
  checked (signature, ``iss``, ``aud`` = this endpoint, ``exp``) and exchanged for access tokens;
- bearer-token checks on every API call (401 ``UNAUTHENTICATED`` without a valid token; a
  service-account self-signed JWT, as Google accepts, counts as valid);
- ``filter`` (``labels.KEY=VALUE``, ``labels.KEY:*``, ``name:TEXT``, AND-ed) and
  ``pageSize``/``pageToken`` on ``secrets.list``;
- regional secrets (``projects/P/locations/L/secrets/…``, kept apart from global ones);
- counters (tokens per service account, calls per route) and a management API:
  ``POST /hush/service-accounts {"email", "project", "token_lifetime"?}`` returns a new service-account JSON key
  (``token_uri`` pointing here), ``POST /hush/token-lifetime {"seconds"}``, ``GET /hush/calls``,
  ``POST /hush/reset-calls``, ``POST /hush/metadata-identity {"email"}`` (the service account the
  metadata server hands tokens of);
- the GKE/GCE metadata server's ``GET /computeMetadata/v1/instance/service-accounts/default/token``
  (``Metadata-Flavor: Google``), reached by ``GCE_METADATA_HOST``, and the cluster's
  ``project/project-id``, ``instance/attributes/cluster-location`` and ``cluster-name``
  (``POST /hush/metadata-cluster {"project", "location", "name"}``);
- workload identity: Google STS's token exchange ``POST /v1/token`` (RFC 8693 form, as google-auth
  and hush send it): the subject token must be a JWT of a registered provider's issuer, signed by
  a key of its JWK set, for its audience, unexpired (``POST /hush/workload-providers {"audience",
  "issuer", "jwks", "subject_audience"}``; ``audience`` is what the exchange names:
  ``identitynamespace:POOL:PROVIDER`` for GKE, ``//iam.googleapis.com/…`` for federation); the
  answer is a federated token of the subject. IAM Credentials' ``POST
  /v1/projects/-/serviceAccounts/EMAIL:generateAccessToken`` turns a federated token into the
  service account's token when the subject may impersonate it (``POST /hush/impersonation
  {"service_account", "members": [subject…]}``). Tokens are counted per principal: ``sts:SUBJECT``
  for exchanges, the e-mail for ``generateAccessToken``.

Run: ``python tests/cloud/gcp_server.py --port N``. The official client libraries reach it with
``client_options={"api_endpoint": URL}`` and ``transport="rest"`` (tests/cloud/test_servers.py).
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cloudcommon import (  # noqa: E402
    Calls,
    JwtError,
    Tokens,
    bearer,
    jwks_public_keys,
    jwt_unverified,
    jwt_verify,
    new_rsa_key,
    private_pem,
)
from drongo.server import DrongoHTTPRequestHandler, create_server  # noqa: E402

GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
SUBJECT_TYPES = ("urn:ietf:params:oauth:token-type:jwt", "urn:ietf:params:oauth:token-type:id_token")
GENERATE = re.compile(r"^/v1/projects/-/serviceAccounts/([^/:]+):generateAccessToken$")
MAX_BODY = 1 << 20
# Regional secrets (``projects/P/locations/L/secrets…``), which drongo does not route.
REGIONAL = re.compile(r"^/v1/projects/([^/@]+)/locations/([a-z0-9-]+)/secrets(.*)$")


class State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.keys: dict[str, object] = {}  # client_email -> public key
        self.calls = Calls()
        self.tokens = Tokens()
        self.token_lifetime = 3600
        self.lifetimes: dict[str, int] = {}  # client_email -> token lifetime
        self.metadata_email: str | None = None  # the instance's service account (metadata server)
        self.cluster: dict[str, str] = {}  # metadata attributes: project, location, name
        self.providers: dict[str, dict] = {}  # STS audience -> {issuer, jwks, subject_audience}
        self.impersonation: dict[str, set[str]] = {}  # service account -> subjects allowed


STATE = State()


def _json(status: int, payload: dict, extra: dict | None = None):
    headers = {"Content-Type": "application/json"}
    headers.update(extra or {})
    return status, headers, json.dumps(payload)


def _google_error(status: int, message: str, code: str):
    return _json(status, {"error": {"code": status, "message": message, "status": code}})


def _matches(secret: dict, terms: list[str]) -> bool:
    labels = secret.get("labels") or {}
    short = secret["name"].rsplit("/", 1)[-1]
    for term in terms:
        if term.startswith("labels.") and term.endswith(":*"):
            if term[7:-2] not in labels:
                return False
        elif term.startswith("labels.") and "=" in term:
            key, value = term[7:].split("=", 1)
            if labels.get(key) != value:
                return False
        elif term.startswith("name:"):
            if term[5:] not in short:
                return False
        else:
            raise ValueError(f"unsupported filter term {term!r}")
    return True


class Handler(DrongoHTTPRequestHandler):
    """drongo's handler behind the token endpoint, bearer checks, counters and list filters."""

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(length) if length else b""

    def _hush(self) -> None:
        split = urlsplit(self.path)
        path, query = split.path, parse_qs(split.query)
        if path == "/token" and self.command == "POST":
            self._write(self._token(self._body()))
            return
        if path.startswith("/hush/"):
            self._write(self._management(path, self._body()))
            return
        if path == "/v1/token" and self.command == "POST":
            self._write(self._sts(self._body()))
            return
        generate = GENERATE.match(path)
        if generate and self.command == "POST":
            self._write(self._generate_access_token(generate.group(1), self._body()))
            return
        cluster = {
            "/computeMetadata/v1/project/project-id": "project",
            "/computeMetadata/v1/instance/attributes/cluster-location": "location",
            "/computeMetadata/v1/instance/attributes/cluster-name": "name",
        }.get(path)
        if cluster:
            self._write(self._metadata_cluster(cluster))
            return
        if path == "/computeMetadata/v1/instance/service-accounts/default/token":
            self._write(self._metadata_token())
            return
        if path == "/computeMetadata/v1/instance/service-accounts/default/":
            self._write(self._metadata_account())
            return
        if path.startswith("/drongo/"):
            self._dispatch()
            return
        principal = self._principal()
        if principal is None:
            self._body()
            self._write(
                _google_error(
                    401,
                    "Request had invalid authentication credentials. Expected OAuth 2 access "
                    "token, login cookie or other valid authentication credential.",
                    "UNAUTHENTICATED",
                )
            )
            return
        STATE.calls.call(f"{self.command} {path}")
        self._region = None
        regional = REGIONAL.match(path)
        if regional:
            # Regional secrets live in drongo under the project "P@L"; answers name them back.
            project, location, rest = regional.groups()
            self._region = (f"projects/{project}@{location}/", f"projects/{project}/locations/{location}/")
            path = f"/v1/projects/{project}@{location}/secrets{rest}"
            self.path = path + (f"?{split.query}" if split.query else "")
        self._list_query = None
        if self.command == "GET" and path.endswith("/secrets") and "/secrets/" not in path:
            self._list_query = query
        self._dispatch()

    def _principal(self) -> str | None:
        token = bearer(self.headers)
        if not token:
            return None
        who = STATE.tokens.principal(token)
        if who is not None:
            return who
        # A self-signed service-account JWT (Google accepts these in place of an access token).
        try:
            _head, claims = jwt_unverified(token)
            with STATE.lock:
                key = STATE.keys.get(claims.get("iss", ""))
            if key is None:
                return None
            jwt_verify(token, key, None)
            return claims["iss"]
        except (JwtError, KeyError):
            return None

    def _token(self, body: bytes):
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != JWT_BEARER:
            return _json(400, {"error": "unsupported_grant_type"})
        assertion = form.get("assertion", "")
        try:
            _head, claims = jwt_unverified(assertion)
            email = claims.get("iss", "")
            with STATE.lock:
                key = STATE.keys.get(email)
            if key is None:
                return _json(400, {"error": "invalid_grant", "error_description": "Invalid grant: account not found"})
            host = self.headers.get("Host", "")
            # Google's own token URI is the audience google-auth and Go's oauth2 write whatever
            # token_uri says; this endpoint's URL is accepted too.
            jwt_verify(assertion, key, [GOOGLE_TOKEN_URI, f"http://{host}/token", f"https://{host}/token"])
            if not claims.get("scope"):
                return _json(400, {"error": "invalid_scope", "error_description": "no scope"})
        except JwtError as exc:
            return _json(400, {"error": "invalid_grant", "error_description": f"Invalid JWT: {exc}"})
        STATE.calls.token(email)
        lifetime = STATE.lifetimes.get(email, STATE.token_lifetime)
        token = STATE.tokens.issue(email, lifetime)
        return _json(200, {"access_token": token, "expires_in": lifetime, "token_type": "Bearer"})

    def _sts(self, body: bytes):
        """Google STS ``v1/token`` (RFC 8693 token exchange; errors as OAuth2 errors)."""
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != TOKEN_EXCHANGE:
            return _json(400, {"error": "unsupported_grant_type", "error_description": f"grant_type {form.get('grant_type')!r}"})
        if form.get("subject_token_type") not in SUBJECT_TYPES:
            return _json(400, {"error": "invalid_request", "error_description": "subject_token_type"})
        if form.get("requested_token_type", "urn:ietf:params:oauth:token-type:access_token") != "urn:ietf:params:oauth:token-type:access_token":
            return _json(400, {"error": "invalid_request", "error_description": "requested_token_type"})
        if not form.get("scope"):
            return _json(400, {"error": "invalid_scope", "error_description": "no scope"})
        with STATE.lock:
            provider = STATE.providers.get(form.get("audience", ""))
        if provider is None:
            return _json(400, {"error": "invalid_target", "error_description": f"The target service indicated by the \"audience\" parameters is invalid: {form.get('audience')!r}"})
        subject = form.get("subject_token", "")
        try:
            _head, claims = jwt_unverified(subject)
            if claims.get("iss") != provider["issuer"]:
                raise JwtError(f"issuer {claims.get('iss')!r} is not the provider's")
            errors = []
            for key in jwks_public_keys(provider["jwks"]):
                try:
                    jwt_verify(subject, key, provider["subject_audience"])
                    break
                except JwtError as exc:
                    errors.append(str(exc))
            else:
                raise JwtError("; ".join(errors) or "the provider has no keys")
        except JwtError as exc:
            return _json(400, {"error": "invalid_grant", "error_description": f"The subject token is invalid: {exc}"})
        who = claims.get("sub", "")
        STATE.calls.token(f"sts:{who}")
        lifetime = STATE.token_lifetime
        token = STATE.tokens.issue(f"federated:{who}", lifetime)
        return _json(200, {"access_token": token, "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                           "token_type": "Bearer", "expires_in": lifetime})

    def _generate_access_token(self, email: str, body: bytes):
        """IAM Credentials ``generateAccessToken`` for a federated principal allowed to
        impersonate ``email``."""
        token = bearer(self.headers) or ""
        principal = STATE.tokens.principal(token) or ""
        if not principal.startswith("federated:"):
            return _google_error(401, "Request had invalid authentication credentials.", "UNAUTHENTICATED")
        with STATE.lock:
            allowed = principal[len("federated:"):] in STATE.impersonation.get(email, set())
        if not allowed:
            return _google_error(403, f"Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist): {email}", "PERMISSION_DENIED")
        payload = json.loads(body or b"{}")
        if not payload.get("scope"):
            return _google_error(400, "scope is required", "INVALID_ARGUMENT")
        STATE.calls.token(email)
        lifetime = STATE.lifetimes.get(email, STATE.token_lifetime)
        issued = STATE.tokens.issue(email, lifetime)
        expire = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=lifetime)
        return _json(200, {"accessToken": issued, "expireTime": expire.strftime("%Y-%m-%dT%H:%M:%SZ")})

    def _metadata_cluster(self, what: str):
        if self.headers.get("Metadata-Flavor") != "Google":
            return 403, {"Content-Type": "text/plain"}, "Missing required header: Metadata-Flavor"
        value = STATE.cluster.get(what)
        if value is None:
            return 404, {"Content-Type": "text/plain"}, "not found"
        return 200, {"Content-Type": "application/text", "Metadata-Flavor": "Google"}, value

    def _metadata_token(self):
        """The GKE/GCE metadata server's token endpoint: ``Metadata-Flavor: Google`` required
        (403 otherwise, as the real server), a token of the instance's service account."""
        if self.headers.get("Metadata-Flavor") != "Google":
            return 403, {"Content-Type": "text/plain"}, "Missing required header: Metadata-Flavor"
        email = STATE.metadata_email
        if email is None:
            return 404, {"Content-Type": "text/plain"}, "no service account on this instance"
        STATE.calls.token(email)
        lifetime = STATE.token_lifetime
        token = STATE.tokens.issue(email, lifetime)
        return _json(200, {"access_token": token, "expires_in": lifetime, "token_type": "Bearer"},
                     {"Metadata-Flavor": "Google"})

    def _metadata_account(self):
        """``…/service-accounts/default/?recursive=true``: what google-auth reads before a token."""
        if self.headers.get("Metadata-Flavor") != "Google":
            return 403, {"Content-Type": "text/plain"}, "Missing required header: Metadata-Flavor"
        email = STATE.metadata_email or "default"
        return _json(200, {"aliases": ["default"], "email": email,
                           "scopes": ["https://www.googleapis.com/auth/cloud-platform"]},
                     {"Metadata-Flavor": "Google"})

    def _management(self, path: str, body: bytes):
        payload = json.loads(body or b"{}")
        if path == "/hush/calls":
            return _json(200, STATE.calls.snapshot())
        if path == "/hush/reset-calls":
            STATE.calls.reset()
            return _json(200, {})
        if path == "/hush/token-lifetime":
            STATE.token_lifetime = int(payload["seconds"])
            return _json(200, {})
        if path == "/hush/metadata-identity":
            STATE.metadata_email = payload["email"]
            return _json(200, {"email": STATE.metadata_email})
        if path == "/hush/metadata-cluster":
            STATE.cluster = {k: payload[k] for k in ("project", "location", "name") if payload.get(k)}
            return _json(200, STATE.cluster)
        if path == "/hush/workload-providers":
            with STATE.lock:
                STATE.providers[payload["audience"]] = {"issuer": payload["issuer"], "jwks": payload["jwks"],
                                                        "subject_audience": payload["subject_audience"]}
            return _json(200, {})
        if path == "/hush/impersonation":
            with STATE.lock:
                STATE.impersonation.setdefault(payload["service_account"], set()).update(payload["members"])
            return _json(200, {})
        if path == "/hush/service-accounts":
            email, project = payload["email"], payload.get("project", "hush-test")
            key = new_rsa_key()
            with STATE.lock:
                STATE.keys[email] = key.public_key()
                if payload.get("token_lifetime"):
                    STATE.lifetimes[email] = int(payload["token_lifetime"])
            host = self.headers.get("Host", "")
            return _json(
                200,
                {
                    "type": "service_account",
                    "project_id": project,
                    "private_key_id": f"test-{abs(hash(email)) % 10**8}",
                    "private_key": private_pem(key),
                    "client_email": email,
                    "client_id": str(abs(hash(email)) % 10**20),
                    "auth_uri": f"http://{host}/auth",
                    "token_uri": f"http://{host}/token",
                    "universe_domain": "googleapis.com",
                },
            )
        return _json(404, {"error": f"unknown management route {path}"})

    def _write(self, response) -> None:
        query = getattr(self, "_list_query", None)
        self._list_query = None
        region = getattr(self, "_region", None)
        self._region = None
        status, headers, body = response
        if region and isinstance(body, str):
            body = body.replace(region[0], region[1])
            response = (status, headers, body)
        if query is not None and status == 200:
            response = self._filtered(body, query)
        super()._write(response)

    def _filtered(self, body, query):
        listing = json.loads(body)
        secrets = listing.get("secrets", [])
        terms = (query.get("filter") or [""])[0].split()
        try:
            secrets = [s for s in secrets if _matches(s, terms)]
        except ValueError as exc:
            return _google_error(400, str(exc), "INVALID_ARGUMENT")
        size = int((query.get("pageSize") or ["0"])[0] or 0) or 25000
        start = int((query.get("pageToken") or ["0"])[0] or 0)
        page = {"secrets": secrets[start : start + size], "totalSize": len(secrets)}
        if start + size < len(secrets):
            page["nextPageToken"] = str(start + size)
        return _json(200, page)

    do_GET = _hush
    do_POST = _hush
    do_PUT = _hush
    do_PATCH = _hush
    do_DELETE = _hush


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    httpd = create_server(args.host, args.port)
    httpd.RequestHandlerClass = Handler
    print(f"gcp test server on http://{args.host}:{args.port}", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
