"""2-D layouts: PCA then t-SNE, trustworthiness, and the snapped grid."""

from __future__ import annotations

import logging
import math
import time

import numpy as np

from ..cli import UsageError

log = logging.getLogger(__name__)

BACKENDS = ("opentsne", "multicore", "sklearn")
BH_BELOW = 10_000  # openTSNE: Barnes-Hut was faster than FFT below this many points here
EXACT_KNN_MAX = 15_000
# Above EXACT_KNN_MAX, t-SNE's neighbours (3 x perplexity of them, Euclidean in the PCA space) come from an
# inverted file (faiss IndexIVFFlat), as the similar posters do in 4096-d: the points cut into about √n lists
# by k-means (trained on an evenly spaced sample of about `train_per_list` points a list), and each point
# compared exactly with the points of the lists whose centres are nearest it. How many lists: `first`, then
# about √2 times the last (8, 11, 16, 23, 32, ...; similarity.first_width), up to every list, the first number
# whose neighbours hold `recall` of the true ones of a seeded sample of `sample` points (exact, by brute
# force). On the bench's PCA points, doubling (8, 16, 32: the rule until 2026-11-28) chose 16 lists at 100,000
# points and 32 at 300,000 (as the √2 steps do there: 23 falls short), and found 0.992 and 1.000 of the true
# 90 nearest in 8.9-12.2 s and 60.8 s, where the HNSW graph used before found 0.969 and 0.821 in 25.5-26.0 s
# and 112.9 s (bench/RESULTS.md).
KNN_LISTS = {"first": 8, "recall": 0.99, "sample": 500, "train_per_list": 40}
FFT_INTS_IN_INTERVAL = 2
# Iterations after the 250 of early exaggeration. openTSNE's default is 500; at 3,000 clustered
# posters 350 gave the same trustworthiness (0.9899) 0.8 s sooner, and scikit-learn runs 750.
TSNE_ITER = 350
# Barnes-Hut's opening angle (openTSNE's default is 0.5). At 3,000 posters 0.8 took t-SNE from 3.5 s to
# 2.7 s at the same trustworthiness (0.9906 both; on the generated groups of bench_clusters.py 0.939
# against 0.938, and the same clusters: adjusted Rand index 0.983 against 0.984).
BH_THETA = 0.8
MULTICORE_MISSING = ("--tsne multicore needs the MulticoreTSNE package, which is not installed (its PyPI "
                     "release no longer builds with a current cmake); use --tsne opentsne, as fast and maintained")
# The t-SNE's checkpoints (see :func:`tsne`): its neighbours, and its state part-way, looked at every
# CHECK_EVERY iterations (openTSNE computes the KL divergence for each look). With the saves, that made the
# t-SNE 1.02x as long at 30,000 points (bench/RESULTS.md).
NEIGHBOURS_STEP, SO_FAR_STEP = "tsne-neighbours", "tsne-so-far"
CHECK_EVERY = 5
GRID_EXACT_MAX = 4_096  # linear_sum_assignment on an N x N cost matrix above this is too slow


def pca(features: np.ndarray, components: int, seed: int = 0) -> tuple[np.ndarray, dict, np.ndarray]:
    """Project onto the first ``components`` principal components (clamped to what the data allows).

    Returns the projection, a description, and the components (one per row).
    """
    return pca_fit(features, components, seed)[:3]


def pca_fit(features: np.ndarray, components: int, seed: int = 0) -> tuple[np.ndarray, dict, np.ndarray, np.ndarray]:
    """:func:`pca`, and the features' mean: a new row projects as ``(row - mean) @ components.T``. The same
    PCA as stage 3's (:func:`pca_from_moments`), from features held in memory; ``seed`` is not needed (the
    PCA is exact), and kept for the callers that pass one."""
    features = np.asarray(features, np.float32)
    if len(features) < features.shape[1]:  # fewer posters than dimensions: the SVD of the rows themselves
        return _pca_svd(features, components)
    total = features.sum(axis=0, dtype=np.float64)
    gram = features.T.astype(np.float64) @ features
    info, basis, mean = pca_from_moments(len(features), total, gram, components)
    reduced = np.empty((len(features), basis.shape[0]), np.float32)
    for start in range(0, len(features), 8192):
        reduced[start:start + 8192] = (features[start:start + 8192] - mean) @ basis.T
    return reduced, info, basis, mean


def _pca_svd(features: np.ndarray, components: int) -> tuple[np.ndarray, dict, np.ndarray, np.ndarray]:
    """:func:`pca_fit` for fewer rows than dimensions: the same PCA, from the SVD of the centred rows (an
    n x n problem where the covariance's is d x d: 0.01 s at 30 posters, where 4096 x 4096 took 3.6 s)."""
    n, d = features.shape
    components = _allowed(components, n, d)
    mean = features.mean(axis=0, dtype=np.float64)
    centred = features - mean.astype(np.float32)
    _, values, rows = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
    basis = _signed(rows[:components])
    variance = float((values ** 2).sum()) or 1e-30
    info = _described(components, float((values[:components] ** 2).sum()) / variance)
    basis, mean = basis.astype(np.float32), mean.astype(np.float32)
    return (centred @ basis.T).astype(np.float32), info, basis, mean


def _allowed(components: int, n: int, d: int) -> int:
    allowed = min(n, d)
    if components > allowed:
        log.warning("--pca-components %d is more than %d posters x %d features allow; using %d",
                    components, n, d, allowed)
    return min(components, allowed)


def _signed(basis: np.ndarray) -> np.ndarray:
    """Each component's sign set so that its largest coefficient is positive, as scikit-learn sets it."""
    flip = np.sign(basis[np.arange(len(basis)), np.abs(basis).argmax(axis=1)])
    return basis * np.where(flip == 0, 1, flip)[:, None]


def _described(components: int, kept: float) -> dict:
    info = {"components": int(components), "whiten": False, "svd_solver": "exact",
            "explained_variance": round(kept, 4)}
    log.info("PCA: %d components keep %.1f%% of the variance", components, 100 * info["explained_variance"])
    return info


def pca_from_moments(n: int, total: np.ndarray, gram: np.ndarray, components: int) -> tuple[dict, np.ndarray, np.ndarray]:
    """The PCA of ``n`` rows from their sum and the sum of their outer products: (a description, the
    components (one per row, float32), the mean (float32)).

    The covariance is ``(gram - n * mean mean^T) / (n - 1)``; its leading eigenvectors are the components,
    exactly (no randomness, one pass over the rows to gather the sums: see :mod:`.streamed`). Each
    component's sign makes its largest coefficient positive, as scikit-learn's PCA does. ``components`` is
    clamped, with a warning, to what the data allows: ``min(n, d)``.
    """
    from scipy.linalg import eigh

    d = len(total)
    components = _allowed(components, n, d)
    mean = total / n
    cov = (gram - n * np.outer(mean, mean)) / max(n - 1, 1)
    values, vectors = eigh(cov, subset_by_index=[d - components, d - 1])
    order = np.argsort(values)[::-1]
    values, basis = np.clip(values[order], 0, None), _signed(vectors[:, order].T)
    info = _described(components, float(values.sum() / max(float(np.trace(cov)), 1e-30)))
    return info, basis.astype(np.float32), mean.astype(np.float32)


def fit_perplexity(perplexity: float, n: int) -> float:
    """Perplexity must stay below (n - 1) / 3 for the neighbour graph; lower it and say so."""
    limit = (n - 1) / 3.0
    if perplexity > limit:
        adjusted = max(1.0, math.floor(limit * 10) / 10)
        log.warning("--perplexity %g is too large for %d posters; using %g", perplexity, n, adjusted)
        return adjusted
    return perplexity


def tsne(points: np.ndarray, *, backend: str = "opentsne", perplexity: float = 30.0, seed: int = 0,
         n_jobs: int = 1, saved=None, key: str = "", progress=None) -> tuple[np.ndarray, dict]:
    """A 2-D t-SNE embedding of ``points`` and a description of how it was made. With ``saved`` (stage 3's
    :class:`~.checkpoints.Checkpoints`) and ``key`` (what the embedding is made from), openTSNE's part
    keeps its neighbours and, every SAVE_EVERY_S seconds, its optimisation so far (:func:`_optimise`), and
    goes on from them: at 1,000,000 points the two take about an hour. ``progress(done, total)``: the
    iterations made so far (openTSNE's, with ``saved``), for the stage's bar."""
    n = points.shape[0]
    perplexity = fit_perplexity(perplexity, n)
    info = {"backend": backend, "perplexity": perplexity, "seed": seed, "n_jobs": n_jobs}
    if backend == "opentsne":
        from openTSNE import TSNE

        method = "bh" if n < BH_BELOW else "fft"
        log.info("t-SNE: openTSNE, %s gradients (auto: %s below %d points), perplexity %g", method,
                 "Barnes-Hut", BH_BELOW, perplexity)
        # Exact neighbours up to EXACT_KNN_MAX points: at 3,000 they took 0.13 s against Annoy's
        # 0.5 s, and at 10,000 0.44 s against 1.9 s.
        neighbors = "exact" if n <= EXACT_KNN_MAX else "lists"
        affinities = None
        if neighbors == "lists":
            index, distance = _kept_nearest(points, min(n - 1, int(3 * perplexity)), saved, key)
            affinities = joint_affinities(index, distance, perplexity, n_jobs=n_jobs)
            del index, distance
        # FFT: two interpolation intervals per unit instead of one. At 10,000 clustered posters
        # that took t-SNE from 9.4 s to 6.3 s at the same trustworthiness (0.9883 against 0.9882).
        extra = {"ints_in_interval": FFT_INTS_IN_INTERVAL} if method == "fft" else {"theta": BH_THETA}
        # openTSNE's own neighbour search is not used when the affinities are given: "auto" is only a valid value.
        model = TSNE(n_components=2, perplexity=perplexity, negative_gradient_method=method,
                     neighbors="exact" if neighbors == "exact" else "auto", initialization="pca", n_iter=TSNE_ITER,
                     n_jobs=n_jobs, random_state=seed, verbose=False, **extra)
        embedding = _optimise(model, points, affinities, saved, key, progress)
        info.update(method=method, neighbors=neighbors, initialization="pca", early_exaggeration_iter=250,
                    n_iter=TSNE_ITER, **extra, **({"neighbor_lists": KNN_LISTS} if affinities else {}))
        return np.asarray(embedding, dtype=np.float64), info
    if backend == "multicore":
        try:
            from MulticoreTSNE import MulticoreTSNE
        except ImportError:
            raise UsageError(MULTICORE_MISSING) from None
        log.info("t-SNE: MulticoreTSNE, perplexity %g", perplexity)
        model = MulticoreTSNE(n_components=2, perplexity=perplexity, n_jobs=n_jobs, random_state=seed)
        return np.asarray(model.fit_transform(points.astype(np.float64)), dtype=np.float64), info
    if backend == "sklearn":
        from sklearn.manifold import TSNE

        log.info("t-SNE: scikit-learn, perplexity %g", perplexity)
        model = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, n_jobs=n_jobs)
        info.update(initialization="pca")
        return np.asarray(model.fit_transform(points), dtype=np.float64), info
    raise UsageError(f"--tsne: unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def _kept_nearest(points: np.ndarray, k: int, saved, key: str) -> tuple[np.ndarray, np.ndarray]:
    """:func:`nearest`, read back from ``saved`` when a stopped run kept them under ``key`` (minutes at
    1,000,000 points), else found and kept (720 MB there)."""
    n = points.shape[0]
    got = saved.load(NEIGHBOURS_STEP, key, {"index": (n, k), "distance": (n, k)}, within={"index": n}) if saved else None
    if got:
        return got[0]["index"], got[0]["distance"]
    index, distance = nearest(points, k)
    if saved:
        saved.save(NEIGHBOURS_STEP, key, {"index": index, "distance": distance}, {}, optional=True)
    return index, distance


def _optimise(model, points: np.ndarray, affinities, saved, key: str, progress=None):
    """openTSNE's ``model.fit(points, affinities=affinities)``, its two phases (early exaggeration, then the
    rest) run as ``fit`` runs them, with its state so far (the embedding, and the optimiser's gains and last
    step) kept in ``saved`` every SAVE_EVERY_S seconds, and a stopped run's state taken up where it was. Each
    iteration depends on that state alone, so the embedding made is the very one an unstopped ``fit``
    makes (tested, bit for bit). ``progress(done, total)``, with ``saved``: the iterations made, at each look."""
    from .checkpoints import SAVE_EVERY_S  # noqa: PLC0415 (read at each call: tests change it)

    embedding = model.prepare_initial(points, affinities=affinities)
    phases = [(model.early_exaggeration_iter, model.early_exaggeration, model.initial_momentum),
              (model.n_iter, model.exaggeration, model.final_momentum)]
    phase, done = _taken_up(embedding, phases, saved, key)
    total = sum(p[0] for p in phases)
    last = [time.monotonic()]
    for step in range(phase, len(phases)):
        iterations, exaggeration, momentum = phases[step]
        first = done if step == phase else 0
        before = sum(p[0] for p in phases[:step]) + first

        def keep(i, error, current, step=step, first=first, before=before):  # before this phase's update first + i
            at = before + i
            if at * 10 // total > (at - CHECK_EVERY) * 10 // total:  # an hour at 1,000,000 points: say how far
                log.info("t-SNE: iteration %d of %d, KL divergence %.3f", at, total, error)
            if progress is not None:
                progress(at, total)
            if time.monotonic() - last[0] >= SAVE_EVERY_S:
                optimiser = current.optimizer
                saved.save(SO_FAR_STEP, key, {"embedding": np.asarray(current), "gains": optimiser.gains,
                                              "update": optimiser.update},
                           {"phase": step, "done": first + i - 1}, optional=True)
                last[0] = time.monotonic()
            return False

        embedding.optimize(n_iter=iterations - first, exaggeration=exaggeration, momentum=momentum, inplace=True,
                           propagate_exception=True, callbacks=[keep] if saved else None,
                           callbacks_every_iters=CHECK_EVERY)
    return embedding


def _taken_up(embedding, phases: list[tuple], saved, key: str) -> tuple[int, int]:
    """(phase, iterations done in it) of the state a stopped run kept, now set in ``embedding``; (0, 0) where
    there is none to use."""
    n = embedding.shape[0]
    got = saved.load(SO_FAR_STEP, key, {"embedding": (n, 2), "gains": (n, 2), "update": (n, 2)}) if saved else None
    if not got:
        return 0, 0
    arrays, info = got
    phase, done = info.get("phase"), info.get("done")
    if not (isinstance(phase, int) and isinstance(done, int) and 0 <= phase < len(phases)
            and 0 <= done < phases[phase][0]):
        log.warning("checkpoint %s: iteration %r of phase %r is not one of this t-SNE's; starting it again",
                    SO_FAR_STEP, done, phase)
        saved.loaded.remove(SO_FAR_STEP)
        return 0, 0
    if phase:  # as the early exaggeration leaves them: multiplied by it, then divided (not always the same bits)
        embedding.affinities.P *= phases[0][1]
        embedding.affinities.P /= phases[0][1]
    embedding[:] = arrays["embedding"]
    embedding.optimizer.gains = np.array(arrays["gains"], dtype=np.float64)
    embedding.optimizer.update = np.array(arrays["update"], dtype=np.float64)
    at, total = sum(p[0] for p in phases[:phase]) + done, sum(p[0] for p in phases)
    saved.loaded[saved.loaded.index(SO_FAR_STEP)] = f"{SO_FAR_STEP} (iteration {at} of {total})"
    return phase, done


def joint_affinities(neighbours: np.ndarray, distances: np.ndarray, perplexity: float, *, n_jobs: int = 1,
                     block: int = 65_536):
    """openTSNE's affinities from each point's nearest neighbours, as its ``MultiscaleMixture`` of one
    perplexity makes them (the same matrix: tested), in less memory. openTSNE converts every distance to
    float64 at once, keeps the neighbours for later perplexity changes, and writes ``(P + P.T) / 2`` as
    two new matrices: at 1,000,000 points and 90 neighbours those copies came to several GiB, and stage 3
    peaked at 9.4 GiB. Here the distances go to float64 a block at a time, the neighbours are not kept,
    and the sum is not copied again to be halved."""
    import scipy.sparse as sp  # noqa: PLC0415
    from openTSNE import _tsne  # noqa: PLC0415
    from openTSNE.affinity import Affinities  # noqa: PLC0415

    n, k = neighbours.shape
    conditional = np.empty((n, k), dtype=np.float64)
    scales = np.array([perplexity], dtype=np.float64)
    for start in range(0, n, block):  # each row's kernel width is found on its own: blocks change nothing
        rows = np.array(distances[start:start + block], dtype=np.float64)
        conditional[start:start + block] = np.asarray(_tsne.compute_gaussian_perplexity(rows, scales, num_threads=n_jobs))
    one_way = sp.csr_matrix((conditional.ravel(), neighbours.astype(np.int32, copy=False).ravel(),
                             np.arange(0, n * k + 1, k, dtype=np.int64)), shape=(n, n))
    del conditional
    joint = one_way + one_way.T  # openTSNE halves it, then divides by its sum: the halving cancels exactly
    del one_way
    joint /= joint.sum()
    affinities = Affinities()
    affinities.P = joint
    return affinities


def nearest(points: np.ndarray, k: int, *, block: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """Each point's ``k`` nearest other points, as an inverted file (faiss, KNN_LISTS) finds them, and their
    exact Euclidean distances, nearest first: ``(indices (n, k) int32, distances (n, k) float32)``. The same
    points give the same neighbours on any number of threads (the lists' k-means is seeded, and its sample
    evenly spaced)."""
    import faiss  # noqa: PLC0415

    from .similarity import without_self

    started = time.perf_counter()
    points = np.ascontiguousarray(points, dtype=np.float32)
    n, d = points.shape
    per_list = KNN_LISTS["train_per_list"]
    lists = max(1, min(round(math.sqrt(n)), n // per_list))  # faiss's k-means wants about 40 points a centre
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, lists)
    index.train(points[::max(1, n // (lists * per_list))])
    for start in range(0, n, block):
        index.add(points[start:start + block])
    index.nprobe = _probes(index, points, k, lists)
    found = np.empty((n, k), np.int32)  # half of int64's 720 MB at 1,000,000 points and 90 neighbours
    distance = np.empty((n, k), np.float32)
    for start in range(0, n, block):
        stop = min(start + block, n)
        _, got = index.search(points[start:stop], k + 1)
        got = without_self(got, np.arange(start, stop), k)  # the point itself, or a copy of it, may come first
        far = np.sqrt(((points[got] - points[start:stop, None, :]) ** 2).sum(axis=2))
        order = np.argsort(far, axis=1, kind="stable")
        found[start:stop] = np.take_along_axis(got, order, axis=1)
        distance[start:stop] = np.take_along_axis(far, order, axis=1)
    log.info("t-SNE: %d neighbours of %d points from an inverted file (%d of %d lists probed) in %.1f s", k, n,
             index.nprobe, lists, time.perf_counter() - started)
    return found, distance


def _probes(index, points: np.ndarray, k: int, lists: int) -> int:
    """The first of KNN_LISTS' `first`, 11, 16, 23, ... (at most ``lists``) lists probed whose neighbours hold
    its `recall` of a seeded sample's true ``k`` nearest (:func:`.similarity.first_width`); a warning when even
    every list falls short (ties)."""
    import faiss  # noqa: PLC0415

    from .similarity import _share, first_width, sample_rows, without_self

    n = points.shape[0]
    rows = sample_rows(n, KNN_LISTS["sample"], 0)
    truth = without_self(faiss.knn(points[rows], points, k + 1)[1], rows, k)

    def recall_at(probes: int) -> float:
        index.nprobe = probes
        return _share(truth, without_self(index.search(points[rows], k + 1)[1], rows, k))

    probes, got = first_width(KNN_LISTS["first"], lists, KNN_LISTS["recall"], recall_at)
    if got < KNN_LISTS["recall"]:
        log.warning("t-SNE: even probing every list finds %.4f of %d sampled points' %d nearest", got, len(rows), k)
    log.info("t-SNE: probing %d of %d lists finds %.4f of %d sampled points' %d nearest (target %g)", probes, lists,
             got, len(rows), k, KNN_LISTS["recall"])
    return probes


def trustworthiness(high: np.ndarray, low: np.ndarray, *, k: int = 10, sample: int = 1000, seed: int = 0) -> float:
    """sklearn's trustworthiness at ``k``, on a seeded sample of at most ``sample`` points."""
    from sklearn.manifold import trustworthiness as score

    n = high.shape[0]
    if n <= 2 * k + 1:
        k = max(1, (n - 1) // 2 - 1)
    if n > sample:
        idx = np.sort(np.random.default_rng(seed).choice(n, sample, replace=False))
        high, low = high[idx], low[idx]
    return float(score(high, low, n_neighbors=k))


def normaliser(coords: np.ndarray) -> tuple[np.ndarray, float]:
    """(centre, scale) that :func:`normalise` applies to ``coords``: ``(coords - centre) * scale``."""
    lo, hi = coords.min(axis=0), coords.max(axis=0)
    span = float((hi - lo).max()) or 1.0
    return (lo + hi) / 2, 2.0 / span


def normalise(coords: np.ndarray) -> np.ndarray:
    """Centre on 0 and scale so that the larger extent spans [-1, 1]; aspect kept."""
    centre, scale = normaliser(coords)
    return (coords - centre) * scale


def grid(coords: np.ndarray) -> tuple[np.ndarray, dict]:
    """Snap each point to its own cell of a square grid, keeping neighbourhoods.

    Up to GRID_EXACT_MAX points: the optimal assignment (minimum total squared
    distance) by ``scipy.optimize.linear_sum_assignment``. Beyond: rows of the
    grid are filled in order of y, each row sorted by x (fast and overlap-free,
    not optimal).
    """
    n = coords.shape[0]
    side = max(1, math.ceil(math.sqrt(n)))
    lo, hi = coords.min(axis=0), coords.max(axis=0)
    unit = (coords - lo) / np.where(hi > lo, hi - lo, 1.0)
    cells = np.stack(np.meshgrid(np.arange(side), np.arange(side)), axis=-1).reshape(-1, 2).astype(np.float64)
    if n <= GRID_EXACT_MAX:
        from scipy.optimize import linear_sum_assignment
        from scipy.spatial.distance import cdist

        cost = cdist(unit * (side - 1), cells, "sqeuclidean")
        rows, cols = linear_sum_assignment(cost)
        placed = np.zeros((n, 2))
        placed[rows] = cells[cols]
        method = "linear_sum_assignment"
    else:
        log.info("grid: %d points is over %d; filling rows by y then x instead of an optimal assignment",
                 n, GRID_EXACT_MAX)
        placed = np.zeros((n, 2))
        by_y = np.argsort(unit[:, 1], kind="stable")
        for row, start in enumerate(range(0, n, side)):
            members = by_y[start:start + side]
            members = members[np.argsort(unit[members, 0], kind="stable")]
            placed[members, 0] = np.arange(len(members))
            placed[members, 1] = row
        method = "row-sort"
    # Same frame as the normalised t-SNE coordinates: [-1, 1], cells spaced evenly.
    scaled = (placed - (side - 1) / 2) * (2.0 / max(side - 1, 1))
    return scaled, {"side": side, "method": method, "cell": 2.0 / max(side - 1, 1)}
