"""Features with known groups, hard to cluster, and how to score clusters against them.

Used by test_clusters.py and bench/bench_clusters.py. The groups are made so that naive
choices fail: sizes 25x apart (geometric), a few percent of posters that belong to no
group, and centres close enough that HDBSCAN on the 50-d PCA space finds almost nothing.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from posters_cnn.contracts.manifest import PosterRecord, write_manifest
from posters_cnn.contracts.store import FeatureWriter


def hard_groups(n: int = 3000, groups: int = 12, dim: int = 4096, ratio: float = 25.0, none_share: float = 0.03,
                separation: float = 15.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(features n x dim, truth): truth[i] is poster i's group, -1 for one that belongs to none.

    Group g has about ratio^(-g / (groups - 1)) of the posters: the largest is ``ratio`` times
    the smallest. Each member is its group's centre plus unit noise in every dimension; centres
    are ``separation`` apart, against a noise of sqrt(2 * dim) = 90 between two members of one
    group. A poster of no group has a centre of its own, as far from every other. All are
    passed through a ReLU, as fc2 activations are.
    """
    rng = np.random.default_rng(seed)
    truth, n_none = _truth(rng, n, ratio ** (-np.arange(groups) / (groups - 1)), none_share)
    base = np.abs(rng.normal(1.0, 0.5, dim)).astype(np.float32)
    features = base + rng.normal(0, 1, (n, dim)).astype(np.float32)
    centres = _directions(rng, groups + n_none, dim) * (separation / np.sqrt(2))
    own = np.where(truth >= 0, truth, groups + np.cumsum(truth < 0) - 1)
    features += centres[own]
    return np.maximum(features, 0), truth.astype(np.int64)


SHAPES = ("geometric", "tail", "equal")


def collection(n: int, groups: int, *, shape: str = "tail", ratio: float = 50.0, none_share: float = 0.05,
               separation: float = 15.0, dim: int = 4096, seed: int = 0, chunk: int = 20_000
               ) -> tuple[np.ndarray, np.ndarray]:
    """A generated collection of one of the shapes real ones take: (features n x dim, truth).

    ``shape`` sets the group sizes, the largest ``ratio`` times the smallest: "geometric"
    (sizes fall by a constant factor, as in :func:`hard_groups`), "tail" (the g-th largest
    has a share of 1 / g^a, a long tail of small groups: Zipf's law) or "equal" (ratio 1).
    ``separation`` is the distance between two groups' centres against unit noise in every
    dimension (15 keeps the groups apart on the map; 9 barely does). ``none_share`` of the
    posters belong to no group. The features are made ``chunk`` rows at a time, so that
    300,000 x 4096 needs its own 4.9 GB and little more.
    """
    if shape not in SHAPES:
        raise ValueError(f"shape: one of {SHAPES}")
    rng = np.random.default_rng(seed)
    rank = np.arange(groups, dtype=np.float64)
    if shape == "geometric":
        weights = ratio ** (-rank / max(1, groups - 1))
    elif shape == "tail":
        weights = (rank + 1) ** (-np.log(ratio) / np.log(max(2, groups)))
    else:
        weights = np.ones(groups)
    truth, _ = _truth(rng, n, weights, none_share)
    base = np.abs(rng.normal(1.0, 0.5, dim)).astype(np.float32)
    centres = _directions(rng, groups, dim) * (separation / np.sqrt(2))
    features = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, chunk):
        part = truth[start:start + chunk]
        block = base + rng.normal(0, 1, (len(part), dim)).astype(np.float32)
        own = part >= 0
        block[own] += centres[part[own]]
        # A poster of no group sits on a centre of its own, as far from the others.
        block[~own] += _directions(rng, int((~own).sum()), dim) * (separation / np.sqrt(2))
        features[start:start + chunk] = np.maximum(block, 0)
    return features, truth.astype(np.int64)


def no_group_island() -> tuple[np.ndarray, np.ndarray]:
    """1,500 posters in 10 equal groups and 10% in no group: on stage 3's map those posters make an island of
    their own, which the clusters leave out (test_clusters.py, test_page_clusters.py)."""
    return collection(1500, 10, shape="equal", ratio=1, none_share=0.10, separation=16, seed=1)


def _truth(rng, n: int, weights: np.ndarray, none_share: float) -> tuple[np.ndarray, int]:
    """Each poster's group, shuffled: groups sized in proportion to ``weights`` (the first takes what
    rounding leaves), and ``none_share`` of the posters in none (-1). Also the count in none."""
    n_none = round(none_share * n)
    sizes = np.floor(weights / weights.sum() * (n - n_none)).astype(int)
    sizes[0] += n - n_none - sizes.sum()
    truth = np.concatenate([np.full(size, g) for g, size in enumerate(sizes)] + [np.full(n_none, -1)])
    rng.shuffle(truth)
    return truth, n_none


def _directions(rng, count: int, dim: int) -> np.ndarray:
    d = rng.normal(0, 1, (count, dim)).astype(np.float32)
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def score(truth, labels) -> tuple[float, float]:
    """(adjusted Rand index, share of true group members left in no cluster).

    Each poster left out of every cluster (label -1), and each poster of no true group,
    counts as a group of its own.
    """
    from sklearn.metrics import adjusted_rand_score

    truth = np.asarray(truth).copy()
    labels = np.asarray(labels).copy()
    out_t, out_l = truth < 0, labels < 0
    truth[out_t] = truth.max() + 1 + np.arange(out_t.sum())
    labels[out_l] = labels.max() + 1 + np.arange(out_l.sum())
    members = ~out_t
    left_out = float((out_l & members).sum() / max(1, members.sum()))
    return float(adjusted_rand_score(truth, labels)), left_out


def recovered(truth, labels, min_size: int) -> tuple[int, int, float]:
    """(groups recovered, groups of at least ``min_size`` posters, the share recovered).

    A true group is recovered when one found cluster matches it with a Jaccard index of 0.5
    or more (the cluster holding most of its members is the only candidate).
    """
    truth, labels = np.asarray(truth), np.asarray(labels)
    groups = [g for g in np.unique(truth[truth >= 0]) if (truth == g).sum() >= min_size]
    found = 0
    for g in groups:
        members = truth == g
        inside = labels[members & (labels >= 0)]
        if inside.size == 0:
            continue
        values, counts = np.unique(inside, return_counts=True)
        best = values[np.argmax(counts)]
        common = counts.max()
        found += common / (members.sum() + (labels == best).sum() - common) >= 0.5
    return int(found), len(groups), found / len(groups) if groups else 1.0


def write_stage2(folder, features: np.ndarray, years=None) -> list[str]:
    """posters.csv, features.h5 and one small image per poster (hard links of one file) in ``folder``.

    Returns the poster ids, in the rows' order.
    """
    n = features.shape[0]
    source = folder / "source.jpg"
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 60), (90, 120, 160)).save(source, quality=80)
    records, ids = [], []
    for i in range(n):
        year = int(years[i]) if years is not None else 1980 + i % 40
        pid = f"{year}/poster_{i:06d}"
        for sub in ("posters", "thumbs"):
            path = folder / sub / f"{pid}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                os.link(source, path)
        records.append(PosterRecord(pid, f"Poster {i}", year, 1, page_url="", image_path=f"posters/{pid}.jpg",
                                    thumb_path=f"thumbs/{pid}.jpg", width=40, height=60, status="ok"))
        ids.append(pid)
    write_manifest(folder / "posters.csv", records)
    writer = FeatureWriter(folder / "features.h5", features.shape[1],
                           {"model": "synthetic", "layer": "fc2", "weights": "synthetic groups"})
    writer.append(ids, features)
    writer.close()
    return ids
