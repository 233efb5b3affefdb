#!/usr/bin/env bash
# Installs the servers the test suite runs against (no Docker): MinIO, fake-gcs-server, Caddy (a static
# HTTP file server with Range, ETag and Last-Modified) and the CNCF distribution registry (OCI) and the ORAS CLI with `go install`
# into $(go env GOPATH)/bin, nektos/act
# (the end-to-end runner of test/e2e/, in host mode) the same way, and a
# Python virtualenv with modelkit at .test-servers/venv and one with model-signing at .test-servers/venv-signing
# for interop tests. Azurite comes from npm (devDependency).
# Idempotent: installs only what is missing or at another version; a no-op run takes well under a second.
set -euo pipefail

# Pins. MinIO publishes no semver tags (its RELEASE.* tags are refused by the module proxy), so it is pinned by
# pseudo-version: the last commit of the (now archived, source-only) repository, which builds with Go 1.26.
MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"
FAKE_GCS_VERSION="v1.56.1"
CADDY_VERSION="v2.11.9"
# The CNCF distribution registry (the reference OCI registry) that docs/oci.md measured.
REGISTRY_VERSION="v3.1.2"
# The ORAS CLI: the OCI tool chain's reference client, for interop tests (pull what assetkit pushed, push what
# assetkit imports) and as the benchmark's peer on registries.
ORAS_VERSION="v1.3.6"
# act >= 0.2.81 knows `runs.using: node24`; 0.2.89 is the newest release.
ACT_VERSION="v0.2.89"
MODELKIT_SPEC="modelkit[assets-s3,assets-gcs,assets-az]==0.1.3"
MODELKIT_VERSION="0.1.3"
# model-signing imports OpenSSL without declaring pyOpenSSL (1.1.1): both are installed.
MODEL_SIGNING_VERSION="1.1.1"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state="$root/.test-servers"
mkdir -p "$state"

command -v go >/dev/null || { echo "install-test-servers: 'go' not found on PATH (Go >= 1.26 is needed)" >&2; exit 1; }
source "$root/scripts/install-common.sh"

# version_of BINARY MODULE: the module version a Go binary was built from, or nothing.
version_of() {
  [ -x "$1" ] || return 0
  go version -m "$1" 2>/dev/null | awk -v m="$2" '$1 == "mod" && $2 == m { print $3 }'
}

fail() {
  echo "install-test-servers: $1 failed; last lines of $2:" >&2
  tail -n 30 "$2" >&2
  return 1
}

go_install() { # name module version package
  local name="$1" module="$2" version="$3" package="$4" bin="$bindir/$1" log="$state/install-$1.log"
  if [ "$(version_of "$bin" "$module")" = "$version" ]; then return 0; fi
  echo "install-test-servers: go install $package@$version"
  local t0=$SECONDS
  # -buildvcs=false: there is no VCS info in a module zip; CGO off gives static binaries, no C toolchain needed.
  CGO_ENABLED=0 go install -buildvcs=false "$package@$version" >"$log" 2>&1 || { fail "go install $name" "$log"; return 1; }
  echo "install-test-servers:   $name installed in $((SECONDS - t0)) s"
}

# pip_venv VENV LABEL "DIST-INFO..." SPEC...: a Python virtualenv at .test-servers/VENV with SPECs installed, made
# afresh unless every DIST-INFO (glob under site-packages) is there, so a changed pin reinstalls.
pip_venv() {
  local name="$1" venv="$state/$1" label="$2" dist_info log="$state/install-$2.log"
  read -ra dist_info <<<"$3"
  shift 3
  local installed=0
  if "$venv/bin/python" -c "" 2>/dev/null; then
    installed=1
    for d in "${dist_info[@]}"; do
      compgen -G "$venv/lib/python3*/site-packages/$d" >/dev/null || installed=0
    done
  fi
  [ "$installed" = 1 ] && return 0
  local py
  py="$(command -v python3 || true)"
  [ -n "$py" ] || { echo "install-test-servers: python3 not found (needed for $label interop)" >&2; return 1; }
  echo "install-test-servers: pip install $* into .test-servers/$name"
  local t0=$SECONDS
  {
    rm -rf "$venv" &&
      "$py" -m venv "$venv" &&
      "$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q "$@"
  } >"$log" 2>&1 || { fail "pip install $label" "$log"; return 1; }
  echo "install-test-servers:   $label installed in $((SECONDS - t0)) s"
}

# pip is network-bound and go is CPU-bound: run them side by side.
pip_venv venv modelkit "modelkit-$MODELKIT_VERSION.dist-info" "$MODELKIT_SPEC" &
modelkit_pid=$!
# Apart from modelkit's venv: model-signing would downgrade the cryptography that modelkit's cloud SDKs use.
pip_venv venv-signing model-signing "model_signing-$MODEL_SIGNING_VERSION.dist-info pyopenssl-*.dist-info" \
  "model-signing==$MODEL_SIGNING_VERSION" pyopenssl &
signing_pid=$!
status=0
go_install minio github.com/minio/minio "$MINIO_VERSION" github.com/minio/minio || status=1
go_install fake-gcs-server github.com/fsouza/fake-gcs-server "$FAKE_GCS_VERSION" github.com/fsouza/fake-gcs-server || status=1
go_install caddy github.com/caddyserver/caddy/v2 "$CADDY_VERSION" github.com/caddyserver/caddy/v2/cmd/caddy || status=1
go_install registry github.com/distribution/distribution/v3 "$REGISTRY_VERSION" github.com/distribution/distribution/v3/cmd/registry || status=1
go_install act github.com/nektos/act "$ACT_VERSION" github.com/nektos/act || status=1
go_install oras oras.land/oras "$ORAS_VERSION" oras.land/oras/cmd/oras || status=1
wait "$modelkit_pid" || status=1
wait "$signing_pid" || status=1
if [ ! -x "$root/node_modules/.bin/azurite-blob" ]; then
  echo "install-test-servers: node_modules/.bin/azurite-blob is missing: run 'npm ci' first" >&2
  status=1
fi
exit "$status"
