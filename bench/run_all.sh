#!/usr/bin/env bash
# Run every benchmark, one after the other (they would disturb each other), then the plots.
# Needs ../shared (the bench site and its server). Logs go to bench/out/*.log.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p out
PY=../.venv/bin/python
for bench in bench_scrape bench_features bench_precision bench_features_memory bench_large_photos bench_visu \
    bench_stage3_tiles bench_tiles_parallel bench_page bench_clusters bench_page_clusters; do
  echo "== $bench"
  "$PY" "$bench.py" 2>&1 | grep -vE '^(I0000|E0000|WARNING: All log)' | tee "out/$bench.log"
done
"$PY" plots.py
