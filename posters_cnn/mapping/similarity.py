"""Cosine similarity in feature space, in chunks so memory stays bounded.

At 30,000 posters the full similarity matrix would take 3.6 GB; here only a
``chunk`` x N block exists at any time (about 120 MB for 1,024 x 30,000).

Up to EXACT_MAX posters every pair is compared in the 4096-d feature space.
Beyond, comparing every pair costs N^2 x 4096 (35 s at 30,000 here), so each
poster's CANDIDATES nearest are first found in a 51-d projection (the PCA
basis plus the mean direction), then re-ranked by their exact cosine in the
feature space. The similarities reported are the cosines over all 4096
dimensions (to about 1e-4 where stage 3 keeps its unit rows in float16: see
:mod:`.streamed`); only a true neighbour that the projection ranks below the
candidates could be missed:
:func:`recall` measures how often, on a seeded sample, and stage 3 writes it
to the map's meta.
"""

from __future__ import annotations

import heapq

import numpy as np

EXACT_MAX = 5000
CANDIDATES = 32
RERANK_ROWS = 128


RECALL_SAMPLE = 2000


def searches_exactly(n: int, basis: np.ndarray | None) -> bool:
    """Whether :func:`neighbours_and_pairs` compares every pair (else it takes candidates from ``basis``)."""
    return basis is None or n <= EXACT_MAX


def recall(features: np.ndarray, neighbour_index: np.ndarray, *, sample: int = RECALL_SAMPLE, seed: int = 0,
           block: int = 8192, normalized: bool = False) -> dict:
    """How many of each sampled poster's true ``k`` most similar posters (exact cosine over all of them)
    ``neighbour_index`` lists, on average: recall@k on a seeded sample of at most ``sample`` posters.
    ``normalized``: the rows are unit rows already (float16 welcome: see :mod:`.streamed`)."""
    n, k = neighbour_index.shape
    unit = features if normalized else normalize_rows(features)
    rows = np.sort(np.random.default_rng(seed).choice(n, min(sample, n), replace=False))
    queries = unit[rows].astype(np.float32)
    best = np.full((len(rows), k), -np.inf, np.float32)
    best_index = np.zeros((len(rows), k), np.int64)
    for start in range(0, n, block):  # the whole map against the sample, a block at a time
        sims = queries @ unit[start:start + block].astype(np.float32, copy=False).T
        mine = (rows >= start) & (rows < start + sims.shape[1])
        sims[np.flatnonzero(mine), rows[mine] - start] = -np.inf  # never one's own neighbour
        both = np.concatenate([best, sims], axis=1)
        index = np.concatenate([best_index, np.broadcast_to(np.arange(start, start + sims.shape[1]),
                                                            sims.shape)], axis=1)
        top, best = _top(both, k)
        best_index = np.take_along_axis(index, top, axis=1)
    found = sum(len(set(t) & set(g)) for t, g in zip(best_index.tolist(), neighbour_index[rows].tolist()))
    return {"k": int(k), "sample": int(len(rows)), "seed": int(seed), "recall": round(found / (len(rows) * k), 4)}


def normalize_rows(features: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (features / norms).astype(np.float32, copy=False)


def neighbours_and_pairs(features: np.ndarray, *, k: int, n_pairs: int, groups: np.ndarray | None = None,
                         chunk: int = 1024, basis: np.ndarray | None = None, normalized: bool = False,
                         mean_direction: np.ndarray | None = None,
                         ) -> tuple[np.ndarray, np.ndarray, list[tuple[float, int, int]]]:
    """Each row's ``k`` most similar rows, and the ``n_pairs`` most similar pairs overall.

    Returns ``(neighbour_index (N, k), neighbour_similarity (N, k), pairs)``
    where ``pairs`` is a list of ``(similarity, i, j)`` with ``i < j``, most
    similar first. Rows with the same ``groups`` value (versions of the same
    movie) are never paired, but they may be neighbours. ``normalized``: the rows are unit rows already
    (float16 welcome: see :mod:`.streamed`), whose mean is ``mean_direction`` when given.
    """
    unit = features if normalized else normalize_rows(features)
    n = unit.shape[0]
    k = min(k, n - 1)
    if not searches_exactly(n, basis):
        return _by_candidates(unit, basis, k=k, n_pairs=n_pairs, groups=groups, chunk=chunk,
                              mean_direction=mean_direction)
    unit = unit.astype(np.float32, copy=False)
    neighbour_index = np.zeros((n, k), dtype=np.int64)
    neighbour_sim = np.zeros((n, k), dtype=np.float32)
    best: list[tuple[float, int, int]] = []  # a min-heap of the best pairs so far
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        sims = unit[start:stop] @ unit.T  # (chunk, n)
        rows = np.arange(stop - start)
        sims[rows, rows + start] = -np.inf  # never one's own neighbour
        if k > 0:
            neighbour_index[start:stop], neighbour_sim[start:stop] = _top(sims, k)
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


def projection_basis(unit: np.ndarray, components: np.ndarray, mean: np.ndarray | None = None) -> np.ndarray:
    """An orthonormal basis of the PCA components and the mean direction (of the unit rows: ``mean``, or
    worked out), one row each."""
    mean = unit.mean(axis=0, dtype=np.float64)[None, :] if mean is None else np.asarray(mean, np.float64)[None, :]
    q, _ = np.linalg.qr(np.concatenate([components, mean]).T.astype(np.float64))
    return q.T.astype(np.float32)


def _top(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of each row's ``k`` largest values, largest first."""
    part = np.argpartition(-values, k - 1, axis=1)[:, :k]
    part_values = np.take_along_axis(values, part, axis=1)
    order = np.argsort(-part_values, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(part_values, order, axis=1)


def _by_candidates(unit, components, *, k, n_pairs, groups, chunk, mean_direction=None):
    n = unit.shape[0]
    m = min(n - 1, max(CANDIDATES, 3 * k))
    basis = projection_basis(unit, components, mean_direction).T
    projected = np.empty((n, basis.shape[1]), np.float32)  # dot products approximate cosines
    for start in range(0, n, 8192):
        projected[start:start + 8192] = unit[start:start + 8192].astype(np.float32, copy=False) @ basis
    candidates = np.zeros((n, m), dtype=np.int64)
    exact = np.zeros((n, m), dtype=np.float32)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        approx = projected[start:stop] @ projected.T
        rows = np.arange(stop - start)
        approx[rows, rows + start] = -np.inf
        cand, _ = _top(approx, m)
        # Re-rank by the exact cosine in the feature space, a few rows at a time: the
        # gathered candidate rows (rows x m x 4096 floats) are the memory that counts.
        sims = np.empty(cand.shape, dtype=np.float32)
        for r0 in range(0, stop - start, RERANK_ROWS):
            r1 = min(r0 + RERANK_ROWS, stop - start)
            gathered = unit[cand[r0:r1]].astype(np.float32, copy=False)
            query = unit[start + r0:start + r1, :, None].astype(np.float32, copy=False)
            sims[r0:r1] = np.matmul(gathered, query)[..., 0]
        order = np.argsort(-sims, axis=1, kind="stable")
        candidates[start:stop] = np.take_along_axis(cand, order, axis=1)
        exact[start:stop] = np.take_along_axis(sims, order, axis=1)
    neighbour_index, neighbour_sim = candidates[:, :k], exact[:, :k]
    pairs: list[tuple[float, int, int]] = []
    if n_pairs > 0:
        i = np.repeat(np.arange(n), m)
        j = candidates.ravel()
        values = exact.ravel()
        keep = np.ones_like(values, dtype=bool) if groups is None else groups[i] != groups[j]
        lo, hi = np.minimum(i, j)[keep], np.maximum(i, j)[keep]
        codes, first = np.unique(lo * n + hi, return_index=True)
        values = values[keep][first]
        take = min(n_pairs, len(codes))
        best = np.argpartition(-values, take - 1)[:take] if take else np.array([], dtype=np.int64)
        best = sorted(best, key=lambda b: (-values[b], codes[b]))
        pairs = [(float(values[b]), int(codes[b] // n), int(codes[b] % n)) for b in best]
    return neighbour_index, neighbour_sim, pairs
