#!/usr/bin/env bash
# Where a durable save's time goes at 64 concurrent HTTPS clients: runs the HTTP benchmark's
# save phase under `perf record` and groups the samples (kernel TCP, scheduling, disk, TLS,
# HTTP, sled, allocator, kluis). Needs perf (Debian: linux-perf) and permission to use it.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v perf >/dev/null || { echo "perf is needed (apt-get install linux-perf)"; exit 1; }
bin=$(cargo bench -p kluis-server --bench http --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m.get("target",{}).get("name")=="http" and m.get("executable"): print(m["executable"])' | tail -1)
out=$(mktemp -d)
KLUIS_BENCH_SAVES_ONLY=1 KLUIS_BENCH_CLIENTS=${KLUIS_BENCH_CLIENTS:-64} perf record -F 1999 -o "$out/perf.data" "$bin" --bench
perf report -i "$out/perf.data" --no-children --sort dso,sym 2>/dev/null | grep -v '^#' | grep % > "$out/flat.txt"
python3 scripts/perf-categories.py "$out/flat.txt"
