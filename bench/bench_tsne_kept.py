#!/usr/bin/env python3
"""What keeping the t-SNE's state as it goes costs: stage 3's t-SNE with its checkpoints and without.

    python bench/bench_tsne_kept.py --state web/assets/maps/data/run-…/state.npz --n 30000 --repeats 3

With checkpoints, the t-SNE keeps its neighbours once (above 15,000 points) and looks at its state every
``layout.CHECK_EVERY`` iterations (openTSNE computes the KL divergence for each look), saving it every
``checkpoints.SAVE_EVERY_S`` seconds; without, it is openTSNE's ``fit`` as before. The two run
alternately on the same points (a map's PCA points, ``meta.state``; ``--n`` takes the first N), and
each pair's embeddings must be the same bits. Writes bench/out/tsne_kept_N.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import OUT, machine

from posters_cnn.mapping import checkpoints, layout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--state", required=True, help="a map's state.npz (its PCA points)")
    parser.add_argument("--n", type=int, default=30_000, help="the first N points (default 30,000)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    with np.load(args.state) as state:
        points = np.ascontiguousarray(state["points"][: args.n], dtype=np.float64)
    n = len(points)
    times = {"without": [], "kept": []}
    saves = []
    for repeat in range(args.repeats):
        order = ("without", "kept") if repeat % 2 == 0 else ("kept", "without")
        made = {}
        for variant in order:
            folder = Path(tempfile.mkdtemp(prefix="tsne-kept-"))
            saved = checkpoints.Checkpoints(folder) if variant == "kept" else None
            count = [0]
            if saved:
                real = saved.save
                saved.save = lambda *a, **k: count.__setitem__(0, count[0] + 1) or real(*a, **k)
            started = time.perf_counter()
            made[variant], _ = layout.tsne(points, seed=0, n_jobs=args.jobs, saved=saved, key="bench")
            times[variant].append(time.perf_counter() - started)
            if saved:
                saves.append(count[0])
            shutil.rmtree(folder)
            print(f"repeat {repeat}: {variant} {times[variant][-1]:.1f} s", flush=True)
        if not np.array_equal(made["without"], made["kept"]):
            sys.exit("the embeddings with and without checkpoints differ")
    median = {k: statistics.median(v) for k, v in times.items()}
    result = {"machine": machine(), "n": n, "command": " ".join(["python bench/bench_tsne_kept.py", *sys.argv[1:]]),
              "seconds": times, "median": median, "ratio": median["kept"] / median["without"],
              "saves": saves, "same_embedding": True}
    print(json.dumps(result, indent=1))
    (OUT / f"tsne_kept_{n}.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
