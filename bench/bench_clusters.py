#!/usr/bin/env python3
"""Stage 3's clusters against known groups: quality per choice of space, and their cost.

    python bench/bench_clusters.py [--sizes 3000,30000] [--seeds 0,1,2,3,4]

For each size and seed: generated features in 12 groups of sizes 25x apart, 3% of
posters in none, close centres (tests/groups.py). Stage 3 runs on them as a user runs
it (get_data_visu.py --n-sample 0, a fresh process), and its clusters.csv is scored
against the truth: adjusted Rand index (each poster left out counted as a group of its
own) and the share of true members left in no cluster. Scored beside it, on the same
features: HDBSCAN on the 50-d PCA space (what t-SNE starts from), with the same
minimum cluster size. The cost is stage 3's own timing of its "clusters" step, against
the whole stage's (meta.seconds, from the start of the work to data.json, without Python's start-up).
"""

import argparse
import json
import statistics
import subprocess
import sys
import time

from common import OUT, ROOT, machine

sys.path.insert(0, str(ROOT / "tests"))
from groups import hard_groups, score, write_stage2  # noqa: E402

from posters_cnn.contracts import maptable  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="3000,30000")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--seeds-big", default="0", help="seeds for sizes over 10,000")
    parser.add_argument("--no-pca", action="store_true",
                        help="skip HDBSCAN on the PCA space (always skipped above 10,000 posters)")
    parser.add_argument("--json", default=str(OUT / "clusters.json"))
    args = parser.parse_args()
    import numpy as np
    from sklearn.cluster import HDBSCAN

    from posters_cnn.mapping import clusters, layout

    print(f"machine: {machine()}", flush=True)
    results = []
    for n in map(int, args.sizes.split(",")):
        seeds = args.seeds if n <= 10_000 else args.seeds_big
        for seed in map(int, seeds.split(",")):
            folder = OUT / f"clusters-{n}-{seed}"
            features, truth = hard_groups(n=n, seed=seed)
            if not (folder / "features.h5").exists():
                write_stage2(folder, features)
            out = folder / "web" / "data.json"
            start = time.perf_counter()
            subprocess.run([sys.executable, str(ROOT / "get_data_visu.py"), "-i", str(folder / "features.h5"),
                            "-o", str(out), "--n-sample", "0", "--no-pair-images", "--no-progress", "-q"], check=True)
            wall = time.perf_counter() - start
            meta, columns = maptable.read_columns(out)
            data = {"meta": meta, "columns": columns}
            order = {pid: i for i, pid in enumerate(data["columns"]["id"])}
            rows = [order[f"{1980 + i % 40}/poster_{i:06d}"] for i in range(n)]
            labels = np.array(data["columns"]["cluster"])[rows]
            ari, left = score(truth, labels)
            timings = data["meta"]["timings"]
            row = {"n": n, "seed": seed, "space": "t-SNE map (stage 3)", "ari": round(ari, 4),
                   "left_out": round(left, 4), "clusters": len(data["meta"]["clusters"]),
                   "groups": int(truth.max()) + 1, "clusters_s": timings["clusters"],
                   "stage_s": data["meta"]["seconds"], "wall_s": round(wall, 2)}
            results.append(row)
            print(row, flush=True)
            if not args.no_pca and n <= 10_000:  # HDBSCAN in 50 dimensions at 30,000: too slow to wait for
                reduced, _, _ = layout.pca(features, 50, 0)
                t = time.perf_counter()
                pca_labels = HDBSCAN(min_cluster_size=clusters.default_min_size(n), copy=True).fit_predict(reduced)
                took = time.perf_counter() - t
                ari, left = score(truth, pca_labels)
                row = {"n": n, "seed": seed, "space": "PCA-50", "ari": round(ari, 4), "left_out": round(left, 4),
                       "clusters": int(pca_labels.max()) + 1, "clusters_s": round(took, 2)}
                results.append(row)
                print(row, flush=True)
    print("medians:")
    for n in sorted({r["n"] for r in results}):
        for space in ("t-SNE map (stage 3)", "PCA-50"):
            rows = [r for r in results if r["n"] == n and r["space"] == space]
            if rows:
                share = [r["clusters_s"] / r["stage_s"] for r in rows if "stage_s" in r]
                print(f"  n={n} {space}: ARI median {statistics.median(r['ari'] for r in rows):.3f} "
                      f"(min {min(r['ari'] for r in rows):.3f}), left out median "
                      f"{statistics.median(r['left_out'] for r in rows):.3f}, clustering "
                      f"{statistics.median(r['clusters_s'] for r in rows):.2f}s"
                      + (f" = {100 * statistics.median(share):.1f}% of stage 3" if share else ""))
    OUT.mkdir(parents=True, exist_ok=True)
    with open(args.json, "w") as fh:
        json.dump({"machine": machine(), "results": results}, fh, indent=1)


if __name__ == "__main__":
    main()
