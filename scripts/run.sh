#!/usr/bin/env bash
# Runs kluis: sets up the toolchains, builds the browser app, then starts the server with its
# defaults (it serves the app from target/web).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --web
bash scripts/build-web.sh --release
exec cargo run --release --locked -q -p kluis-server -- serve "$@"
