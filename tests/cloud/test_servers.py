"""The cloud test servers speak the real wire protocols: the clouds' official client libraries
(google-cloud-secret-manager, google-cloud-kms over REST, google-auth; azure-identity,
azure-keyvault-secrets, azure-keyvault-keys) round-trip secrets and keys against them, token
endpoints included. Run by scripts/test.sh (stage cloud-servers) against the servers of stage
services ($HUSH_GCP_URL, $HUSH_AZURE_URL, $HUSH_AZURE_CA); a missing server fails, never skips.
"""

from __future__ import annotations

import datetime
import json
import os
import ssl
import time
import urllib.request
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: start the test servers (scripts/services/gcp.sh, azure.sh start)")
    return value


def post(url: str, payload: dict | None = None, ca: str | None = None) -> dict:
    ctx = ssl.create_default_context(cafile=ca) if ca else None
    req = urllib.request.Request(url, data=json.dumps(payload or {}).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
        return json.loads(r.read() or b"{}")


def get(url: str, ca: str | None = None) -> dict:
    ctx = ssl.create_default_context(cafile=ca) if ca else None
    with urllib.request.urlopen(url, timeout=10, context=ctx) as r:
        return json.loads(r.read())


# --- Google Cloud --------------------------------------------------------------------------------


@pytest.fixture
def gcp():
    url = env("HUSH_GCP_URL")
    email = f"sa-{uuid.uuid4().hex[:8]}@hush-test.iam.gserviceaccount.com"
    info = post(f"{url}/hush/service-accounts", {"email": email, "project": "hush-test"})
    return url, info


def gcp_credentials(info):
    from google.oauth2 import service_account

    return service_account.Credentials.from_service_account_info(
        info, scopes=["https://www.googleapis.com/auth/cloud-platform"])


def test_gcp_token_endpoint_jwt_bearer(gcp):
    import google.auth.exceptions
    import google.auth.transport.requests

    url, info = gcp
    creds = gcp_credentials(info)
    creds.refresh(google.auth.transport.requests.Request())
    assert creds.token and creds.expiry
    assert get(f"{url}/hush/calls")["tokens"][info["client_email"]] == 1
    # A key the server does not know, and a token for another audience, are refused.
    other = dict(info, client_email="nobody@hush-test.iam.gserviceaccount.com")
    with pytest.raises(google.auth.exceptions.RefreshError):
        gcp_credentials(other).refresh(google.auth.transport.requests.Request())
    # An assertion signed by another key is refused.
    stranger = post(f"{url}/hush/service-accounts", {"email": "stranger@hush-test.iam.gserviceaccount.com"})
    forged = dict(info, private_key=stranger["private_key"])
    with pytest.raises(google.auth.exceptions.RefreshError):
        gcp_credentials(forged).refresh(google.auth.transport.requests.Request())
    assert get(f"{url}/hush/calls")["tokens"][info["client_email"]] == 1


def test_gcp_secret_manager_round_trip(gcp):
    import google.api_core.exceptions
    from google.cloud import secretmanager_v1 as sm
    from google.cloud.secretmanager_v1.services.secret_manager_service.transports.rest import (
        SecretManagerServiceRestTransport,
    )

    url, info = gcp
    creds = gcp_credentials(info)
    # An access token from the token endpoint (not a self-signed JWT), as hush uses.
    transport = SecretManagerServiceRestTransport(host=url, credentials=creds, always_use_jwt_access=False)
    client = sm.SecretManagerServiceClient(transport=transport)
    parent = "projects/hush-test"
    sid = f"db-{uuid.uuid4().hex[:8]}"
    client.create_secret(parent=parent, secret_id=sid,
                         secret={"replication": {"automatic": {}}, "labels": {"team": "a"}})
    client.add_secret_version(parent=f"{parent}/secrets/{sid}", payload={"data": b"v1"})
    client.add_secret_version(parent=f"{parent}/secrets/{sid}", payload={"data": b"v2\x00\xff"})
    latest = client.access_secret_version(name=f"{parent}/secrets/{sid}/versions/latest")
    assert latest.payload.data == b"v2\x00\xff"
    assert latest.name.endswith(f"/secrets/{sid}/versions/2")
    assert client.access_secret_version(name=f"{parent}/secrets/{sid}/versions/1").payload.data == b"v1"
    names = [s.name for s in client.list_secrets(request={"parent": parent, "filter": "labels.team=a"})]
    assert f"{parent}/secrets/{sid}" in names
    assert not [n for n in client.list_secrets(request={"parent": parent, "filter": "labels.team=b"}) if sid in n.name]
    pages = client.list_secrets(request={"parent": parent, "page_size": 1})
    assert len(list(pages)) >= 1
    client.disable_secret_version(name=f"{parent}/secrets/{sid}/versions/2")
    with pytest.raises(google.api_core.exceptions.GoogleAPICallError):
        client.access_secret_version(name=f"{parent}/secrets/{sid}/versions/2")
    assert client.access_secret_version(name=f"{parent}/secrets/{sid}/versions/latest").payload.data == b"v1"
    with pytest.raises(google.api_core.exceptions.NotFound):
        client.access_secret_version(name=f"{parent}/secrets/nope-{sid}/versions/latest")
    # One token for all of it; the calls are counted per route.
    calls = get(f"{url}/hush/calls")
    assert calls["tokens"][info["client_email"]] == 1
    assert calls["calls"][f"GET /v1/{parent}/secrets/{sid}/versions/1:access"] == 1


def test_gcp_regional_secrets(gcp):
    """Regional secrets (``projects/P/locations/L/secrets``) through the official client, apart
    from the global secret of the same id."""
    from google.cloud import secretmanager_v1 as sm
    from google.cloud.secretmanager_v1.services.secret_manager_service.transports.rest import (
        SecretManagerServiceRestTransport,
    )

    url, info = gcp
    transport = SecretManagerServiceRestTransport(host=url, credentials=gcp_credentials(info),
                                                  always_use_jwt_access=False)
    client = sm.SecretManagerServiceClient(transport=transport)
    sid = f"r-{uuid.uuid4().hex[:8]}"
    for parent, value in [("projects/hush-test", b"global"),
                          ("projects/hush-test/locations/europe-west1", b"regional")]:
        created = client.create_secret(parent=parent, secret_id=sid, secret={})
        assert created.name == f"{parent}/secrets/{sid}"
        client.add_secret_version(parent=created.name, payload={"data": value})
    regional = "projects/hush-test/locations/europe-west1"
    got = client.access_secret_version(name=f"{regional}/secrets/{sid}/versions/latest")
    assert got.payload.data == b"regional"
    assert got.name == f"{regional}/secrets/{sid}/versions/1"
    assert client.access_secret_version(
        name=f"projects/hush-test/secrets/{sid}/versions/latest").payload.data == b"global"
    names = [s.name for s in client.list_secrets(request={"parent": regional})]
    assert f"{regional}/secrets/{sid}" in names and all(n.startswith(f"{regional}/") for n in names), names


def test_gcp_self_signed_jwt_and_no_credentials(gcp):
    import urllib.error

    from google.cloud import secretmanager_v1 as sm

    url, info = gcp
    # The library's default: a self-signed JWT instead of an access token (Google accepts both).
    client = sm.SecretManagerServiceClient(
        credentials=gcp_credentials(info), transport="rest", client_options={"api_endpoint": url})
    list(client.list_secrets(parent="projects/hush-test"))
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        req = urllib.request.Request(f"{url}/v1/projects/hush-test/secrets", headers=headers)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == 401


def test_gcp_kms_round_trip(gcp):
    from google.cloud import kms_v1

    url, info = gcp
    client = kms_v1.KeyManagementServiceClient(
        credentials=gcp_credentials(info), transport="rest", client_options={"api_endpoint": url})
    location = "projects/hush-test/locations/global"
    ring = client.create_key_ring(parent=location, key_ring_id=f"ring-{uuid.uuid4().hex[:8]}", key_ring={})
    key = client.create_crypto_key(parent=ring.name, crypto_key_id="sops",
                                   crypto_key={"purpose": kms_v1.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT})
    data_key = os.urandom(32)
    enc = client.encrypt(request={"name": key.name, "plaintext": data_key})
    assert enc.ciphertext and enc.name.startswith(key.name)
    dec = client.decrypt(request={"name": key.name, "ciphertext": enc.ciphertext})
    assert dec.plaintext == data_key
    other = client.create_crypto_key(parent=ring.name, crypto_key_id="other",
                                     crypto_key={"purpose": kms_v1.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT})
    import google.api_core.exceptions

    with pytest.raises(google.api_core.exceptions.GoogleAPICallError):
        client.decrypt(request={"name": other.name, "ciphertext": enc.ciphertext})


def test_gcp_metadata_server(gcp, monkeypatch):
    """google-auth's Compute Engine credentials (what runs on GKE) through GCE_METADATA_HOST."""
    import google.auth.transport.requests
    from google.auth import compute_engine
    from google.cloud import secretmanager

    url, _info = gcp
    email = f"node-{uuid.uuid4().hex[:8]}@hush-test.iam.gserviceaccount.com"
    post(f"{url}/hush/metadata-identity", {"email": email})
    monkeypatch.setenv("GCE_METADATA_HOST", url.removeprefix("http://"))
    creds = compute_engine.Credentials()
    creds.refresh(google.auth.transport.requests.Request())
    assert creds.token and creds.service_account_email == email
    client = secretmanager.SecretManagerServiceClient(
        credentials=creds, transport="rest", client_options={"api_endpoint": url})
    listed = client.list_secrets(request={"parent": "projects/hush-test"})
    assert listed is not None
    list(listed)
    assert get(f"{url}/hush/calls")["tokens"][email] == 1


# --- Azure ---------------------------------------------------------------------------------------


@pytest.fixture
def azure(monkeypatch):
    url, ca = env("HUSH_AZURE_URL"), env("HUSH_AZURE_CA")
    # MSAL and azure-core both use requests: trust the server's CA for this test only.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca)
    app = post(f"{url}/hush/apps", {}, ca)
    return url, ca, app


def secret_credential(url, app):
    from azure.identity import ClientSecretCredential

    return ClientSecretCredential(app["tenant_id"], app["client_id"], app["client_secret"],
                                  authority=url, disable_instance_discovery=True)


def test_azure_client_secret_and_key_vault_secrets(azure):
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
    from azure.keyvault.secrets import SecretClient

    url, ca, app = azure
    cred = secret_credential(url, app)
    client = SecretClient(vault_url=url, credential=cred, verify_challenge_resource=False)
    name = f"db-{uuid.uuid4().hex[:8]}"
    first = client.set_secret(name, "v1", tags={"team": "a"})
    second = client.set_secret(name, "v2 ünïcode", tags={"team": "a"}, content_type="text/plain")
    assert client.get_secret(name).value == "v2 ünïcode"
    assert client.get_secret(name, first.properties.version).value == "v1"
    assert first.properties.tags == {"team": "a"}
    assert name in [p.name for p in client.list_properties_of_secrets()]
    versions = {p.version for p in client.list_properties_of_secret_versions(name)}
    assert versions == {first.properties.version, second.properties.version}
    client.update_secret_properties(name, second.properties.version, enabled=False)
    with pytest.raises(HttpResponseError) as err:
        client.get_secret(name, second.properties.version)
    assert err.value.status_code == 403
    with pytest.raises(ResourceNotFoundError):
        client.get_secret(f"nope-{name}")
    client.begin_delete_secret(name).wait()
    with pytest.raises(ResourceNotFoundError):
        client.get_secret(name)
    calls = get(f"{url}/hush/calls", ca)
    assert calls["tokens"][app["client_id"]] == 1, calls
    # A wrong secret is refused by the token endpoint.
    bad = dict(app, client_secret="wrong")
    with pytest.raises(ClientAuthenticationError):
        SecretClient(vault_url=url, credential=secret_credential(url, bad),
                     verify_challenge_resource=False).get_secret(name)


def test_azure_keys_wrap_and_unwrap(azure):
    from azure.keyvault.keys import KeyClient
    from azure.keyvault.keys.crypto import CryptographyClient, KeyWrapAlgorithm

    url, ca, app = azure
    cred = secret_credential(url, app)
    keys = KeyClient(vault_url=url, credential=cred, verify_challenge_resource=False)
    key = keys.create_rsa_key(f"sops-{uuid.uuid4().hex[:8]}", size=2048)
    assert keys.get_key(key.name).id == key.id
    crypto = CryptographyClient(key.id, cred, verify_challenge_resource=False)
    data_key = os.urandom(32)
    # The library wraps locally with the public key it fetched and unwraps on the server: the
    # server's RSA-OAEP-256 agrees with the library's.
    wrapped = crypto.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, data_key)
    assert crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped.encrypted_key).key == data_key
    wrapped = crypto.wrap_key(KeyWrapAlgorithm.rsa_oaep, data_key)
    assert crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep, wrapped.encrypted_key).key == data_key
    calls = get(f"{url}/hush/calls", ca)["calls"]
    assert any(k.endswith("/unwrapkey") for k in calls), calls


def self_signed(key, cn: str):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))


def test_azure_managed_identity_imds(azure, monkeypatch):
    """azure-identity's ManagedIdentityCredential through IMDS (its pod-identity host variable
    points it at the server), a user-assigned identity by client id, then a Key Vault read."""
    from azure.identity import ManagedIdentityCredential
    from azure.keyvault.secrets import SecretClient

    url, ca, _app = azure
    client_id = str(uuid.uuid4())
    post(f"{url}/hush/managed-identities", {"client_id": client_id}, ca)
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", url)
    cred = ManagedIdentityCredential(client_id=client_id)
    token = cred.get_token("https://vault.azure.net/.default")
    assert token.token and token.expires_on > time.time()
    client = SecretClient(vault_url=url, credential=cred, verify_challenge_resource=False)
    name = f"mi-{uuid.uuid4().hex[:8]}"
    client.set_secret(name, "v")
    assert client.get_secret(name).value == "v"
    assert get(f"{url}/hush/calls", ca)["tokens"][client_id] == 1
    # An identity the machine does not have gets no token.
    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity import CredentialUnavailableError
    with pytest.raises((ClientAuthenticationError, CredentialUnavailableError)):
        ManagedIdentityCredential(client_id=str(uuid.uuid4())).get_token("https://vault.azure.net/.default")


def test_azure_client_certificate(azure):
    from azure.identity import CertificateCredential

    url, ca, _ = azure
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = self_signed(key, "hush-test-app")
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    app = post(f"{url}/hush/apps", {"certificate_pem": cert_pem.decode()}, ca)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    cred = CertificateCredential(app["tenant_id"], app["client_id"], certificate_data=key_pem + cert_pem,
                                 authority=url, disable_instance_discovery=True)
    assert cred.get_token("https://vault.azure.net/.default").token
    assert get(f"{url}/hush/calls", ca)["tokens"][app["client_id"]] == 1


def test_azure_workload_identity_federated_token(azure):
    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity import ClientAssertionCredential

    from cloudcommon import b64url

    url, ca, _ = azure
    issuer_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    issuer = "https://kubernetes.default.svc"
    subject = "system:serviceaccount:team-a:app"
    public_pem = issuer_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    app = post(f"{url}/hush/apps", {"federated": {"issuer": issuer, "subject": subject,
                                                   "public_keys_pem": [public_pem]}}, ca)

    def token(sub: str) -> str:
        head = b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
        now = int(time.time())
        body = b64url(json.dumps({"iss": issuer, "sub": sub, "aud": ["api://AzureADTokenExchange"],
                                  "iat": now, "exp": now + 600}).encode())
        from cryptography.hazmat.primitives.asymmetric import padding

        sig = issuer_key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{head}.{body}.{b64url(sig)}"

    cred = ClientAssertionCredential(app["tenant_id"], app["client_id"], lambda: token(subject),
                                     authority=url, disable_instance_discovery=True)
    assert cred.get_token("https://vault.azure.net/.default").token
    wrong = ClientAssertionCredential(app["tenant_id"], app["client_id"], lambda: token("system:serviceaccount:x:y"),
                                      authority=url, disable_instance_discovery=True)
    with pytest.raises(ClientAuthenticationError):
        wrong.get_token("https://vault.azure.net/.default")


def test_azure_workload_identity_token_file_and_issuer_jwks(azure, tmp_path):
    """azure-identity's WorkloadIdentityCredential (the federated token file the Azure workload
    identity webhook mounts, what `hush sops` and the controller's own identity read) against an
    application whose federated credential trusts an issuer by its JWK set, as the test
    kube-apiserver publishes it at /openid/v1/jwks (what the e2e test registers)."""
    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity import WorkloadIdentityCredential
    from azure.keyvault.secrets import SecretClient
    from cryptography.hazmat.primitives.asymmetric import padding

    from cloudcommon import b64url

    url, ca, _ = azure
    issuer_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = issuer_key.public_key().public_numbers()
    jwk = {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "k1",
           "n": b64url(numbers.n.to_bytes(256, "big")), "e": b64url(numbers.e.to_bytes(3, "big"))}
    issuer = "https://127.0.0.1:6443"
    subject = "system:serviceaccount:team-a:app"
    app = post(f"{url}/hush/apps", {"federated": {"issuer": issuer, "subject": subject,
                                                   "jwks": {"keys": [jwk]}}}, ca)

    def token(aud: str, exp: int = 600) -> str:
        head = b64url(json.dumps({"alg": "RS256", "kid": "k1"}).encode())
        now = int(time.time())
        body = b64url(json.dumps({"iss": issuer, "sub": subject, "aud": [aud],
                                  "iat": now, "exp": now + exp}).encode())
        sig = issuer_key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{head}.{body}.{b64url(sig)}"

    path = tmp_path / "azure-identity-token"
    path.write_text(token("api://AzureADTokenExchange"))
    cred = WorkloadIdentityCredential(tenant_id=app["tenant_id"], client_id=app["client_id"],
                                      token_file_path=str(path), authority=url,
                                      disable_instance_discovery=True)
    client = SecretClient(vault_url=url, credential=cred, verify_challenge_resource=False)
    name = f"wi-{uuid.uuid4().hex[:8]}"
    client.set_secret(name, "v")
    assert client.get_secret(name).value == "v"
    assert get(f"{url}/hush/calls", ca)["tokens"][app["client_id"]] == 1
    # Another audience, and an expired token, are refused; no token is counted for them.
    for bad in (token("api://other"), token("api://AzureADTokenExchange", exp=-120)):
        path.write_text(bad)
        fresh = WorkloadIdentityCredential(tenant_id=app["tenant_id"], client_id=app["client_id"],
                                           token_file_path=str(path), authority=url,
                                           disable_instance_discovery=True)
        with pytest.raises(ClientAuthenticationError):
            fresh.get_token("https://vault.azure.net/.default")
    assert get(f"{url}/hush/calls", ca)["tokens"][app["client_id"]] == 1


def test_gcp_workload_identity_sts_and_impersonation(gcp, tmp_path):
    """google-auth's external-account (identity_pool) credentials: a subject JWT from a file
    exchanged at the server's STS (``/v1/token``), then impersonation of a Google service account
    through IAM Credentials ``generateAccessToken``, then a Secret Manager call; what hush's
    ``auth.workloadIdentity`` sends (with a kube-apiserver's token in the e2e test)."""
    import google.auth.exceptions
    import google.auth.transport.requests
    from cryptography.hazmat.primitives.asymmetric import padding
    from google.auth import identity_pool
    from google.cloud import secretmanager

    from cloudcommon import b64url

    url, _info = gcp
    issuer_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = issuer_key.public_key().public_numbers()
    jwks = {"keys": [{"kty": "RSA", "alg": "RS256", "kid": "k1",
                      "n": b64url(numbers.n.to_bytes(256, "big")), "e": b64url(numbers.e.to_bytes(3, "big"))}]}
    tag = uuid.uuid4().hex[:8]
    issuer, pool = f"https://kube-{tag}.example", "hush-test.svc.id.goog"
    audience = f"identitynamespace:{pool}:https://container.googleapis.com/v1/projects/hush-test/locations/europe-west1/clusters/c-{tag}"
    post(f"{url}/hush/workload-providers", {"audience": audience, "issuer": issuer, "jwks": jwks,
                                            "subject_audience": pool})
    subject = f"system:serviceaccount:team-{tag}:app"
    gsa = f"app-{tag}@hush-test.iam.gserviceaccount.com"
    post(f"{url}/hush/impersonation", {"service_account": gsa, "members": [subject]})

    def token(aud: str, sub: str = subject) -> str:
        head = b64url(json.dumps({"alg": "RS256", "kid": "k1"}).encode())
        now = int(time.time())
        body = b64url(json.dumps({"iss": issuer, "sub": sub, "aud": [aud], "iat": now, "exp": now + 600}).encode())
        sig = issuer_key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{head}.{body}.{b64url(sig)}"

    path = tmp_path / "token"

    def credentials(impersonate: bool):
        info = {"type": "external_account", "audience": audience,
                "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
                "token_url": f"{url}/v1/token", "credential_source": {"file": str(path)}}
        if impersonate:
            info["service_account_impersonation_url"] = (
                f"{url}/v1/projects/-/serviceAccounts/{gsa}:generateAccessToken")
        return identity_pool.Credentials.from_info(
            info, scopes=["https://www.googleapis.com/auth/cloud-platform"])

    path.write_text(token(pool))
    creds = credentials(impersonate=True)
    creds.refresh(google.auth.transport.requests.Request())
    assert creds.token
    client = secretmanager.SecretManagerServiceClient(
        credentials=creds, transport="rest", client_options={"api_endpoint": url})
    list(client.list_secrets(request={"parent": "projects/hush-test"}))
    calls = get(f"{url}/hush/calls")
    assert calls["tokens"][f"sts:{subject}"] == 1 and calls["tokens"][gsa] == 1, calls
    # The federated token alone (no impersonation) is an access token too.
    plain = credentials(impersonate=False)
    plain.refresh(google.auth.transport.requests.Request())
    assert plain.token
    # A token for another audience, and a subject not allowed to impersonate, are refused.
    path.write_text(token("other-audience"))
    with pytest.raises(google.auth.exceptions.GoogleAuthError):
        credentials(impersonate=False).refresh(google.auth.transport.requests.Request())
    path.write_text(token(pool, sub="system:serviceaccount:other:app"))
    with pytest.raises(google.auth.exceptions.GoogleAuthError):
        credentials(impersonate=True).refresh(google.auth.transport.requests.Request())
    assert get(f"{url}/hush/calls")["tokens"][gsa] == 1
