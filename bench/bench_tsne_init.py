#!/usr/bin/env python3
"""openTSNE's recipe for large data sets against stage 3's t-SNE, on one map's own PCA points.

    python bench/bench_tsne_init.py --state web/assets/maps/data/run-…/state.npz --n 100000 \
        --variants pca:250,sample:250,sample:100,pca:100

openTSNE's "Embedding large data sets" example embeds a sample of 25,000 points with a large perplexity
(500), places every other point where its nearest sample point landed, and starts the full t-SNE from
that (rescaled to a standard deviation of 1e-4) instead of from the PCA, so that the sample gives the
global layout and the full optimisation only refines it. Each variant here is ``INIT:EE``: ``pca`` (stage
3's start) or ``sample`` (the recipe's), then the early-exaggeration iterations (stage 3: 250), followed in
both by stage 3's own TSNE_ITER iterations, on the same affinities (the HNSW neighbours and
``layout.joint_affinities``, as stage 3 makes them). Records each variant's time (the sample's share
apart), openTSNE's final KL divergence (the objective both minimise: lower is a better fit of the same
affinities) and trustworthiness (``layout.trustworthiness``). Writes bench/out/tsne_init_N.json.

The state's ``points`` are a map's PCA points (``meta.state``); ``--n`` takes the first N of them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from common import OUT, machine

from posters_cnn.mapping import layout

SAMPLE = 25_000  # the recipe's sample
SAMPLE_PERPLEXITY = 500  # and its perplexity


def nearest_exact(queries: np.ndarray, base: np.ndarray, k: int, block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Each query's k nearest rows of ``base`` by Euclidean distance, nearest first (indices, distances)."""
    base_sq = (base * base).sum(1)
    index = np.empty((len(queries), k), np.int32)
    distance = np.empty((len(queries), k), np.float32)
    for start in range(0, len(queries), block):
        q = queries[start:start + block]
        d = base_sq[None, :] - 2 * q @ base.T + (q * q).sum(1)[:, None]
        part = d.argmin(1)[:, None] if k == 1 else np.argpartition(d, k, axis=1)[:, :k]
        near = np.take_along_axis(d, part, 1)
        order = np.argsort(near, 1)
        index[start:start + block] = np.take_along_axis(part, order, 1)
        distance[start:start + block] = np.sqrt(np.maximum(np.take_along_axis(near, order, 1), 0))
    return index, distance


def sample_start(points: np.ndarray, seed: int, jobs: int) -> tuple[np.ndarray, float]:
    """The recipe's starting positions for every point, and the seconds they took."""
    from openTSNE import TSNE
    from openTSNE.initialization import rescale

    start = time.perf_counter()
    pick = np.sort(np.random.default_rng(seed).choice(len(points), SAMPLE, replace=False))
    sample = points[pick]
    index, distance = nearest_exact(sample, sample, 3 * SAMPLE_PERPLEXITY + 1)
    affinities = layout.joint_affinities(index[:, 1:], distance[:, 1:], SAMPLE_PERPLEXITY, n_jobs=jobs)  # not itself
    del index, distance
    embedded = np.asarray(TSNE(n_jobs=jobs, random_state=seed, negative_gradient_method="fft",
                               ints_in_interval=layout.FFT_INTS_IN_INTERVAL, n_iter=layout.TSNE_ITER)
                          .fit(sample, affinities=affinities, initialization="pca"))
    nearest, _ = nearest_exact(points, sample, 1)
    positions = embedded[nearest[:, 0]]
    positions[pick] = embedded
    return rescale(positions), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--state", required=True, help="a map's state.npz (its PCA points)")
    parser.add_argument("--n", type=int, default=100_000, help="the first N points (default 100,000)")
    parser.add_argument("--variants", default="pca:250,sample:250,sample:100,pca:100")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    from openTSNE import TSNE

    points = np.load(args.state, allow_pickle=False)["points"][:args.n].astype(np.float32)
    n = len(points)
    start = time.perf_counter()
    index, distance = layout.nearest(points, int(3 * 30))
    affinities = layout.joint_affinities(index, distance, 30, n_jobs=args.jobs)
    del index, distance
    result = {"machine": machine(), "n": n, "command": " ".join(["python bench/bench_tsne_init.py", *sys.argv[1:]]),
              "affinities_seconds": round(time.perf_counter() - start, 1), "variants": {}}
    for variant in args.variants.split(","):
        init, exaggeration = variant.split(":")
        start = time.perf_counter()
        start_at, sample_seconds = sample_start(points, 0, args.jobs) if init == "sample" else ("pca", 0.0)
        embedding = TSNE(n_jobs=args.jobs, random_state=0, negative_gradient_method="fft",
                         ints_in_interval=layout.FFT_INTS_IN_INTERVAL, n_iter=layout.TSNE_ITER,
                         early_exaggeration_iter=int(exaggeration)).fit(points, affinities=affinities,
                                                                          initialization=start_at)
        row = {"seconds": round(time.perf_counter() - start, 1), "of_which_sample": round(sample_seconds, 1),
               "kl_divergence": round(float(embedding.kl_divergence), 4),
               "trustworthiness": round(layout.trustworthiness(points, np.asarray(embedding)), 4)}
        result["variants"][variant] = row
        print(variant, row, flush=True)
    (OUT / f"tsne_init_{n}.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
