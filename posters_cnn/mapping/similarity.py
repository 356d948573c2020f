"""Cosine similarity in feature space, in chunks so memory stays bounded.

At 30,000 posters the full similarity matrix would take 3.6 GB; here only a
``chunk`` x N block exists at any time (about 120 MB for 1,024 x 30,000).

Up to EXACT_MAX posters every pair is compared in the 4096-d feature space.
Beyond, comparing every pair costs N^2 x 4096 (35 s at 30,000 here, 100 times
that at 300,000), so each poster is compared only with the posters of a few lists of an inverted file:
the rows are cut into about √N lists by spherical k-means (each row in the list of its nearest centre), and
a poster is compared, by exact cosine over all 4096 dimensions, with the rows of the lists whose centres
are nearest it. The comparing is one matrix product per list (the posters that probe it against the rows it
holds), the products a BLAS does fastest, a block of posters at a time, in the order of their lists, so
that the posters searched together probe the same few lists. Its cost grows as N x (lists probed) x √N.
Each poster's CANDIDATES most similar rows found so, with their cosines, are its candidates: its
similar posters are the first of them, and the closest pairs are found among them all. The
similarities reported are the cosines over all 4096 dimensions (to about 1e-4 where stage 3 keeps its unit
rows in float16: see :mod:`.streamed`); only a true neighbour outside the lists probed could be missed:
:func:`recall` measures how often, on a seeded sample, and stage 3 writes it to the map's meta.

How many lists a poster must probe depends on the features: where similar posters stand apart, its own
list holds most of them; where every poster is about as far from every other (noise in 4096-d), more
lists. So the number is not fixed: a seeded tuning sample of TUNING_SAMPLE posters is searched probing
PROBES_FIRST lists, then 6, 8, 11, 16, ... (each about √2 times the last), up to PROBES_MOST (or every list,
which is exact), and the first number whose candidates hold TARGET_RECALL of the sample's true neighbours
(exact cosine) searches every poster. The widest is used, with a warning, when none reaches the target.

The same rows always give the same lists and the same similar posters: the k-means starts from evenly
spaced rows and takes no random draw. (A BLAS on another number of threads may add a product's terms
in another order: the cosines may then differ in their last bits, about 1e-7.)

Until 2026-11-27 the candidates came from an HNSW graph over the rows in 8 bits: on 100,000 of the
bench's synthetic posters it took 335 s for recall@8 0.970, against 78 s and 0.987 here, side by side
(bench/RESULTS.md).
"""

from __future__ import annotations

import heapq
import logging
import math
import time

import numpy as np

log = logging.getLogger(__name__)

EXACT_MAX = 5000
CANDIDATES = 32
RERANK_ROWS = 128
SEARCH_BLOCK = 8192  # posters searched at a time (the search's kept as they go: .checkpoints)
KMEANS_ROUNDS = 10  # rounds of the k-means that makes the lists
TRAIN_PER_LIST = 40  # the k-means' sample: about this many rows a list
PROBES_FIRST = 4  # lists a poster probes, at first; widened until the tuning sample's recall is reached
WIDTH_GROWTH = math.sqrt(2)  # each width tried is about this many times the last (first_width)
PROBES_MOST = 64
TARGET_RECALL = 0.95  # recall@k the search is widened for (issue 17's target)
TUNING_SAMPLE = 1000
TUNING_SEED = 1  # not the seed of the sample :func:`recall` reports on, so that report is not the one tuned on


RECALL_SAMPLE = 2000


def searches_exactly(n: int) -> bool:
    """Whether :func:`neighbours_and_pairs` compares every pair (else it takes candidates from an inverted file)."""
    return n <= EXACT_MAX


def search_settings(target: float = TARGET_RECALL) -> dict:
    """What the approximate search's result depends on, besides the rows (for checkpoint keys)."""
    return {"search": "inverted file", "candidates": CANDIDATES, "rounds": KMEANS_ROUNDS,
            "train_per_list": TRAIN_PER_LIST, "first": PROBES_FIRST, "growth": round(WIDTH_GROWTH, 6),
            "most": PROBES_MOST, "target_recall": target, "tuning_sample": TUNING_SAMPLE, "tuning_seed": TUNING_SEED}


def describe_search(exact: bool, width: dict | None = None) -> str:
    if exact:
        return "exact"
    text = f"{CANDIDATES} candidates by exact cosine from the nearest lists of an inverted file (k-means)"
    if width:
        text += (f"; {width['width']} of {width['lists']} lists probed, the first number from {PROBES_FIRST} whose "
                 f"recall@{width['k']} on {width['sample']} tuning posters reached {width['target']} "
                 f"({width['recall']})")
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
    queries = _as_float32(unit[rows])
    best = np.full((len(rows), k), -np.inf, np.float32)
    best_index = np.zeros((len(rows), k), np.int64)
    for start in range(0, n, block):  # the whole map against the sample, a block at a time
        sims = queries @ _as_float32(unit[start:start + block]).T
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
    """How many candidates the search gives each of ``n`` rows: its ``k`` nearest, and more for the pairs."""
    return min(n - 1, max(CANDIDATES, 3 * min(k, n - 1)))


def neighbours_and_pairs(features: np.ndarray, *, k: int, n_pairs: int, groups: np.ndarray | None = None,
                         chunk: int | None = None, normalized: bool = False, search_info: dict | None = None,
                         target: float = TARGET_RECALL, candidates: tuple | None = None,
                         ) -> tuple[np.ndarray, np.ndarray, list[tuple[float, int, int]]]:
    """Each row's ``k`` most similar rows, and the ``n_pairs`` most similar pairs overall.

    Returns ``(neighbour_index (N, k), neighbour_similarity (N, k), pairs)``
    where ``pairs`` is a list of ``(similarity, i, j)`` with ``i < j``, most
    similar first. Rows with the same ``groups`` value (versions of the same
    movie) are never paired, but they may be neighbours. ``normalized``: the rows are unit rows already
    (float16 welcome: see :mod:`.streamed`). ``search_info``, when given, is told how wide the search
    was (see :func:`list_candidates`; nothing for an exact search), widened for recall ``target``.
    ``candidates``: what :func:`list_candidates` gave for these rows (a stopped run's checkpoint, or a search
    kept as it went), used instead of searching again; ignored where every pair is compared. ``chunk``: rows
    compared at a time where every pair is (1,024 by default).
    """
    unit = features if normalized else normalize_rows(features)
    n = unit.shape[0]
    k = min(k, n - 1)
    if not searches_exactly(n):
        return _by_candidates(unit, k=k, n_pairs=n_pairs, groups=groups, search_info=search_info, target=target,
                              searched=candidates)
    unit = _as_float32(unit)
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


def list_count(n: int) -> int:
    """How many lists the inverted file cuts ``n`` rows into: about √n, so that a list holds about √n rows."""
    return max(1, min(n, round(math.sqrt(n))))


def inverted_file(unit: np.ndarray) -> np.ndarray:
    """The lists' centres: unit rows found by spherical k-means (KMEANS_ROUNDS rounds) on an evenly spaced
    sample of about TRAIN_PER_LIST rows a list, started from evenly spaced rows of that sample. The same
    rows give the same centres: nothing here is random."""
    n = unit.shape[0]
    lists = list_count(n)
    sample = _as_float32(unit[np.arange(0, n, max(1, n // (lists * TRAIN_PER_LIST)))])
    centres = sample[np.linspace(0, len(sample) - 1, lists).round().astype(np.int64)].copy()
    for _ in range(KMEANS_ROUNDS):
        held = _Lists(nearest_lists(sample, centres, 1)[:, 0], lists)
        moved = centres.copy()  # an empty list keeps its centre
        for list_ in np.flatnonzero(np.diff(held.bounds)):
            # One sum per list (np.add.reduceat over the sorted rows took 10x as long: 1 s a round at 100,000).
            moved[list_] = sample[held.members(list_)].sum(axis=0)
        length = np.linalg.norm(moved, axis=1, keepdims=True)
        centres = np.where(length > 0, moved / np.where(length > 0, length, 1), centres).astype(np.float32)
    return centres


def nearest_lists(rows: np.ndarray, centres: np.ndarray, p: int, *, block: int = 8192) -> np.ndarray:
    """The ``p`` lists whose centres are nearest each of ``rows`` (by cosine), nearest first, as int32."""
    p = min(p, len(centres))
    out = np.empty((len(rows), p), np.int32)
    for start in range(0, len(rows), block):
        sims = _as_float32(rows[start:start + block]) @ centres.T
        out[start:start + len(sims)] = _top(sims, p)[0]
    return out


# A float16's bits, sign-extended to 32 and shifted 13 places left, hold its sign at bit 31 (and copies of
# it at bits 28-30, which this mask clears), its exponent and its 10-bit fraction where a float32 keeps
# them: read as a float32, that is the float16's value times 2^-112, a subnormal included. A product by
# 2^112, exact for a power of two, makes it the value itself. (Were the CPU set to read subnormal floats
# as 0, as some libraries built with -ffast-math set it, the float16 subnormals, all under 6.1e-5, would
# read as 0: a cosine error far under float16's own. Stage 3's libraries leave it unset, checked 2026-11-28.)
_FLOAT16_BODY = np.array(0x8FFFE000, np.uint32).view(np.int32)
_FLOAT16_SCALE = np.float32(2.0 ** 112)


def _as_float32(rows: np.ndarray) -> np.ndarray:
    """``rows`` as a C-contiguous float32 array. Float16 rows (stage 3's unit rows past 131,072 posters:
    see :mod:`.streamed`) are widened from their bits in four whole-array steps, the same values as
    numpy's cast for every finite float16 (unit rows hold no other), 7x as fast: that cast takes about 5 ns
    a value here (numpy 2.4 has no vector code for it), and it was 40% of the search at 300,000 posters,
    where each block converts the rows of every list it probes (bench/RESULTS.md)."""
    if rows.dtype != np.float16:
        return np.ascontiguousarray(rows, dtype=np.float32)
    out = np.empty(rows.shape, np.float32)
    bits = out.view(np.int32)
    np.copyto(bits, rows.view(np.int16), casting="unsafe")
    np.left_shift(bits, 13, out=bits)
    np.bitwise_and(bits, _FLOAT16_BODY, out=bits)
    np.multiply(out, _FLOAT16_SCALE, out=out)
    return out


class _Lists:
    """Which rows each list holds: ``members(l)``, ascending (from each row's nearest list)."""

    def __init__(self, home: np.ndarray, lists: int):
        self.order = np.argsort(home, kind="stable")
        self.bounds = np.searchsorted(home[self.order], np.arange(lists + 1))

    def members(self, list_: int) -> np.ndarray:
        return self.order[self.bounds[list_]:self.bounds[list_ + 1]]


def _scan(unit, rows: np.ndarray, probes: np.ndarray, lists: _Lists, m: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``m`` rows most similar to each of ``rows`` (by exact cosine) among the rows of the lists each
    probes (``probes[r]``), most similar first, and those cosines; -1 (and -inf) where the lists hold fewer.
    One matrix product per list: the rows that probe it against the rows it holds."""
    queries = _as_float32(unit[rows])
    best = np.full((len(rows), m), -np.inf, np.float32)
    found = np.full((len(rows), m), -1, np.int64)
    flat = probes.ravel()
    by_list = np.argsort(flat, kind="stable")
    edges = np.searchsorted(flat[by_list], np.unique(flat), side="right")
    for start, stop in zip(np.concatenate([[0], edges[:-1]]), edges):
        asking = by_list[start:stop] // probes.shape[1]  # the rows (of ``rows``) that probe this list
        held = lists.members(int(flat[by_list[start]]))
        if not len(held):
            continue
        sims = queries[asking] @ _as_float32(unit[held]).T
        asker = rows[asking]
        at = np.minimum(np.searchsorted(held, asker), len(held) - 1)  # ``held`` is ascending
        own = held[at] == asker
        sims[np.flatnonzero(own), at[own]] = -np.inf  # never one's own neighbour
        if sims.shape[1] > m:  # this list's m best first, then those merged with the best so far
            mine = np.argpartition(-sims, m - 1, axis=1)[:, :m]
            sims, ids = np.take_along_axis(sims, mine, axis=1), held[mine]
        else:
            ids = np.broadcast_to(held, sims.shape)
        both = np.concatenate([best[asking], sims], axis=1)
        index = np.concatenate([found[asking], ids], axis=1)
        top = np.argpartition(-both, m - 1, axis=1)[:, :m]  # ``best`` has m columns: ``both`` has more
        best[asking] = np.take_along_axis(both, top, axis=1)
        found[asking] = np.take_along_axis(index, top, axis=1)
    order = np.argsort(-best, axis=1, kind="stable")
    found, best = np.take_along_axis(found, order, axis=1), np.take_along_axis(best, order, axis=1)
    found[best == -np.inf] = -1
    return found, best


def _filled(unit, rows: np.ndarray, found: np.ndarray, sims: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """``_scan``'s answer with each row left short filled (:func:`without_self`) and ranked by exact cosine."""
    short = np.flatnonzero((found < 0).any(axis=1))
    if len(short):
        found, sims = found.copy(), sims.copy()
        found[short], sims[short] = _reranked(unit, rows[short], without_self(found[short], rows[short], m))
    return found, sims


def list_candidates(unit: np.ndarray, m: int, *, k: int = 8, block: int | None = None,
                    target: float = TARGET_RECALL, so_far=None, progress=None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Each row's ``m`` nearest other rows (by cosine: the rows are unit rows), nearest first, among the rows
    of the lists it probes in an inverted file (see the module docstring), their exact cosines, and how
    many lists it probed:
    ``{"width", "lists", "k", "sample", "recall", "target"}``, the first number of lists whose candidates
    held ``target`` of a tuning sample's true ``k`` nearest. ``so_far``: where the rows found are kept as
    the search goes (:class:`.checkpoints.RowsSoFar`, columns ``row``, ``found`` and ``exact``), list by list: a
    stopped run's rows and the width it chose are taken from it, and the search goes on after them.
    ``progress(done, n)`` is called after each block searched (``done`` counts a stopped run's rows too)."""
    n = unit.shape[0]
    block = block or SEARCH_BLOCK
    out = np.empty((n, m), np.int64)
    exact = np.empty((n, m), np.float32)
    first = so_far.done if so_far is not None else 0
    width = so_far.info if so_far is not None and so_far.info else None
    if first == n:  # searched to the end before the stop
        kept = so_far.arrays.pop("row")[:, 0]
        out[kept], exact[kept] = so_far.arrays.pop("found"), so_far.arrays.pop("exact")
        return out, exact, width
    started = time.perf_counter()
    centres = inverted_file(unit)
    # Each row's nearest lists, as many as a poster may probe, in one pass over the rows (one pass for its own
    # list and another for its probes cost 2 x 80 s at 1,000,000 posters): its own list is the first.
    ranked = nearest_lists(unit, centres, min(len(centres), PROBES_MOST))
    lists = _Lists(ranked[:, 0], len(centres))
    if first and not np.array_equal(so_far.arrays["row"][:, 0], lists.order[:first]):
        so_far.restart("its posters are not the first of those the lists give")  # the lists came out otherwise
        first, width = 0, None
    if first:
        so_far.arrays.pop("row")
        kept = lists.order[:first]
        out[kept], exact[kept] = so_far.arrays.pop("found"), so_far.arrays.pop("exact")  # not held twice
    chosen_here = width is None
    if chosen_here:
        width = _widen(unit, ranked, lists, m, k, target)
        if so_far is not None:
            so_far.begin(width)
    tuned = time.perf_counter()
    probes = np.ascontiguousarray(ranked[:, :width["width"]])
    del ranked
    try:
        # In the order of the lists, so that the rows searched together probe the same few lists.
        for start in range(first, n, block):
            rows = lists.order[start:start + block]
            found, sims = _filled(unit, rows, *_scan(unit, rows, probes[rows], lists, m), m)
            out[rows], exact[rows] = found, sims
            if so_far is not None:
                so_far.append({"row": rows[:, None], "found": found, "exact": sims})
            if progress is not None:
                progress(start + len(rows), n)
    finally:  # stopped (Ctrl-C) or done: the rows found are kept
        if so_far is not None:
            so_far.finish()
    log.info("similar posters: %d lists made and %d of them probed a poster (%s) in %.1f s, searched in %.1f s%s",
             len(centres), width["width"], "chosen here" if chosen_here else "a stopped run's choice",
             tuned - started, time.perf_counter() - tuned,
             f" from poster {first:,} of the lists' order on (as far as a stopped run had gone)" if first else "")
    return out, exact, width


def first_width(first: int, widest: int, target: float, recall_at, widening=lambda width, got: None
                ) -> tuple[int, float]:
    """The first width of ``first`` times WIDTH_GROWTH^i (√2^i, rounded, i = 0, 1, ...: from 4, the widths 4, 6,
    8, 11, 16, 23, 32, 45, 64), at most ``widest``, whose ``recall_at(width)`` reaches ``target``, and that
    recall (the widest and its recall when none does); ``widening(width, recall)`` is told of each one short.
    The rule for how wide a search by lists must be, here and for t-SNE's neighbours (:func:`.layout.nearest`).

    Steps of √2, not 2: the width chosen is then at most about √2 times the narrowest that reaches the target,
    where doubling could take twice (at 1,000,000 of the bench's posters, 8 lists found 0.941 of the tuning
    posters' nearest against a target of 0.95: doubling took 16, this rule takes 11); each width tried costs
    only a scan of the tuning sample. What a wider search costs is the rows its further lists hold: on the
    bench's features, where one list holds most of a group, 11 lists scan 2% fewer rows than 16; where lists
    are even, the saving follows the width (bench/RESULTS.md)."""
    step, width = 0, min(first, widest)
    while True:
        got = recall_at(width)
        if got >= target or width >= widest:
            return width, got
        widening(width, got)
        step += 1
        width = min(max(width + 1, round(first * WIDTH_GROWTH ** step)), widest)


def _widen(unit: np.ndarray, ranked: np.ndarray, lists: _Lists, m: int, k: int, target: float) -> dict:
    """The first of PROBES_FIRST, 6, 8, 11, ... (:func:`first_width`; at most every list) lists a poster probes
    whose candidates hold ``target`` of a tuning sample's true ``k`` nearest; say which and why. ``ranked``: each
    row's nearest lists, nearest first, as many as a poster may probe."""
    n = unit.shape[0]
    rows = sample_rows(n, TUNING_SAMPLE, TUNING_SEED)
    truth = exact_neighbours(unit, rows, k)
    widest = ranked.shape[1]
    nearest = ranked[rows]
    count = len(lists.bounds) - 1

    def recall_at(width: int) -> float:
        return _share(truth, without_self(_scan(unit, rows, nearest[:, :width], lists, m)[0], rows, m)[:, :k])

    def widening(width: int, got: float) -> None:
        log.info("similar posters: probing %d of %d lists found %.4f of %d tuning posters' %d nearest; "
                 "widening", width, count, got, len(rows), k)

    width, got = first_width(PROBES_FIRST, widest, target, recall_at, widening)
    if got < target:
        log.warning("similar posters: even probing %d of %d lists finds only %.4f of the %d nearest (target %g): "
                    "some listed similar posters are not the most similar", width, count, got, k, target)
    else:
        log.info("similar posters: probing %d of %d lists (recall@%d %.4f on %d tuning posters)", width,
                 count, k, got, len(rows))
    return {"width": int(width), "lists": int(count), "k": int(k), "sample": int(len(rows)),
            "recall": got, "target": target}


def _reranked(unit: np.ndarray, rows: np.ndarray, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``cand`` (candidates of each of ``rows``) ordered by their exact cosine with it, and those cosines,
    a few rows at a time: the gathered candidate rows (rows x m x 4096 floats) are the memory that counts."""
    sims = np.empty(cand.shape, dtype=np.float32)
    for r0 in range(0, len(rows), RERANK_ROWS):
        r1 = min(r0 + RERANK_ROWS, len(rows))
        gathered = _as_float32(unit[cand[r0:r1]])
        query = _as_float32(unit[rows[r0:r1], :, None])
        sims[r0:r1] = np.matmul(gathered, query)[..., 0]
    order = np.argsort(-sims, axis=1, kind="stable")
    return np.take_along_axis(cand, order, axis=1), np.take_along_axis(sims, order, axis=1)


def without_self(found: np.ndarray, rows: np.ndarray, m: int) -> np.ndarray:
    """The first ``m`` of each row's ``found`` that are neither the row itself nor -1 (nothing found).
    A row left short (where the lists probed hold fewer rows: rare) is filled with the lowest other rows, which
    :func:`_filled` then places by their exact cosine: a list is never short."""
    keep = (found != rows[:, None]) & (found >= 0)
    out = np.take_along_axis(found, np.argsort(~keep, axis=1, kind="stable")[:, :m], axis=1)
    for r in np.flatnonzero(keep.sum(axis=1) < m):
        have = found[r][keep[r]].tolist()
        taken = set(have) | {int(rows[r])}
        have += [j for j in range(len(taken) + m) if j not in taken][:m - len(have)]
        out[r] = have
    return out


def _by_candidates(unit, *, k, n_pairs, groups, search_info, target, searched):
    n = unit.shape[0]
    m = candidate_count(n, k)
    candidates, exact, width = searched or list_candidates(unit, m, k=max(1, k), target=target)
    if search_info is not None:
        search_info.update(width)
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
