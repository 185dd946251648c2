#!/usr/bin/env bash
# The whole test suite, as README.md gives it: `buf lint` of the contract, then every Rust test
# (unit, conformance vectors, end-to-end tests that start the real osam binary and call it from
# Rust, grpcurl, a generated Python client, moto, oidc-provider and Prometheus), then one
# osam-client example against the embedded default, the Helm chart and the Keycloak realm export.
# The Python tools (grpcio-tools, grpcurl, buf, moto) are installed into target/test-tools so the
# machine's Python stays untouched; oidc-provider into tests/oidc/node_modules; Prometheus from Debian.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=target/test-tools
if [ ! -x "$tools/bin/python" ]; then
  python3 -m venv "$tools"
fi
"$tools/bin/pip" install --quiet --disable-pip-version-check -r tests/python/requirements.txt
export PATH="$PWD/$tools/bin:$PATH"
# The OpenID Connect provider of tests/e2e/oidc_provider.rs, exactly as tests/oidc/package-lock.json pins it.
npm ci --prefix tests/oidc --no-audit --no-fund --loglevel=error >/dev/null

# A real Prometheus for tests/e2e/operations.rs, from Debian.
if ! command -v prometheus >/dev/null; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo -n"; fi
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

buf lint
cargo nextest run --workspace --no-fail-fast
bash scripts/example-against-embedded-default.sh
# The Helm chart (helm lint and template, rendered config checked by osam) and the Keycloak realm export.
bash deploy/helm/test-chart.sh
"$tools/bin/python" deploy/keycloak/check-realm.py
