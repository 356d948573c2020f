#!/usr/bin/env python3
"""The tile pyramid alone: one thread against the default two, on the same posters, side by side.

    python bench/bench_tiles_parallel.py [--n 30000] [--repeats 3]

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
    args = parser.parse_args()
    _, manifest = make_inputs(args.n)
    rows = load_ok_records(manifest)
    thumbs = [r["thumb_abspath"] for r in rows]
    rng = np.random.default_rng(0)
    centres = rng.uniform(0.15, 0.85, (20, 2))
    xy = np.clip(centres[rng.integers(0, 20, len(rows))] + rng.normal(0, 0.06, (len(rows), 2)), 0, 1)
    aspect = np.array([float(r["width"] or 2) / float(r["height"] or 3) for r in rows])
    slot = slot_size(len(rows))
    boxes = poster_boxes(xy[:, 0], xy[:, 1], aspect, slot)
    times = {1: [], 2: []}
    for _ in range(args.repeats):
        for jobs in (1, 2):
            out = OUT / f"tiles-parallel-{jobs}"
            shutil.rmtree(out, ignore_errors=True)
            start = time.perf_counter()
            pyramid = build_pyramid(thumbs, boxes, out, slot=slot, jobs=jobs)
            times[jobs].append(time.perf_counter() - start)
    one, two = statistics.median(times[1]), statistics.median(times[2])
    print(f"{machine()}\n{len(rows)} posters, {pyramid.files} tiles: 1 thread {one:.1f} s, 2 threads {two:.1f} s, "
          f"{one / two:.2f}x (median of {args.repeats})")


if __name__ == "__main__":
    main()
