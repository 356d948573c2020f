#!/usr/bin/env python3
"""Stage 3 with the tile pyramid against stage 3 before it (sprite sheets), side by side.

    python bench/bench_stage3_tiles.py [--sizes 30000,100000] [--repeats 1]

The baseline is commit BASELINE of bench_page.py, from its git worktree. Both
map the same synthetic inputs (`--n-sample 0 --no-pair-images`), one after the
other, each a fresh process: wall time and peak resident memory. Their maps
are the ones bench_page.py then opens (bench/out/page-N and page-N-baseline).
"""

import argparse
import json
import statistics
import sys

from bench_page import baseline_tree
from common import OUT, ROOT, machine, peak_rss_mib
from synthetic import make_inputs


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="30000,100000")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--only-ours", action="store_true", help="skip the baseline (its figure from an earlier run)")
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    results = []
    for n in map(int, args.sizes.split(",")):
        features, manifest = make_inputs(n)
        runs = {"baseline": [], "tiles": []}
        for _ in range(args.repeats):
            for name, root, out in (("baseline", baseline_tree(), OUT / f"page-{n}-baseline"),
                                    ("tiles", ROOT, OUT / f"page-{n}")):
                if name == "baseline" and args.only_ours:
                    continue
                cmd = [sys.executable, str(root / "get_data_visu.py"), "-i", str(features), "--posters",
                       str(manifest), "-o", str(out / "data.json"), "--n-sample", "0", "--no-pair-images", "-q"]
                seconds, peak = peak_rss_mib(cmd, cwd=root)
                runs[name].append((seconds, peak))
                size = (out / "data.json").stat().st_size / 2**20
                print(f"n={n} {name}: {seconds:.1f} s, peak {peak:.0f} MiB, data.json {size:.1f} MiB", flush=True)
        row = {"n": n}
        if args.only_ours:
            print(f"n={n}: tiles {statistics.median(v[0] for v in runs['tiles']):.1f} s", flush=True)
            continue
        for name, values in runs.items():
            row[name] = {"seconds": statistics.median(v[0] for v in values), "peak_mib": max(v[1] for v in values)}
        row["ratio"] = row["tiles"]["seconds"] / row["baseline"]["seconds"]
        results.append(row)
        print(f"n={n}: tiles / baseline = {row['ratio']:.2f}", flush=True)
    if not args.only_ours:
        (OUT / "stage3_tiles.json").write_text(json.dumps({"machine": machine(), "results": results}, indent=1))


if __name__ == "__main__":
    main()
