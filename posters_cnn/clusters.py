"""Clusters of look-alike posters, found on the map itself.

The clusters are found by HDBSCAN on the map's own 2-D t-SNE positions, so a
cluster is a group a person sees as one island of the map. On generated groups
of very unequal sizes (bench/bench_clusters.py, 3,000 posters) that scored an
adjusted Rand index of 0.984 (median of 5 seeds, the lowest 0.968), where
HDBSCAN on the 50-d PCA space, which t-SNE starts from, scored 0.124: in 50
dimensions the density that HDBSCAN looks for is flattened out, while t-SNE has
already turned each group's neighbourhoods into a dense island. In two
dimensions it is also quick: 2.5 s at 30,000 posters, 3.4% of the stage.

A cluster is described by its size, its face (the member nearest the middle of
the cluster in the PCA space, the most typical poster of it), its most central
members, its years, and a centroid and a convex outline in map coordinates.
"""

from __future__ import annotations

import csv
import io
import logging
import math

import numpy as np

log = logging.getLogger(__name__)

EXAMPLES = 4
# The smallest cluster: one poster in 300, and at least 5. Over sizes 3,000 to 30,000, and group
# sizes 25x apart, that kept the smallest true groups and did not split big islands (bench_clusters.py).
MIN_SIZE_SHARE = 300
MIN_SIZE_FLOOR = 5
# HDBSCAN's density estimate (min_samples) uses at most this many neighbours: its default, the minimum
# cluster size, would be 333 at 100,000 posters (a 100,000 x 333 neighbour table); at 30,000 posters
# 25 and 100 gave the same clusters (adjusted Rand index 0.997 both).
MAX_MIN_SAMPLES = 25


def default_min_size(n: int) -> int:
    return max(MIN_SIZE_FLOOR, round(n / MIN_SIZE_SHARE))


def find(coords: np.ndarray, min_size: int) -> np.ndarray:
    """Each point's cluster, numbered from 0 by size (largest first), or -1 for none."""
    from sklearn.cluster import HDBSCAN

    n = coords.shape[0]
    if n < max(2, min_size):
        return np.full(n, -1, dtype=np.int32)
    raw = HDBSCAN(min_cluster_size=min_size, min_samples=min(min_size, MAX_MIN_SAMPLES),
                  copy=True).fit_predict(np.asarray(coords, dtype=np.float64))
    return renumber(raw)


def renumber(raw: np.ndarray) -> np.ndarray:
    """Labels renumbered 0, 1, ... largest first (ties: the lower old label first); -1 stays."""
    labels = np.full(raw.shape[0], -1, dtype=np.int32)
    members = raw >= 0
    if not members.any():
        return labels
    old, counts = np.unique(raw[members], return_counts=True)
    order = np.lexsort((old, -counts))
    new_of_old = np.empty(old.max() + 1, dtype=np.int32)
    new_of_old[old[order]] = np.arange(len(order), dtype=np.int32)
    labels[members] = new_of_old[raw[members]]
    return labels


def describe(labels: np.ndarray, coords: np.ndarray, reduced: np.ndarray, ids: list[str], years: list) -> list[dict]:
    """One description per cluster, in label order (largest first); posters are named by their ids."""
    out = []
    for c in range(int(labels.max()) + 1 if labels.size else 0):
        members = np.flatnonzero(labels == c)
        points = reduced[members].astype(np.float64)
        distance = np.linalg.norm(points - points.mean(axis=0), axis=1)
        central = members[np.argsort(distance, kind="stable")[:EXAMPLES]]
        known = [int(years[i]) for i in members if _is_year(years[i])]
        xy = coords[members]
        out.append({
            "id": c, "size": int(len(members)), "face": ids[central[0]],
            "examples": [ids[i] for i in central],
            "years": [min(known), max(known)] if known else None,
            "centroid": [round(float(v), 5) for v in xy.mean(axis=0)],
            "outline": outline(xy),
        })
    return out


def outline(xy: np.ndarray) -> list[list[float]]:
    """The convex hull of the points, counter-clockwise, rounded to map precision."""
    pts = np.unique(np.round(np.asarray(xy, dtype=np.float64), 5), axis=0)
    if len(pts) < 3:
        return pts.tolist()
    from scipy.spatial import ConvexHull, QhullError

    try:
        hull = ConvexHull(pts)
    except QhullError:  # all on a line
        ends = pts[[np.argmin(pts[:, 0] + pts[:, 1]), np.argmax(pts[:, 0] + pts[:, 1])]]
        return ends.tolist()
    return pts[hull.vertices].tolist()


def _is_year(value) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def csv_text(ids: list[str], labels: np.ndarray) -> str:
    """``poster_id,cluster`` for every poster of the map, in the map's order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["poster_id", "cluster"])
    writer.writerows(zip(ids, labels.tolist()))
    return buffer.getvalue()
