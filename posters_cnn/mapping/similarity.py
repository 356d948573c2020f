"""Cosine similarity in feature space, in chunks so memory stays bounded.

At 30,000 posters the full similarity matrix would take 3.6 GB; here only a
``chunk`` x N block exists at any time (about 120 MB for 1,024 x 30,000).

Up to EXACT_MAX posters every pair is compared in the 4096-d feature space.
Beyond, comparing every pair costs N^2 x 4096 (35 s at 30,000 here, 100 times
that at 300,000), so each poster's CANDIDATES nearest are first found in a graph index over the
unit rows (HNSW, from faiss: each row held in 8 bits a dimension, 4 KB at
4096-d), then re-ranked by their exact cosine in the feature space. Building
and searching the graph grows as N log N. The similarities reported are the
cosines over all 4096 dimensions (to about 1e-4 where stage 3 keeps its unit
rows in float16: see :mod:`.streamed`); only a true neighbour that the graph
search misses, or ranks below the candidates, could be missed:
:func:`recall` measures how often, on a seeded sample, and stage 3 writes it
to the map's meta.

How wide a search must be grows with the map: at the same width (efSearch 64), recall@8 fell from
0.989 at 30,000 synthetic posters to 0.76 at 300,000. So the width is not fixed: after the graph is
built, a seeded tuning sample of TUNING_SAMPLE posters is searched at widths GRAPH_SEARCH, twice
that, ..., up to SEARCH_WIDEST, and the first width whose re-ranked lists hold TARGET_RECALL of the
sample's true neighbours (exact cosine) searches every poster. Where the graph finds neighbours
easily, the first width is kept and costs nothing more; the widest one is used, with a warning, when
no width reaches the target.

The same rows always give the same graph, and so the same similar posters,
on any number of threads: since 1.15.1 (at least), faiss builds HNSW graphs in fixed
batches whose links are merged in a fixed order (its "deterministic build").
"""

from __future__ import annotations

import heapq
import logging
import time

import numpy as np

log = logging.getLogger(__name__)

EXACT_MAX = 5000
CANDIDATES = 32
RERANK_ROWS = 128
SEARCH_BLOCK = 8192  # posters added to the graph and searched at a time (the search's kept as they go: .checkpoints)
RERANK_BLOCK = 1024  # posters re-ranked at a time (the same)
# The graph index (faiss's IndexHNSWSQ): links a row keeps (M), and how many rows each insertion and each
# search keep in view (efConstruction, efSearch). Recall@8 at 30,000 synthetic posters: 0.989.
GRAPH_LINKS = 32
GRAPH_BUILD = 80
GRAPH_SEARCH = 64
SEARCH_WIDEST = 1024
TARGET_RECALL = 0.95  # recall@k the search is widened for (issue 17's target)
TUNING_SAMPLE = 1000
TUNING_SEED = 1  # not the seed of the sample :func:`recall` reports on, so that report is not the one tuned on
QUANTIZER_SAMPLE = 20_000  # rows that set the 8-bit quantizer's range in each dimension


RECALL_SAMPLE = 2000


def searches_exactly(n: int) -> bool:
    """Whether :func:`neighbours_and_pairs` compares every pair (else it takes candidates from a graph)."""
    return n <= EXACT_MAX


def search_settings(target: float = TARGET_RECALL) -> dict:
    """What the approximate search's result depends on, besides the rows (for checkpoint keys)."""
    return {"candidates": CANDIDATES, "links": GRAPH_LINKS, "build": GRAPH_BUILD, "search": GRAPH_SEARCH,
            "widest": SEARCH_WIDEST, "target_recall": target, "tuning_sample": TUNING_SAMPLE,
            "tuning_seed": TUNING_SEED, "quantizer_sample": QUANTIZER_SAMPLE}


def describe_search(exact: bool, width: dict | None = None) -> str:
    if exact:
        return "exact"
    text = f"{CANDIDATES} candidates from an HNSW graph of the features in 8 bits, re-ranked by exact cosine"
    if width:
        text += (f"; searched {width['width']} wide, the first width from {GRAPH_SEARCH} whose recall@{width['k']} "
                 f"on {width['sample']} tuning posters reached {width['target']} ({width['recall']})")
    return text


def recall(features: np.ndarray, neighbour_index: np.ndarray, *, sample: int = RECALL_SAMPLE, seed: int = 0,
           block: int = 8192, normalized: bool = False) -> dict:
    """How many of each sampled poster's true ``k`` most similar posters (exact cosine over all of them)
    ``neighbour_index`` lists, on average: recall@k on a seeded sample of at most ``sample`` posters.
    ``normalized``: the rows are unit rows already (float16 welcome: see :mod:`.streamed`)."""
    n, k = neighbour_index.shape
    unit = features if normalized else normalize_rows(features)
    rows = sample_rows(n, sample, seed)
    truth = exact_neighbours(unit, rows, k, block=block)
    return {"k": int(k), "sample": int(len(rows)), "seed": int(seed), "recall": _share(truth, neighbour_index[rows])}


def sample_rows(n: int, sample: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).choice(n, min(sample, n), replace=False))


def exact_neighbours(unit: np.ndarray, rows: np.ndarray, k: int, *, block: int = 8192) -> np.ndarray:
    """The ``k`` most similar other rows of each of ``rows``, by exact cosine over every unit row."""
    n = unit.shape[0]
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
    return best_index


def _share(truth: np.ndarray, found: np.ndarray) -> float:
    """The share of ``truth``'s neighbours that ``found`` lists, row by row (recall), to 4 places."""
    hits = sum(len(set(t) & set(g)) for t, g in zip(truth.tolist(), found.tolist()))
    return round(hits / max(1, truth.size), 4)


def normalize_rows(features: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (features / norms).astype(np.float32, copy=False)


def candidate_count(n: int, k: int) -> int:
    """How many candidates the graph search gives each of ``n`` rows, to re-rank for its ``k`` nearest."""
    return min(n - 1, max(CANDIDATES, 3 * min(k, n - 1)))


def neighbours_and_pairs(features: np.ndarray, *, k: int, n_pairs: int, groups: np.ndarray | None = None,
                         chunk: int | None = None, normalized: bool = False, search_info: dict | None = None,
                         target: float = TARGET_RECALL, graph: tuple[np.ndarray, dict] | None = None,
                         reranked=None) -> tuple[np.ndarray, np.ndarray, list[tuple[float, int, int]]]:
    """Each row's ``k`` most similar rows, and the ``n_pairs`` most similar pairs overall.

    Returns ``(neighbour_index (N, k), neighbour_similarity (N, k), pairs)``
    where ``pairs`` is a list of ``(similarity, i, j)`` with ``i < j``, most
    similar first. Rows with the same ``groups`` value (versions of the same
    movie) are never paired, but they may be neighbours. ``normalized``: the rows are unit rows already
    (float16 welcome: see :mod:`.streamed`). ``search_info``, when given, is told how wide the graph search
    was (see :func:`graph_candidates`; nothing for an exact search), widened for recall ``target``.
    ``graph``: what :func:`graph_candidates` gave for these rows before (a stopped run's checkpoint), used
    instead of building and searching the graph again; ignored where every pair is compared. ``reranked``:
    where the candidates' re-ranked rows are kept as they are made (:class:`.checkpoints.RowsSoFar`,
    columns ``candidates`` and ``exact``), and a stopped run's first rows taken from. ``chunk``: rows
    compared at a time (1,024 by default; RERANK_BLOCK where candidates are re-ranked).
    """
    unit = features if normalized else normalize_rows(features)
    n = unit.shape[0]
    k = min(k, n - 1)
    if not searches_exactly(n):
        return _by_candidates(unit, k=k, n_pairs=n_pairs, groups=groups, chunk=chunk or RERANK_BLOCK,
                              search_info=search_info, target=target, graph=graph, reranked=reranked)
    unit = unit.astype(np.float32, copy=False)
    chunk = chunk or 1024
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


def _top(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of each row's ``k`` largest values, largest first."""
    part = np.argpartition(-values, k - 1, axis=1)[:, :k]
    part_values = np.take_along_axis(values, part, axis=1)
    order = np.argsort(-part_values, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(part_values, order, axis=1)


def build_graph(unit: np.ndarray, *, block: int = 8192):
    """The HNSW graph over the unit rows, each held in 8 bits a dimension (faiss's IndexHNSWSQ): the same
    graph for the same rows on any number of threads (see the module docstring)."""
    import faiss  # noqa: PLC0415 (only maps above EXACT_MAX need it: 0.3 s to import)

    n, d = unit.shape
    index = faiss.IndexHNSWSQ(d, faiss.ScalarQuantizer.QT_8bit, GRAPH_LINKS, faiss.METRIC_L2)
    index.hnsw.efConstruction = GRAPH_BUILD
    step = max(1, n // QUANTIZER_SAMPLE)
    index.train(np.ascontiguousarray(unit[::step], dtype=np.float32))
    # The graph's rows (n x d bytes: 3.8 GiB at 1,000,000 posters) sized once, before the first add. faiss
    # grows them as a std::vector, add by add, and each time they outgrow their room the old rows and their
    # copy are held at once: just past a doubling, twice the rows' final size (a /tmp probe at 150,000 rows:
    # 1,244 MiB against 775). Each add then resizes them within the room made here, so the build holds the
    # rows once, whatever n is.
    storage = faiss.downcast_index(index.storage)
    storage.codes.resize(n * storage.code_size)
    for start in range(0, n, block):  # in fixed batches: see the module docstring
        index.add(np.ascontiguousarray(unit[start:start + block], dtype=np.float32))
    return index


def graph_settings() -> dict:
    """What the graph (:func:`build_graph`) depends on, besides the rows (for checkpoint keys)."""
    return {"links": GRAPH_LINKS, "build": GRAPH_BUILD, "quantizer_sample": QUANTIZER_SAMPLE}


def graph_candidates(unit: np.ndarray, m: int, *, k: int = 8, block: int | None = None,
                     target: float = TARGET_RECALL, graph=None, on_built=None, so_far=None,
                     ) -> tuple[np.ndarray, dict]:
    """Each row's ``m`` nearest other rows (by cosine: the rows are unit rows) as a graph search finds them,
    nearest first, from an HNSW graph over the rows held in 8 bits a dimension, and how wide the search
    was: ``{"width", "k", "sample", "recall", "target"}``, the width chosen for recall@``k`` ``target``
    (see the module docstring). ``graph``: the graph :func:`build_graph` made of these rows before (a
    stopped run's checkpoint), searched instead of building it again; ``on_built(graph)``: told once the
    graph is built, before the search (to keep it). ``so_far``: where the rows found are kept as the search
    goes (:class:`.checkpoints.RowsSoFar`, column ``found``): a stopped run's first rows and the width it
    chose are taken from it, and the search goes on after them."""
    n = unit.shape[0]
    block = block or SEARCH_BLOCK
    first = so_far.done if so_far is not None else 0
    out = np.empty((n, m), np.int64)
    if first:
        out[:first] = so_far.arrays.pop("found")  # not held twice through the search
    width = so_far.info if so_far is not None and so_far.info else None
    if first == n:
        return out, width  # searched to the end before the stop: no graph is needed
    started = time.perf_counter()
    index = graph
    if index is None:
        index = build_graph(unit, block=block)
        if on_built is not None:
            on_built(index)
    built = time.perf_counter()
    chosen_here = width is None
    if chosen_here:
        width = _widen(index, unit, m, k, target)
        if so_far is not None:
            so_far.begin(width)
    else:
        index.hnsw.efSearch = width["width"]
    tuned = time.perf_counter()
    try:
        for start in range(first, n, block):
            _, found = index.search(np.ascontiguousarray(unit[start:start + block], dtype=np.float32), m + 1)
            out[start:start + len(found)] = without_self(found, np.arange(start, start + len(found)), m)
            if so_far is not None:
                so_far.append({"found": out[start:start + len(found)]})
    finally:  # stopped (Ctrl-C) or done: the rows found are kept
        if so_far is not None:
            so_far.finish()
    log.info("similar posters: a graph of %d posters %s, its width %s, searched in %.1f s%s", n,
             f"built in {built - started:.1f} s" if graph is None else "read back (a stopped run's)",
             f"chosen in {tuned - built:.1f} s" if chosen_here else "a stopped run's",
             time.perf_counter() - tuned, f" from poster {first:,} (as far as a stopped run had gone)" if first else "")
    return out, width


def _widen(index, unit: np.ndarray, m: int, k: int, target: float) -> dict:
    """Set ``index``'s search width to the first of GRAPH_SEARCH, twice that, ... SEARCH_WIDEST whose
    re-ranked lists hold ``target`` of a tuning sample's true ``k`` nearest; say which and why."""
    n = unit.shape[0]
    rows = sample_rows(n, TUNING_SAMPLE, TUNING_SEED)
    truth = exact_neighbours(unit, rows, k)
    queries = np.ascontiguousarray(unit[rows], dtype=np.float32)
    width = GRAPH_SEARCH
    while True:
        index.hnsw.efSearch = max(width, m + 1)
        _, found = index.search(queries, m + 1)
        ranked, _ = _reranked(unit, rows, without_self(found, rows, m))
        got = _share(truth, ranked[:, :k])
        if got >= target or width >= SEARCH_WIDEST:
            break
        log.info("similar posters: %d wide, the graph search found %.4f of %d tuning posters' %d nearest; "
                 "widening", width, got, len(rows), k)
        width *= 2
    if got < target:
        log.warning("similar posters: even %d wide, the graph search finds only %.4f of the %d nearest (target "
                    "%g): some listed similar posters are not the most similar", width, got, k, target)
    else:
        log.info("similar posters: searching %d wide (recall@%d %.4f on %d tuning posters)", width, k, got, len(rows))
    return {"width": int(index.hnsw.efSearch), "k": int(k), "sample": int(len(rows)), "recall": got,
            "target": target}


def _reranked(unit: np.ndarray, rows: np.ndarray, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``cand`` (candidates of each of ``rows``) ordered by their exact cosine with it, and those cosines,
    a few rows at a time: the gathered candidate rows (rows x m x 4096 floats) are the memory that counts."""
    sims = np.empty(cand.shape, dtype=np.float32)
    for r0 in range(0, len(rows), RERANK_ROWS):
        r1 = min(r0 + RERANK_ROWS, len(rows))
        gathered = unit[cand[r0:r1]].astype(np.float32, copy=False)
        query = unit[rows[r0:r1], :, None].astype(np.float32, copy=False)
        sims[r0:r1] = np.matmul(gathered, query)[..., 0]
    order = np.argsort(-sims, axis=1, kind="stable")
    return np.take_along_axis(cand, order, axis=1), np.take_along_axis(sims, order, axis=1)


def without_self(found: np.ndarray, rows: np.ndarray, m: int) -> np.ndarray:
    """The first ``m`` of each row's ``found`` that are neither the row itself nor faiss's -1 (nothing found).
    A row left short (an unreachable row in the graph: rare) is filled with the lowest other rows, which the
    re-ranking then places by their exact cosine: a list is never short."""
    keep = (found != rows[:, None]) & (found >= 0)
    out = np.take_along_axis(found, np.argsort(~keep, axis=1, kind="stable")[:, :m], axis=1)
    for r in np.flatnonzero(keep.sum(axis=1) < m):
        have = found[r][keep[r]].tolist()
        taken = set(have) | {int(rows[r])}
        have += [j for j in range(len(taken) + m) if j not in taken][:m - len(have)]
        out[r] = have
    return out


def _by_candidates(unit, *, k, n_pairs, groups, chunk, search_info, target, graph, reranked):
    n = unit.shape[0]
    m = candidate_count(n, k)
    found, width = graph or graph_candidates(unit, m, k=max(1, k), target=target)
    if search_info is not None:
        search_info.update(width)
    candidates = np.zeros((n, m), dtype=np.int64)
    exact = np.zeros((n, m), dtype=np.float32)
    first = reranked.done if reranked is not None else 0
    if first:
        candidates[:first], exact[:first] = reranked.arrays.pop("candidates"), reranked.arrays.pop("exact")
    try:
        for start in range(first, n, chunk):
            stop = min(start + chunk, n)
            candidates[start:stop], exact[start:stop] = _reranked(unit, np.arange(start, stop), found[start:stop])
            if reranked is not None:
                reranked.append({"candidates": candidates[start:stop], "exact": exact[start:stop]})
    finally:  # stopped (Ctrl-C) or done: the rows re-ranked are kept
        if reranked is not None:
            reranked.finish()
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
