#!/usr/bin/env bash
# scripts/services/moto.sh — a throwaway moto server (AWS mock: KMS, STS, Secrets Manager, SSM, …).
#
#   eval "$(scripts/services/moto.sh start)"   start; prints only `export VAR=…` lines on stdout
#   scripts/services/moto.sh stop              stop exactly the process this script started
#   scripts/services/moto.sh env               print the exports of the running server again
#
# Exports: HUSH_MOTO_URL (http://127.0.0.1:<random free port>), and ESO's AWS_SECRETSMANAGER_ENDPOINT,
# AWS_SSM_ENDPOINT, AWS_STS_ENDPOINT, and the SDKs' AWS_ENDPOINT_URL_ECR (the
# ECRAuthorizationToken generator) pointing at it. moto accepts any credentials and
# region; clients point at it with AWS_ENDPOINT_URL=$HUSH_MOTO_URL and dummy AWS_ACCESS_KEY_ID /
# AWS_SECRET_ACCESS_KEY. The binary is $HUSH_PEER_MOTO_SERVER (peers.env) or `moto_server`.
set -euo pipefail

NAME=moto
READY_SECONDS=30
# shellcheck source=scripts/lib/service.sh
. "$(dirname "$0")/../lib/service.sh"

launch() { exec setsid "$(peer HUSH_PEER_MOTO_SERVER moto_server)" -H 127.0.0.1 -p "$1"; }
ready() { http_ok "$1/moto-api/"; }
configure() { :; }

print_env() {
  local url
  url=$(service_url)
  printf 'export HUSH_MOTO_URL=%s\n' "$url"
  # ESO's endpoint variables (AWS provider of the ExternalSecret controller, e2e tests).
  printf 'export AWS_SECRETSMANAGER_ENDPOINT=%s AWS_SSM_ENDPOINT=%s AWS_STS_ENDPOINT=%s\n' "$url" "$url" "$url"
  printf 'export AWS_ENDPOINT_URL_ECR=%s\n' "$url"
}

service_main "$@"
