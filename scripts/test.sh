#!/usr/bin/env bash
# The whole test suite, as README.md gives it: `buf lint` of the contract, then every Rust test
# (unit, conformance vectors, end-to-end tests that start the real osam binary and call it from
# Rust, grpcurl and a generated Python client), then one osam-client example against the embedded
# default. The Python tools (grpcio-tools, grpcurl, buf) are
# installed into target/test-tools so the machine's Python stays untouched.
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

buf lint
cargo nextest run --workspace --no-fail-fast
bash scripts/example-against-embedded-default.sh
