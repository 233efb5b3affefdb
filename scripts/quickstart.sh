#!/usr/bin/env bash
# The quick start on the embedded local store: publish an example model twice, resolve a partial spec, fetch it.
set -euo pipefail
cd "$(dirname "$0")/.."
work=.assetkit/quickstart
rm -rf "$work" && mkdir -p "$work" && cp -r examples/sentiment "$work/model"
assetkit() { node dist/cli.js --store "$work/store" "$@"; }

echo "== training run 1: publish examples/sentiment as models/sentiment"
printf 'weights after epoch 1\n' > "$work/model/weights.bin"
assetkit publish "$work/model" models/sentiment
echo "== training run 2: new weights, next version"
printf 'weights after epoch 2\n' > "$work/model/weights.bin"
assetkit publish "$work/model" models/sentiment
echo "== resolve the partial spec models/sentiment:1 (latest 1.x)"
assetkit resolve models/sentiment:1
echo "== fetch it (verified) into $work/assets, then once more (warm: no download)"
assetkit fetch models/sentiment:1 --assets-dir "$work/assets"
assetkit fetch models/sentiment:1.1.0 --assets-dir "$work/assets" --quiet
echo
echo "| spec | version | digest | path |"
echo "| --- | --- | --- | --- |"
assetkit fetch models/sentiment:1 models/sentiment:1.0 "models/sentiment:1[vocab.txt]" --assets-dir "$work/assets" --quiet --json |
  node -e 'for (const r of JSON.parse(require("fs").readFileSync(0)).resolved) console.log(`| ${r.spec} | ${r.version} | ${r.digest.slice(0, 19)}… | ${r.path} |`)'
echo
echo "The store now holds (modelkit's layout):"
(cd "$work/store" && find . -type f | sort | sed 's|^\./|  |')
