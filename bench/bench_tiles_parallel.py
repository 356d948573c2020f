#!/usr/bin/env python3
"""The tile pyramid alone on one thread and on more, on the same posters, side by side (alternating).

    python bench/bench_tiles_parallel.py [--n 30000] [--repeats 3] [--jobs 1,2]

Positions are a seeded random clustered layout (the tiles' cost depends on
the number of posters and how they spread, not on what t-SNE would say).
"""

import argparse
import shutil
import statistics
import time

import numpy as np

from common import OUT, machine
from posters_cnn.contracts.manifest import load_ok_records
from posters_cnn.contracts.geometry import poster_boxes, slot_size
from posters_cnn.mapping.tiles import build_pyramid
from synthetic import make_inputs


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=30000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jobs", default="1,2", help="the thread counts to compare, the first the baseline")
    args = parser.parse_args()
    counts = [int(j) for j in args.jobs.split(",")]
    _, manifest = make_inputs(args.n, with_features=False)
    rows = load_ok_records(manifest)
    thumbs = [r["thumb_abspath"] for r in rows]
    rng = np.random.default_rng(0)
    centres = rng.uniform(0.15, 0.85, (20, 2))
    xy = np.clip(centres[rng.integers(0, 20, len(rows))] + rng.normal(0, 0.06, (len(rows), 2)), 0, 1)
    aspect = np.array([float(r["width"] or 2) / float(r["height"] or 3) for r in rows])
    slot = slot_size(len(rows))
    boxes = poster_boxes(xy[:, 0], xy[:, 1], aspect, slot)
    times = {jobs: [] for jobs in counts}
    for _ in range(args.repeats):
        for jobs in counts:
            out = OUT / f"tiles-parallel-{jobs}"
            shutil.rmtree(out, ignore_errors=True)
            start = time.perf_counter()
            pyramid = build_pyramid(thumbs, boxes, out, slot=slot, jobs=jobs)
            times[jobs].append(time.perf_counter() - start)
    base = statistics.median(times[counts[0]])
    print(f"{machine()}\n{len(rows)} posters, {pyramid.files} tiles, median of {args.repeats}:")
    for jobs in counts:
        took = statistics.median(times[jobs])
        print(f"  {jobs} thread{'s' if jobs > 1 else ''}: {took:.1f} s ({took / base:.2f}x of {counts[0]}; runs "
              f"{', '.join(f'{t:.1f}' for t in times[jobs])})")


if __name__ == "__main__":
    main()
