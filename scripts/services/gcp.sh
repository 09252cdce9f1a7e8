#!/usr/bin/env bash
# scripts/services/gcp.sh — a throwaway Google Cloud test server (tests/cloud/gcp_server.py: drongo's
# Secret Manager and Cloud KMS REST API, plus the OAuth2 token endpoint, bearer checks and call
# counters that drongo lacks).
#
#   eval "$(scripts/services/gcp.sh start)"   start; prints only `export VAR=…` lines on stdout
#   scripts/services/gcp.sh stop              stop exactly the process this script started
#   scripts/services/gcp.sh env               print the exports of the running server again
#
# Exports: HUSH_GCP_URL (http://127.0.0.1:<random free port>): the API endpoint of both services
# and, at $HUSH_GCP_URL/token, the token endpoint; hush's overrides HUSH_GCP_SECRET_MANAGER_ENDPOINT,
# HUSH_GCP_KMS_ENDPOINT, HUSH_GCP_TOKEN_ENDPOINT, HUSH_GCP_STS_ENDPOINT ($HUSH_GCP_URL/v1/token) and
# HUSH_GCP_IAM_CREDENTIALS_ENDPOINT pointing at it. A service-account key for it comes from
# `POST $HUSH_GCP_URL/hush/service-accounts {"email": …, "project": …}`.
# The interpreter is $HUSH_PEER_PYTHON (peers.env: the peers venv, where drongo is installed).
set -euo pipefail

NAME=gcp
READY_SECONDS=30
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib/service.sh
. "$HERE/../lib/service.sh"

launch() { exec setsid "$(peer HUSH_PEER_PYTHON python3)" "$HERE/../../tests/cloud/gcp_server.py" --port "$1"; }
ready() { http_ok "$1/drongo/health"; }
configure() { :; }
print_env() {
  local url
  url=$(service_url)
  printf 'export HUSH_GCP_URL=%s\n' "$url"
  # hush's Google Cloud endpoint overrides (crates/gcp, Endpoints::from_env).
  printf 'export HUSH_GCP_SECRET_MANAGER_ENDPOINT=%s HUSH_GCP_KMS_ENDPOINT=%s HUSH_GCP_TOKEN_ENDPOINT=%s/token\n' \
    "$url" "$url" "$url"
  # Workload identity: Google's STS token exchange and IAM Credentials.
  printf 'export HUSH_GCP_STS_ENDPOINT=%s/v1/token HUSH_GCP_IAM_CREDENTIALS_ENDPOINT=%s\n' "$url" "$url"
  # The GKE/GCE metadata server (Google's own variable, host:port).
  printf 'export GCE_METADATA_HOST=%s\n' "${url#http://}"
}

service_main "$@"
