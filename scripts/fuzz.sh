#!/usr/bin/env bash
# Full fuzzing run (not part of CI, which replays fuzz/seeds/ as ordinary tests):
#   bash scripts/fuzz.sh [seconds per target, default 300] [targets...]
# Needs rustup's nightly toolchain; installs cargo-fuzz if missing. New inputs go to
# fuzz/corpus/<target>/ (not committed); copy interesting ones to fuzz/seeds/<target>/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-300}; shift || true
targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(envelope manifest key_file paper wire export backup)
command -v cargo-fuzz >/dev/null || cargo install -q cargo-fuzz
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "== fuzzing $t for ${secs}s"
  cargo +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- -max_total_time="$secs" -max_len=65536
done
