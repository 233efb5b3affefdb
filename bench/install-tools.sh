#!/usr/bin/env bash
# Installs what the benchmark (bench/run.ts) compares assetkit with, each pinned and only when missing or at
# another version: MinIO and modelkit's virtualenv come from scripts/install-test-servers.sh; s5cmd built from
# its Go module into $(go env GOPATH)/bin; the aws CLI (v1, from PyPI) in its own virtualenv at
# .test-servers/bench-venv; rclone from Debian (apt-get; its version is whatever the distribution ships).
set -euo pipefail

S5CMD_VERSION="v2.3.0"
AWSCLI_VERSION="1.46.3"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state="$root/.test-servers"

# The benchmark needs only MinIO and modelkit's virtualenv from there (bench/run.ts checks both when it starts):
# a failure to install one of the other test tools is reported but does not stop the benchmark.
bash "$root/scripts/install-test-servers.sh" ||
  echo "bench/install-tools: scripts/install-test-servers.sh failed (see above); continuing" >&2

source "$root/scripts/install-common.sh"

fail() {
  echo "bench/install-tools: $1 failed; last lines of $2:" >&2
  tail -n 30 "$2" >&2
  return 1
}

install_s5cmd() {
  local bin="$bindir/s5cmd" log="$state/install-s5cmd.log"
  if [ -x "$bin" ] && go version -m "$bin" 2>/dev/null | grep -Eq "^[[:space:]]+(mod|dep)[[:space:]]+github.com/peak/s5cmd/v2[[:space:]]+$S5CMD_VERSION[[:space:]]"; then
    return 0
  fi
  echo "bench/install-tools: build github.com/peak/s5cmd/v2@$S5CMD_VERSION into $bindir"
  # Not `go install module@version`: that also reads the module's version list (for deprecation notices), which
  # some proxies refuse. A throwaway module requiring exactly that version builds the same binary.
  local work
  work="$(mktemp -d)"
  printf 'module assetkit-bench-tools\n\ngo 1.26\n\nrequire github.com/peak/s5cmd/v2 %s\n' "$S5CMD_VERSION" >"$work/go.mod"
  (cd "$work" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -buildvcs=false -o "$bin" github.com/peak/s5cmd/v2) >"$log" 2>&1 \
    || { rm -rf "$work"; fail "building s5cmd" "$log"; return 1; }
  rm -rf "$work"
}

install_awscli() {
  local venv="$state/bench-venv" log="$state/install-awscli.log"
  if compgen -G "$venv/lib/python3*/site-packages/awscli-$AWSCLI_VERSION.dist-info" >/dev/null && "$venv/bin/aws" --version >/dev/null 2>&1; then
    return 0
  fi
  local py
  py="$(command -v python3 || true)"
  [ -n "$py" ] || { echo "bench/install-tools: python3 not found (needed for the aws CLI)" >&2; return 1; }
  echo "bench/install-tools: pip install awscli==$AWSCLI_VERSION into .test-servers/bench-venv"
  {
    rm -rf "$venv" &&
      "$py" -m venv "$venv" &&
      "$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q "awscli==$AWSCLI_VERSION"
  } >"$log" 2>&1 || fail "pip install awscli" "$log"
}

install_rclone() {
  command -v rclone >/dev/null && return 0
  local log="$state/install-rclone.log"
  if ! command -v apt-get >/dev/null || [ "$(id -u)" != 0 ]; then
    echo "bench/install-tools: rclone is not on PATH and cannot be installed here (needs apt-get as root): install it and rerun" >&2
    return 1
  fi
  echo "bench/install-tools: apt-get install rclone"
  # The package lists may be stale or absent (fresh container): update once and retry.
  { apt-get install -y -q rclone || { apt-get update -q && apt-get install -y -q rclone; }; } >"$log" 2>&1 || fail "apt-get install rclone" "$log"
}

# pip and apt are network-bound, go is CPU-bound: run them side by side.
status=0
install_awscli &
pip_pid=$!
install_rclone &
apt_pid=$!
install_s5cmd || status=1
wait "$pip_pid" || status=1
wait "$apt_pid" || status=1
exit "$status"
