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
# Adding posters to a map, at 10,000 + 100 here (the 100,000 + 1,000 of RESULTS.md: run it by hand, about 17 min).
echo "== bench_update"
"$PY" bench_update.py --n 10000 --add 100 --repeats 3 2>&1 | tee out/bench_update.log
# Full posters at the deepest zooms against the page before them (a map of 3,000 posters enlarged 3x).
echo "== bench_full_posters"
"$PY" bench_full_posters.py --n 3000 --repeats 3 2>&1 | tee out/bench_full_posters.log
# The clusters on a family of collections, up to 30,000 posters (the 100,000 and 300,000 cells take hours:
# run them by hand, see RESULTS.md).
echo "== bench_cluster_family"
"$PY" bench_cluster_family.py maps --max-n 30000 2>&1 | tee out/bench_cluster_family_maps.log
"$PY" bench_cluster_family.py score --max-n 30000 2>&1 | tee out/bench_cluster_family.log
# The page on one map in data.json format 3 (its table) and format 2, side by side (needs bench_page's 100,000-poster map).
echo "== bench_map_format"
"$PY" bench_map_format.py --repeats 5 2>&1 | tee out/bench_map_format.log
# Stage 3 at 300,000 posters against openTSNE's own fit: about an hour, run it by hand
# ("$PY" bench_stage3_scale.py --n 300000).
"$PY" plots.py
