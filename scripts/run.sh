#!/usr/bin/env bash
# Runs kluis: sets up the native toolchain, then starts the server with its defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec cargo run --release --locked -q -p kluis-server -- serve "$@"
