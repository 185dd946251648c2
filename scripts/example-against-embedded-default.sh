#!/usr/bin/env bash
# Runs the catalog_batch_check example of osam-client against `osam serve` with its embedded
# defaults, as a user following the README would, and checks what it prints.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet -p osam-server -p osam-client --examples --bins
state=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export OSAM_SERVER__STATE_DIR="$state"
target/debug/osam serve --listen "127.0.0.1:$port" 2>"$state/serve.log" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$state"' EXIT

for _ in $(seq 1 100); do
  grep -q "listening" "$state/serve.log" && break
  sleep 0.1
done
token=$(target/debug/osam dev-token --user alice 2>/dev/null)
output=$(OSAM_ENDPOINT="http://127.0.0.1:$port" OSAM_USER_TOKEN="$token" target/debug/examples/catalog_batch_check)
echo "$output"
expected="search-s1: allowed for alice
download-s1: allowed for alice
search-s1-s2: denied for alice
edit-s1: denied for alice"
if [ "$output" != "$expected" ]; then
  echo "catalog_batch_check printed something else than expected:" >&2
  echo "$expected" >&2
  exit 1
fi
echo "examples: 1 passed, 0 failed"
