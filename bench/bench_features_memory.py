#!/usr/bin/env python3
"""Stage 2 peak resident memory: 500 against 3,000 posters (it should not grow).

    python bench/bench_features_memory.py [--sizes 500,3000]

Runs get_features_from_cnn.py --weights random (speed and memory only) as a
fresh process per size on the first N bench posters, and reads its peak RSS
from wait4. The 3,000-poster file is kept in bench/out/features-3000.h5.
"""

import argparse
import sys

from common import OUT, ROOT, ensure_bench_posters, machine, peak_rss_mib


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="500,3000")
    args = parser.parse_args()
    manifest = ensure_bench_posters()
    print(f"machine: {machine()}")
    results = []
    for n in map(int, args.sizes.split(",")):
        out = OUT / f"features-{n}.h5"
        seconds, peak = peak_rss_mib([sys.executable, str(ROOT / "get_features_from_cnn.py"), "-i", str(manifest),
                                      "-o", str(out), "--weights", "random", "--limit", str(n), "--overwrite",
                                      "--no-progress", "-q"])
        print(f"{n} posters: {seconds:.0f}s, {n / seconds:.2f} images/s overall, peak RSS {peak:.0f} MiB", flush=True)
        results.append({"n": n, "seconds": seconds, "peak_mib": peak})
    import json
    with open(OUT / "features_memory.json", "w") as fh:
        json.dump({"machine": machine(), "results": results}, fh, indent=1)


if __name__ == "__main__":
    main()
