#!/usr/bin/env bash
# Runs cargo for wasm32-unknown-unknown with whichever toolchain scripts/setup.sh provided:
# rustup's target, or Debian's rustc-web building std itself (docs: ../README.md, "Toolchain").
# Artefacts go to target/wasm so the native and wasm compilers never invalidate each other.
set -euo pipefail
cd "$(dirname "$0")/.."
sub=$1; shift
if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  exec cargo "$sub" --target wasm32-unknown-unknown --target-dir target/wasm "$@"
fi
export RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld
exec /usr/bin/cargo "$sub" --target wasm32-unknown-unknown --target-dir target/wasm \
  -Zbuild-std=std,panic_abort "$@"
