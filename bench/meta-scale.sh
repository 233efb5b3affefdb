#!/usr/bin/env bash
# Measures publish / --if-changed / show / fetch (whole and a sub-path) of assets with many small files: wall time
# CPU time (user + system) and peak RSS (/usr/bin/time -v), and s5cmd's upload and download of the same folder on an S3 store. Standalone
# (not part of bench/run.ts).
#   bench/meta-scale.sh make DIR COUNT SIZE FOLDERS   # COUNT files of SIZE bytes in FOLDERS folders under DIR
#   bench/meta-scale.sh run  DIR STORE ROUNDS [STEPS] # ROUNDS rounds against the store URI STORE (s3://bucket/prefix?endpoint=…
#                                                     # with AWS_* set, or a folder); each round uses a fresh prefix; STEPS:
#                                                     # the steps to time, comma-separated (default: all; publish is always run)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cli="node $here/dist/cli.js"
case "$1" in
make)
  dir=$2 count=$3 size=$4 folders=$5
  python3 - "$dir" "$count" "$size" "$folders" <<'PY'
import os, sys
d, n, size, folders = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
per = n // folders
for f in range(folders):
    sub = os.path.join(d, f"d{f:05d}")
    os.makedirs(sub, exist_ok=True)
    for i in range(per):
        with open(os.path.join(sub, f"f{i:05d}.bin"), "wb") as out:
            out.write(os.urandom(size))
PY
  ;;
run)
  dir=$2 store=$3 rounds=$4 steps=${5:-publish,if-changed,show,fetch,fetch-sub,s5cmd-up,s5cmd-down}
  work=$(mktemp -d) # its own: other runs may share /tmp
  trap 'rm -rf "$work"' EXIT
  measure() { # label, command...
    local label=$1; shift
    [[ $label == publish || ,$steps, == *,$label,* ]] || return 0
    /usr/bin/time -v "$@" >/dev/null 2>$work/time || { tail -5 $work/time; return 1; }
    printf '%s\t%s\t%s s CPU\t%s KiB\n' "$label" "$(grep 'Elapsed (wall' $work/time | awk '{print $NF}')" \
      "$(awk '/User time|System time/ {cpu += $NF} END {printf "%.2f", cpu}' $work/time)" \
      "$(grep 'Maximum resident' $work/time | awk '{print $NF}')"
  }
  for r in $(seq "$rounds"); do
    name="big$r-$$"
    rm -rf $work/assets $work/s5
    export ASSETKIT_ASSETS_DIR=$work/assets
    measure publish $cli publish "$dir" "$name" --store "$store"
    measure if-changed $cli publish "$dir" "$name" --store "$store" --if-changed
    measure show $cli show "$name" --store "$store" --json
    measure fetch $cli fetch "$name" --store "$store"
    rm -rf $work/assets
    measure fetch-sub $cli fetch "$name[d00007]" --store "$store"
    rm -rf $work/assets
    if [[ $store == s3://* ]]; then
      bucket=${store#s3://} endpoint=${store#*endpoint=}
      bucket=${bucket%%[/?]*}
      measure s5cmd-up s5cmd --endpoint-url "$endpoint" cp "$dir/" "s3://$bucket/s5-$name/"
      measure s5cmd-down s5cmd --endpoint-url "$endpoint" cp "s3://$bucket/s5-$name/*" $work/s5/
      rm -rf $work/s5
    fi
  done
  ;;
esac
