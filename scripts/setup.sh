#!/usr/bin/env bash
# Installs everything kluis needs on a fresh Debian machine with rustup, and skips what is
# already there. Called by scripts/run.sh and scripts/test.sh; safe to run again.
#
#   bash scripts/setup.sh            native toolchain only
#   bash scripts/setup.sh --web      also the wasm32 toolchain and wasm-bindgen (to build the app)
#   bash scripts/setup.sh --wasm     all of that, and Chromium, Node.js, age and oathtool (the tests)
set -euo pipefail
cd "$(dirname "$0")/.."

WASM_BINDGEN_VERSION=$(sed -n '/^name = "wasm-bindgen"$/{n;s/^version = "\(.*\)"$/\1/p}' Cargo.lock)
say() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }
sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

APT_UPDATED=
apt_install() {
  local missing=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ -z "$APT_UPDATED" ]; then say "apt-get update"; sudo_ apt-get update -qq; APT_UPDATED=1; fi
  say "installing Debian packages: ${missing[*]}"
  sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# 1. The native toolchain (rustup's stable) with rustfmt and clippy, and a C compiler.
command -v cargo >/dev/null || { say "rustup is required: https://rustup.rs"; exit 1; }
command -v cc >/dev/null || apt_install build-essential
command -v curl >/dev/null || apt_install curl
cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy

mode=${1:-}
[ "$mode" = "--web" ] || [ "$mode" = "--wasm" ] || exit 0

# 2. A compiler for wasm32-unknown-unknown. rustup's target where it can be added; otherwise
#    Debian's rustc-web with its standard library source, building std with -Zbuild-std
#    (scripts/wasm-cargo.sh picks whichever is present).
if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  say "wasm32: rustup target present"
elif [ -d /usr/lib/rustlib/src/rust/library ] && [ -x /usr/bin/rustc ] && command -v wasm-ld >/dev/null; then
  say "wasm32: Debian rustc-web fallback present"
elif timeout 60 rustup target add wasm32-unknown-unknown >/dev/null 2>&1; then
  say "wasm32: rustup target added"
else
  say "wasm32: rustup cannot add the target here; using Debian's rustc-web + rust-web-src"
  apt_install rustc-web cargo-web rust-web-src lld binaryen
fi

# 3. wasm-bindgen CLI (and its test runner) at exactly the version in Cargo.lock.
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (a few minutes, once)"
  # --locked first (the CLI's own lockfile); if a crate it pins is not on the registry mirror,
  # let cargo resolve compatible versions instead.
  cargo install -q wasm-bindgen-cli --version "=$WASM_BINDGEN_VERSION" --locked 2>/dev/null ||
    cargo install -q wasm-bindgen-cli --version "=$WASM_BINDGEN_VERSION"
fi

[ "$mode" = "--wasm" ] || exit 0

# 4. Headless Chromium and its WebDriver for the browser tests, the stock `age` binary that
#    kluis-keys' tests use to prove its backups open without kluis, and Node.js with npm for the
#    end-to-end tests (playwright-core driving that Chromium; pinned to a release that runs on
#    Node 18, which is what Debian 12's nodejs package gives); oathtool (an independent TOTP)
#    and aiosmtpd (an independent SMTP server, run in its own process) for the mail tests.
apt_install chromium chromium-driver age oathtool python3-aiosmtpd
command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
