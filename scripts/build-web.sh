#!/usr/bin/env bash
# Builds the browser app into target/web: the static files of web/ and the wasm binding
# (crates/wasm) with its wasm-bindgen glue. The server serves target/web (next to its binary's
# directory) and fills in the Subresource Integrity hashes when it starts.
#   bash scripts/build-web.sh            # the dev profile (what the test suite uses)
#   bash scripts/build-web.sh --release  # what scripts/run.sh uses
set -euo pipefail
cd "$(dirname "$0")/.."
profile=debug
args=()
if [ "${1:-}" = "--release" ]; then profile=release; args=(--release); fi
bash scripts/wasm-cargo.sh build --locked -p kluis-wasm "${args[@]}"
out=target/web
rm -rf "$out.new"
mkdir -p "$out.new/pkg"
wasm-bindgen --target no-modules --no-typescript --out-dir "$out.new/pkg" \
  "target/wasm/wasm32-unknown-unknown/$profile/kluis_wasm.wasm"
cp -r web/. "$out.new/"
rm -rf "$out"
mv "$out.new" "$out"
echo "browser app built in $out ($profile)"
