#!/usr/bin/env python3
"""Stage 3 time and peak memory at several sizes, per t-SNE backend, against PCA + sklearn's TSNE.

    python bench/bench_visu.py [--sizes 3000,10000,30000] [--repeats 3] [--backends opentsne,sklearn]

For each size: synthetic clustered features on real bench posters (see
synthetic.py). Each run is a fresh process, timed from start to exit, with
its peak resident memory from wait4. Runs of the whole stage
(get_data_visu.py --n-sample 0) and of the baseline (bench/baseline_sklearn_tsne.py:
read, PCA 50, sklearn TSNE and nothing else) alternate, so both see the same
machine. Big sizes run once per backend unless --repeats-big says otherwise.
"""

import argparse
import json
import statistics
import sys

from common import OUT, ROOT, machine, peak_rss_mib
from synthetic import make_inputs


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="3000,10000,30000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--repeats-big", type=int, default=1, help="repeats for sizes over 10,000")
    parser.add_argument("--backends", default="opentsne,sklearn")
    parser.add_argument("--json", default=str(OUT / "visu.json"))
    args = parser.parse_args()
    print(f"machine: {machine()}")
    results = []
    for n in map(int, args.sizes.split(",")):
        features, manifest = make_inputs(n)
        repeats = args.repeats if n <= 10_000 else args.repeats_big
        runs = {"baseline": [], **{b: [] for b in args.backends.split(",")}}
        for _ in range(repeats):
            runs["baseline"].append(peak_rss_mib([sys.executable, str(ROOT / "bench" / "baseline_sklearn_tsne.py"),
                                                  str(features)]))
            for backend in args.backends.split(","):
                out = OUT / f"visu-{n}-{backend}" / "data.json"
                runs[backend].append(peak_rss_mib(
                    [sys.executable, str(ROOT / "get_data_visu.py"), "-i", str(features), "--posters", str(manifest),
                     "-o", str(out), "--n-sample", "0", "--tsne", backend, "-q"]))
            print(f"n={n}: " + ", ".join(f"{k} {v[-1][0]:.1f}s/{v[-1][1]:.0f}MiB" for k, v in runs.items()),
                  flush=True)
        base = statistics.median(t for t, _ in runs["baseline"])
        for name, values in runs.items():
            t = statistics.median(v[0] for v in values)
            m = max(v[1] for v in values)
            results.append({"n": n, "what": name, "median_s": round(t, 2), "peak_mib": round(m),
                            "runs": [round(v[0], 2) for v in values], "ratio_to_baseline": round(t / base, 3)})
            print(f"  n={n} {name:9s}: median {t:6.1f}s, peak {m:6.0f} MiB, {t / base:.2f}x the baseline's time")
    OUT.mkdir(parents=True, exist_ok=True)
    with open(args.json, "w") as fh:
        json.dump({"machine": machine(), "results": results}, fh, indent=1)


if __name__ == "__main__":
    main()
