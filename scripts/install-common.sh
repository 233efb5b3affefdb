# Sourced by the installers (scripts/install-test-servers.sh, bench/install-tools.sh) after they set $state:
# where `go install` puts binaries ($bindir), and one installer at a time, since both write into .test-servers.
mapfile -t goenv < <(go env GOBIN GOPATH)
gopath="${goenv[1]:-$HOME/go}"
bindir="${goenv[0]:-${gopath%%:*}/bin}"
exec 9>"$state/install.lock"
flock 9
