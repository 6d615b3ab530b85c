#!/usr/bin/env bash
# The whole test suite: what CI runs (.ci/run). Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "setup"
bash scripts/setup.sh --wasm

step "format"
cargo fmt --all --check

step "clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "native tests: unit, vectors, testkit, properties, fuzz-corpus replay, bench smoke"
# --all-targets also runs the benches once each in smoke mode (they print figures, assert none).
cargo test --workspace --all-targets --locked

step "wasm32: build the browser binding"
bash scripts/wasm-cargo.sh build --locked -p kluis-wasm

step "wasm32: kluis-core's vectors, testkit and scenarios in headless Chromium"
export CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver}
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
export WASM_BINDGEN_TEST_TIMEOUT=300
bash scripts/wasm-cargo.sh test --locked -p kluis-core --test vectors --test testkit --test scenarios

step "wasm32: the binding's WebCrypto route against the native path, in headless Chromium"
bash scripts/wasm-cargo.sh test --locked -p kluis-wasm --test webcrypto

step "the browser app end to end: headless Chromium against the real server"
bash scripts/build-web.sh
npm ci --prefix tests/e2e --no-audit --no-fund --silent
node --test tests/e2e/
