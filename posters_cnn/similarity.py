"""Cosine similarity in feature space, in chunks so memory stays bounded.

At 30,000 posters the full similarity matrix would take 3.6 GB; here only a
``chunk`` x N block exists at any time (about 120 MB for 1,024 x 30,000).
"""

from __future__ import annotations

import heapq

import numpy as np


def normalize_rows(features: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (features / norms).astype(np.float32, copy=False)


def neighbours_and_pairs(features: np.ndarray, *, k: int, n_pairs: int, groups: np.ndarray | None = None,
                         chunk: int = 1024) -> tuple[np.ndarray, np.ndarray, list[tuple[float, int, int]]]:
    """Each row's ``k`` most similar rows, and the ``n_pairs`` most similar pairs overall.

    Returns ``(neighbour_index (N, k), neighbour_similarity (N, k), pairs)``
    where ``pairs`` is a list of ``(similarity, i, j)`` with ``i < j``, most
    similar first. Rows with the same ``groups`` value (versions of the same
    movie) are never paired, but they may be neighbours.
    """
    unit = normalize_rows(features)
    n = unit.shape[0]
    k = min(k, n - 1)
    neighbour_index = np.zeros((n, k), dtype=np.int64)
    neighbour_sim = np.zeros((n, k), dtype=np.float32)
    best: list[tuple[float, int, int]] = []  # a min-heap of the best pairs so far
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        sims = unit[start:stop] @ unit.T  # (chunk, n)
        rows = np.arange(stop - start)
        sims[rows, rows + start] = -np.inf  # never one's own neighbour
        if k > 0:
            part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            part_sims = np.take_along_axis(sims, part, axis=1)
            order = np.argsort(-part_sims, axis=1, kind="stable")
            neighbour_index[start:stop] = np.take_along_axis(part, order, axis=1)
            neighbour_sim[start:stop] = np.take_along_axis(part_sims, order, axis=1)
        if n_pairs > 0:
            # Each pair once (j > i), never two versions of one movie.
            sims[np.arange(n)[None, :] <= (rows + start)[:, None]] = -np.inf
            if groups is not None:
                sims[groups[start:stop, None] == groups[None, :]] = -np.inf
            take = min(n_pairs, sims.size)
            flat = np.argpartition(-sims, take - 1, axis=None)[:take]
            for index in flat:
                value = float(sims.flat[index])
                if value == -np.inf:
                    continue
                i, j = divmod(int(index), n)
                item = (value, -(i + start), -j)  # ties: lower indices first
                if len(best) < n_pairs:
                    heapq.heappush(best, item)
                elif item > best[0]:
                    heapq.heapreplace(best, item)
    pairs = [(value, -i, -j) for value, i, j in sorted(best, reverse=True)]
    return neighbour_index, neighbour_sim, pairs
