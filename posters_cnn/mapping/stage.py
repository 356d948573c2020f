"""Stage 3: from features to the map: PCA, t-SNE, neighbours, pairs, ``data.json``.

Inputs: ``features.h5`` (stage 2) and ``posters.csv`` (stage 1). Outputs,
all beside ``data.json`` so the folder can be copied to any static host:

* ``data.json``: meta, naming the map's table (format 3; schema: ``data.schema.json``);
* ``assets/maps/{stem}/run-…/table/rows/Z/X-Y.arrow`` and ``table/near/Z/X-Y.arrow``: the map's table,
  one column per field, in Arrow files cut along the tile pyramid (``contracts/maptable.py``);
* ``pairs.json``: the closest pairs of posters overall (not versions of one movie);
* ``clusters.csv``: ``poster_id,cluster,region`` for every poster of the map (:mod:`.clusters`);
* ``assets/maps/{stem}/tiles/LAYOUT/Z/X-Y.jpg``: the map's imagery, a pyramid of tiles (:mod:`.tiles`);
* ``assets/maps/{stem}/pairs/NNN.jpg``: each pair side by side, like the
  original's ``examples/``;
* ``assets/posters/`` and ``assets/thumbs/``: hard links (copies across
  filesystems) of the images the page shows, shared by every map of the folder;
* ``assets/maps/{stem}/checkpoints/``: the long steps' outputs, only until the
  map is written (:mod:`.checkpoints`).

Each map (``{stem}`` is the name of its ``data.json`` without ``.json``) owns
``assets/maps/{stem}/`` and clears out only that folder, so several maps can
share one folder without one deleting another's files.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import datetime as dt
import functools
import hashlib
import itertools
import json
import logging
import os
import re
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from ..cli import StageError, UsageError
from ..concurrency import bounded_map
from ..contracts import geometry, maptable, store
from ..contracts.manifest import OkRow, load_ok_records
from ..fsutil import contained, link_or_copy, remove_stale_temporaries, write_json_atomic, write_text_atomic
from ..names import movie_of
from . import categories, checkpoints, clusters as clustering, layout, state as mapstate, streamed
from .similarity import (TARGET_RECALL, WIDTH_GROWTH, candidate_count, describe_search, list_candidates,
                         neighbours_and_pairs, recall, search_settings, searches_exactly)
from .tiles import build_pyramid

log = logging.getLogger(__name__)

SCHEMA_PATH = Path(__file__).with_name("data.schema.json")
MIN_POSTERS = 5
MAX_ASPECT = 8.0  # no poster is drawn more than 8 times wider than tall, or taller than wide
DEFAULT_PCA = 50


def peak_mib() -> float | None:
    """The most memory this process, or the largest of its finished child processes, has held resident so
    far, in MiB; None where the system does not say (no ``resource`` module: Windows)."""
    try:
        import resource  # noqa: PLC0415
    except ImportError:
        return None
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)  # bytes on macOS, KiB on Linux


# A step that has run this long says in the log how far it is, at each tenth of the way (the bar says it all along).
PROGRESS_LOG_AFTER_S = 60.0


def time_left(seconds: float) -> str:
    """A duration as a person reads it in a progress line: "under a minute", "about 12 min", "about 1 h 05 min"."""
    minutes = round(seconds / 60)
    if minutes < 1:
        return "under a minute"
    if minutes < 60:
        return f"about {minutes} min"
    return f"about {minutes // 60} h {minutes % 60:02d} min"


class _Timer:
    """``with timer("tsne"):`` times a step into ``timings`` and logs it, and notes in ``peaks`` the peak
    resident memory so far when it ends (the step where the peak first reaches its final value is the one
    that needed it); given ``make_bar`` (a function of the number of steps that returns a tqdm bar),
    :meth:`plan` makes the bar, which then counts the steps done and names the one under way.

    A long step tells how far it has gone through the ``report(done, total)`` of its span
    (``with timer("similarity") as step: search(..., progress=step.report)``): the bar shows its share and
    the time left at its rate so far, and once it has run PROGRESS_LOG_AFTER_S the log says the same at each
    tenth (at 1,000,000 posters the similar posters' search alone takes an hour or more)."""

    def __init__(self, make_bar=None, clock=time.perf_counter):
        self.timings: dict[str, float] = {}
        self.peaks: dict[str, float] = {}
        self.make_bar = make_bar
        self.bar = None
        self.clock = clock

    def plan(self, steps: int) -> None:
        if self.make_bar is not None:
            self.bar = self.make_bar(steps)

    def __call__(self, name: str):
        timer = self

        class _Span:
            def __enter__(self):
                self.start = timer.clock()
                self.since = None  # (time, done) of the first report: the rate is measured from there
                self.tenths = 0  # the tenths of the way already logged
                self.told = None
                if timer.bar is not None:
                    timer.bar.set_postfix_str(name)
                return self

            def report(self, done: int, total: int, *, say: bool = True) -> None:
                """``done`` of the step's ``total`` (posters, say) are done; ``say=False``: on the bar only
                (for a step that logs how far it is in its own words, as the t-SNE does)."""
                now = timer.clock()
                if self.since is None:  # a step taken up part-way (a resumed search) is timed from here
                    self.since = (now, done)
                share = min(1.0, done / total) if total > 0 else 1.0
                began, first = self.since
                left = (total - done) * (now - began) / (done - first) if first < done < total else None
                told = f"{share:.0%}" + (f", {time_left(left)} left" if left is not None else "")
                if timer.bar is not None and told != self.told:  # a redraw only when what it says changes
                    timer.bar.set_postfix_str(f"{name} {told}")
                self.told = told
                tenths = int(share * 10)
                if say and tenths > self.tenths and share < 1 and now - self.start >= PROGRESS_LOG_AFTER_S:
                    log.info("%s: %s of %s done (%s)", name, f"{done:,}", f"{total:,}", told)
                    self.tenths = tenths

            def __exit__(self, exc_type, *exc):
                if exc_type is not None:
                    return
                timer.timings[name] = round(timer.clock() - self.start, 3)
                peak = peak_mib()
                if peak is None:
                    log.info("%s: %.2fs", name, timer.timings[name])
                else:
                    timer.peaks[name] = peak
                    log.info("%s: %.2fs (peak memory so far %.0f MiB)", name, timer.timings[name], peak)
                if timer.bar is not None:
                    timer.bar.set_postfix_str(name)
                    timer.bar.update(1)

        return _Span()


def select(ids: list[str], known: dict, *, n_sample: int, one_per_movie: bool, seed: int) -> np.ndarray:
    """Row indices of the features to map: known to the manifest, one per movie if asked, sampled."""
    seen: set[str] = set()
    keep = np.zeros(len(ids), dtype=bool)
    for i, pid in enumerate(ids):  # a poster listed twice is mapped once, from its first row
        keep[i] = pid in known and pid not in seen
        seen.add(pid)
    if len(seen) < len(ids):
        log.warning("%d feature rows repeat a poster_id listed before them; each poster is mapped once",
                    len(ids) - len(seen))
    if not keep.any():
        raise UsageError("the manifest does not match the features file: no poster_id in common "
                         "(pass the posters.csv that the features were computed from)")
    indices = np.flatnonzero(keep)
    if one_per_movie:
        best: dict[str, tuple[int, int]] = {}
        for i in indices:
            pid = ids[i]
            key = movie_of(pid)
            version = known[pid]["version"]
            if key not in best or version < best[key][0]:
                best[key] = (version, i)
        indices = np.sort(np.array([i for _, i in best.values()], dtype=np.int64))
        log.info("--one-per-movie: %d movies", len(indices))
    if n_sample and len(indices) > n_sample:
        rng = np.random.default_rng(seed)
        indices = np.sort(rng.choice(indices, n_sample, replace=False))
        log.info("--n-sample: a seeded random sample of %d posters", n_sample)
    return indices


LEFT_OUT_IDS = 20  # the ids meta.selection.left_out names for each reason: the log names none, and says the count


def unlisted(ids: list[str], known: dict) -> list[str]:
    """The poster_ids of the features file (``ids``), each once, that have no ok row in the manifest
    (``known``, by poster_id)."""
    return [pid for pid in dict.fromkeys(ids) if pid not in known]


def left_out(unlisted_ids: list[str], not_finite: list[str]) -> dict:
    """Why posters of the features file are not on the map, as ``meta.selection.left_out`` keeps it, so
    that a user can find it after the log has scrolled away: for each reason that applies, how many and the
    first LEFT_OUT_IDS of their ids. ``unlisted_ids``: those with no ok row in the manifest (:func:`unlisted`);
    ``not_finite``: those whose features hold a NaN or an infinity. (A poster the run chose not to map, by
    --n-sample or --one-per-movie, is not left out.)"""
    reasons = {"no ok row in the manifest": list(unlisted_ids),
               "features not finite (NaN or infinite)": list(not_finite)}
    return {why: {"count": len(got), "ids": [str(pid) for pid in got[:LEFT_OUT_IDS]]}
            for why, got in reasons.items() if got}


def check_output(output: str | os.PathLike) -> Path:
    """``output`` as a Path, or UsageError when it cannot name a map (checked before anything is written)."""
    output = Path(output)
    if output.suffix != ".json":  # exactly: data.JSON would share data.json's folders and files
        raise UsageError(f"-o: the output should be a .json file, got {output}")
    if not re.fullmatch(r"\w[\w.\-]*", output.stem) or output.stem.startswith("pairs") or \
            output.stem.endswith("-pairs"):
        raise UsageError(f"-o: name the map with letters, digits, '.', '-' and '_' (such as data-30k.json), "
                         f"not starting with 'pairs' or ending in '-pairs' (the names of pairs files); "
                         f"got {output.name!r}")
    return output


@dataclass
class Selection:
    """What this run maps: the posters' ids, manifest rows and features, in map order."""

    ids: list[str]
    rows: list[OkRow]  # the manifest's rows (contracts.manifest)
    features: streamed.Features  # unit rows and the PCA's sums (streamed.py)
    attrs: dict  # the features file's attributes
    available: int  # rows in the features file
    source: dict  # what identifies the features file's content: name, size, time, rows
    left_out: dict  # why posters of the features file are not mapped (:func:`left_out`)

    @functools.cached_property
    def key(self) -> str:
        """What the outputs of every later step depend on, as a checkpoint key."""
        return checkpoints.key_of("selection", CHECKPOINT_FORMAT, self.source,
                                  hashlib.sha256("\n".join(self.ids).encode()).hexdigest())


@dataclass
class Similar:
    """Each poster's most similar posters, and the closest pairs overall (see :mod:`.similarity`)."""

    index: np.ndarray  # (n, k) int64
    similarity: np.ndarray  # (n, k) float32
    pairs: list[tuple[float, int, int]]
    exact: bool
    recall: dict | None = None  # recall@k against exact cosine on a sample, for the approximate search
    search: dict | None = None  # how wide the approximate search was, and why (similarity.list_candidates)


@dataclass
class Reduced:
    """The features' PCA projection (``points``), how it was made, and its basis (one component per row)."""

    points: np.ndarray
    info: dict
    components: np.ndarray
    mean: np.ndarray  # the features' mean: a row projects as (row - mean) @ components.T


@dataclass
class Embedding:
    """The t-SNE map: as openTSNE returned it (``raw``), normalised to [-1, 1] (``coords``), and how."""

    raw: np.ndarray
    coords: np.ndarray
    info: dict


# Bumped when a step's code changes what it computes from the same inputs: older checkpoints are not used.
CHECKPOINT_FORMAT = 4  # 2: the PCA keeps the mean; 3: points are (row - mean) @ components.T; 4: exact PCA, streamed


@dataclass
class Choice:
    """The rows of the features file to map, chosen before any is read, so that bad input fails at once."""

    ids: list[str]  # the features file's poster_ids, all of them
    indices: np.ndarray  # the rows chosen, ascending
    known: dict  # the manifest's ok rows, by poster_id
    attrs: dict  # the features file's attributes
    unlisted: list[str]  # the file's poster_ids with no ok row in the manifest (:func:`unlisted`)


def choose(features_path: Path, posters_csv: Path, *, n_sample: int, one_per_movie: bool, seed: int) -> Choice:
    """The posters to map: in the features file and ok in the manifest, selected (:func:`select`)."""
    ids, _, attrs = store.read_features(features_path, load=False)
    known = {row["poster_id"]: row for row in load_ok_records(posters_csv)}
    indices = select(ids, known, n_sample=n_sample, one_per_movie=one_per_movie, seed=seed)
    missing = unlisted(ids, known)
    if missing:
        log.warning("%d feature rows have no ok row in the manifest; leaving them out", len(missing))
    _enough(len(indices))
    return Choice(ids, indices, known, attrs, missing)


def _enough(n: int) -> None:
    if n < MIN_POSTERS:
        raise UsageError(f"only {n} posters to map; at least {MIN_POSTERS} are needed")


def read_selection(features_path: Path, choice: Choice, *, spill: Path | None = None, progress=None) -> Selection:
    """The chosen posters with finite features, read in one pass of blocks (:mod:`.streamed`; ``spill``: the
    folder for unit rows too many to hold; ``progress(done, total)``: the posters read)."""
    features, finite = streamed.read(features_path, choice.indices, spill=spill, progress=progress)
    ids = [choice.ids[i] for i in choice.indices]
    not_finite = [pid for pid, ok in zip(ids, finite) if not ok]
    if not_finite:
        log.warning("%d posters have NaN or infinite features; leaving them out", len(not_finite))
        ids = [pid for pid, ok in zip(ids, finite) if ok]
    _enough(len(ids))
    if features.constant:
        raise UsageError(f"the features of all {len(ids)} posters are the same, so there is nothing to map: "
                         f"were they all computed from one image, or with broken weights?")
    stat = features_path.stat()
    available = len(choice.ids)
    source = {"file": features_path.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "rows": available}
    return Selection(ids, [choice.known[pid] for pid in ids], features, choice.attrs, available, source,
                     left_out(choice.unlisted, not_finite))


def similar_posters(features: streamed.Features, groups: np.ndarray, *, k: int, n_pairs: int,
                    seed: int = 0, target: float = TARGET_RECALL, candidates: tuple | None = None) -> Similar:
    """``candidates``: the search's candidates (:func:`candidate_search`), where the search is approximate."""
    search: dict = {}
    index, similarity, pairs = neighbours_and_pairs(features.unit, k=k, n_pairs=n_pairs, groups=groups,
                                                    normalized=True, search_info=search, target=target,
                                                    candidates=candidates)
    exact = searches_exactly(features.n)
    measured = None
    if not exact and index.shape[1]:
        started = time.perf_counter()
        measured = recall(features.unit, index, seed=seed, normalized=True)
        log.info("similar posters: recall@%d %.4f against exact cosine, on %d sampled posters (%.1f s)",
                 measured["k"], measured["recall"], measured["sample"], time.perf_counter() - started)
    return Similar(index, similarity, pairs, exact=exact, recall=measured, search=search or None)


def candidate_search(saved: checkpoints.Checkpoints, rows_key: str, unit, *, k: int,
                     target: float = TARGET_RECALL, progress=None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Each poster's candidates from the inverted file, their cosines, and how many lists it probed
    (:func:`.similarity.list_candidates`), the candidates kept as they are found (``candidates.rows``, in
    the order searched, with each one's poster): a run stopped in the search goes on from the last
    candidates kept, and one stopped after the search does not search again. ``rows_key``: of the rows
    and the libraries' versions. ``progress(done, total)``: the posters searched."""
    n = unit.shape[0]
    m = candidate_count(n, k)
    saved.discard("graph")  # what an older version stopped in its search kept (3.8 GiB at 1,000,000 posters)
    numbers = _row_numbers(n)
    so_far = saved.rows_so_far("candidates", checkpoints.key_of("candidates", search_key(rows_key, k, target)), n,
                               {"row": (numbers, 1), "found": (numbers, m), "exact": ("<f4", m)},
                               within={"row": n, "found": n})
    if so_far.done and len(np.unique(so_far.arrays["row"])) != so_far.done:
        so_far.restart("a poster is searched twice")
    elif so_far.done and (so_far.arrays["found"] == so_far.arrays["row"]).any():
        so_far.restart("a poster is its own candidate")
    if (so_far.done or so_far.info) and sorted(so_far.info) != ["k", "lists", "recall", "sample", "target", "width"]:
        so_far.restart("the search's width is not told")
    return list_candidates(unit, m, k=max(1, min(k, n - 1)), target=target, so_far=so_far, progress=progress)


def search_key(rows_key: str, k: int, target: float) -> str:
    """What the search's candidates depend on: the rows and the libraries'
    versions (``rows_key``), ``k`` and the search's settings."""
    return checkpoints.key_of(rows_key, k, search_settings(target))


def _row_numbers(n: int) -> str:
    return "<i4" if n < 2**31 else "<i8"


def load_similar(saved: checkpoints.Checkpoints, key: str, n: int) -> Similar | None:
    """The similar posters of a stopped run, when its checkpoint is the one for ``key``."""
    got = saved.load("similar", key, {"index": (n, None), "similarity": (n, None), "pair_sim": (None,),
                                     "pair_i": (None,), "pair_j": (None,)},
                     within={"index": n, "pair_i": n, "pair_j": n})
    if not got:
        return None
    arrays, info = got
    pairs = list(zip(arrays["pair_sim"].tolist(), arrays["pair_i"].tolist(), arrays["pair_j"].tolist()))
    return Similar(arrays["index"], arrays["similarity"], pairs, info["exact"], info.get("recall"), info.get("search"))


def save_similar(saved: checkpoints.Checkpoints, key: str, near: Similar) -> None:
    pair_sim, pair_i, pair_j = pair_arrays(near.pairs)
    saved.save("similar", key, {"index": near.index, "similarity": near.similarity, "pair_sim": pair_sim,
                                "pair_i": pair_i, "pair_j": pair_j},
                {"exact": near.exact, "recall": near.recall, "search": near.search})


def reduce(features: streamed.Features, components: int, progress=None) -> Reduced:
    """The exact PCA from the sums gathered as the features were read, and each poster's point (a second
    pass over the features file; ``progress(done, total)``: the posters projected)."""
    if features.raw is not None:  # fewer posters than dimensions: kept, and their SVD
        return Reduced(*layout.pca_fit(features.raw, components))
    info, basis, mean = layout.pca_from_moments(features.n, features.total, features.gram, components)
    return Reduced(streamed.project(features, mean, basis, progress=progress), info, basis, mean)


def embed(points: np.ndarray, *, backend: str, perplexity: float, seed: int, n_jobs: int,
          saved: checkpoints.Checkpoints | None = None, key: str = "", progress=None) -> Embedding:
    """The t-SNE embedding (kept part-way in ``saved`` under ``key``, see :func:`.layout.tsne`;
    ``progress(done, total)``: its iterations)."""
    raw, info = layout.tsne(points, backend=backend, perplexity=perplexity, seed=seed, n_jobs=n_jobs, saved=saved,
                            key=key, progress=progress)
    if not np.isfinite(raw).all():
        raise StageError("t-SNE gave positions that are not numbers (the features may be nearly all the "
                         "same); try another --perplexity or --seed")
    return Embedding(raw, layout.normalise(raw), info)


def find_clusters(coords: np.ndarray, reduced: np.ndarray, ids: list[str], years: list, *, min_size: int,
                  seed: int, stem: str, similar: np.ndarray | None = None
                  ) -> tuple[clustering.Clustering, list[dict], list[dict], dict]:
    """Clusters and regions of the map: (the clustering, the clusters and regions as meta lists, the
    ``meta.clustering`` description). ``similar``: each poster's similar posters (see :func:`.clusters.find`)."""
    found = clustering.find(coords, min_size, similar)
    cluster_list, region_list = describe_clusters(found, coords, reduced, ids, years)
    info = {"file": clusters_file_name(stem), "method": "HDBSCAN", "space": "the t-SNE map",
            "min_cluster_size": int(min_size), "count": len(cluster_list),
            "unclustered": int((found.labels < 0).sum()), "regions": len(region_list), "seed": seed,
            **found.choice}
    log.info("clusters: at least %d posters each; %d posters in none", min_size, info["unclustered"])
    return found, cluster_list, region_list, info


def describe_clusters(found: clustering.Clustering, coords: np.ndarray, reduced: np.ndarray, ids: list[str],
                      years: list) -> tuple[list[dict], list[dict]]:
    """The meta lists of the clusters (each with its region) and of the regions (each with its clusters)."""
    cluster_list = clustering.describe(found.labels, coords, reduced, ids, years)
    region_list = clustering.describe(found.regions, coords, reduced, ids, years)
    for cluster in cluster_list:
        cluster["region"] = int(found.region_of[cluster["id"]])
    for region in region_list:
        region["clusters"] = [c["id"] for c in cluster_list if c["region"] == region["id"]]
    return cluster_list, region_list


def _library_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("numpy", "scikit-learn", "openTSNE", "faiss-cpu"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def make_map(features_path: str | os.PathLike, posters_csv: str | os.PathLike | None,
             output: str | os.PathLike, *, n_sample: int = 0, one_per_movie: bool = False,
             pca_components: int = DEFAULT_PCA, perplexity: float = 30.0, tsne: str = "opentsne",
             n_jobs: int | None = None, seed: int = 0, neighbors: int = 8, pairs: int = 200,
             similar_recall: float = TARGET_RECALL,
             grid: bool = False, pair_images: bool = True, clusters: bool = True,
             min_cluster_size: int | None = None, metadata: str | os.PathLike | None = None,
             progress=None) -> dict:
    """Run stage 3 and return a summary dict; see the module docstring for what is written.

    The steps are the functions above, each with its own inputs and outputs; the long ones (the PCA,
    the similar posters, the t-SNE embedding) keep their outputs as checkpoints (:mod:`.checkpoints`),
    so that a stopped run starts again after them and makes the same map.

    ``progress``: a function of the number of steps that returns a tqdm bar, called once the features
    are read (the bar counts the steps, and shows how far a long one is; the read says it in the log); the
    caller closes the bar, even on error.
    """
    started = time.perf_counter()
    # scikit-learn takes a second to import (PCA, trustworthiness and HDBSCAN come from it): let it load
    # on the other core while the features are read and compared, and wait for it before its first use
    # here (two threads importing one package at once can see it half-initialised).
    importing = threading.Thread(target=_import_sklearn, name="import-sklearn", daemon=True)
    importing.start()
    timer = _Timer(progress)
    n_jobs = n_jobs or os.cpu_count() or 1
    output = Path(output)
    check_output(output)
    features_path = Path(features_path)
    posters_csv = Path(posters_csv) if posters_csv else features_path.parent / "posters.csv"
    if tsne not in layout.BACKENDS:
        raise UsageError(f"--tsne: unknown backend {tsne!r}; choose one of {', '.join(layout.BACKENDS)}")
    if min_cluster_size is not None and min_cluster_size < 2:
        raise UsageError(f"--min-cluster-size: must be 2 or more, got {min_cluster_size}")
    if tsne == "multicore" and _missing("MulticoreTSNE"):
        raise UsageError(layout.MULTICORE_MISSING)  # before minutes of work, not after
    table = categories.read_metadata(metadata) if metadata else None  # the same: a bad file fails first

    out_dir = output.parent
    stem = output.stem
    # What a killed run of this map left half-written (the caller holds the map's lock).
    remove_stale_temporaries(out_dir, (), names=(output.name, pairs_file_name(stem), clusters_file_name(stem)))
    settle(output)
    saved = checkpoints.Checkpoints(out_dir / "assets" / "maps" / stem / checkpoints.FOLDER)
    remove_stale_temporaries(saved.folder)
    choice = choose(features_path, posters_csv, n_sample=n_sample, one_per_movie=one_per_movie, seed=seed)
    with timer("read") as step:  # before the bar: what reading finds wrong is one line, not a bar and a line
        chosen = read_selection(features_path, choice, spill=saved.folder, progress=step.report)
    del choice  # every id in the file and the manifest's rows by id: about 150 MB at 1,000,000 posters
    ids, rows, attrs = chosen.ids, chosen.rows, chosen.attrs
    n = len(ids)
    log.info("mapping %d posters", n)
    if str(attrs.get("weights", "")).startswith("random"):
        log.warning("these features come from random weights: the map shows nothing about the posters")

    versions = _library_versions()
    groups = np.unique([movie_of(pid) for pid in ids], return_inverse=True)[1]
    # The steps from here: similarity, pca, link images, [pair images], tsne, trustworthiness, [clusters],
    # [grid], a tile pyramid per layout.
    timer.plan(5 + bool(pair_images and pairs) + bool(clusters) + 2 * bool(grid) + 1)

    pca_key = checkpoints.key_of("pca", chosen.key, pca_components, seed, versions)

    # The similar posters first, beside the import: they need the features, not the PCA.
    with timer("similarity") as step:
        key = checkpoints.key_of("similar", chosen.key, neighbors, pairs, seed,
                                 "exact" if searches_exactly(n) else search_settings(similar_recall), versions)
        near = load_similar(saved, key, n)
        if near is None:
            candidates = None
            if not searches_exactly(n):
                rows_key = checkpoints.key_of(chosen.key, versions)
                candidates = candidate_search(saved, rows_key, chosen.features.unit, k=neighbors,
                                              target=similar_recall, progress=step.report)
            near = similar_posters(chosen.features, groups, k=neighbors, n_pairs=pairs, seed=seed,
                                   target=similar_recall, candidates=candidates)
            save_similar(saved, key, near)
            saved.discard("candidates")  # the similar posters' checkpoint holds what they were for
        chosen.features.drop_unit_rows()  # their one user: 2.4 GB at 300,000 posters, free for the t-SNE
    with timer("pca") as step:
        importing.join()
        dim = chosen.features.dim
        got = saved.load("pca", pca_key, {"points": (n, None), "components": (None, dim), "mean": (dim,)})
        if got:
            reduced = Reduced(got[0]["points"], got[1], got[0]["components"], got[0]["mean"])
        else:
            reduced = reduce(chosen.features, pca_components, progress=step.report)
            saved.save("pca", pca_key, {"points": reduced.points, "components": reduced.components,
                                        "mean": reduced.mean}, reduced.info)

    del chosen.features  # its sums (128 MB at 4096-d) are not needed past this point: the tiles' memory instead
    assets = out_dir / "assets"
    # This run's own folder, beside the one the current map uses: see the module docstring.
    own = f"assets/maps/{stem}/{RUN_PREFIX}{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S}-{os.urandom(3).hex()}"
    with timer("link images") as step:
        link_images(rows, assets, n_jobs, progress=step.report)
    pair_rel = {}
    if pair_images and near.pairs:
        with timer("pair images"):
            pair_rel = _pair_images(near.pairs, rows, out_dir, f"{own}/pairs", n_jobs)
    with timer("tsne") as step:
        embed_key = checkpoints.key_of("tsne", pca_key, tsne, perplexity, seed, layout.TSNE_ITER, layout.BH_THETA,
                                       layout.BH_BELOW, layout.EXACT_KNN_MAX, layout.FFT_INTS_IN_INTERVAL,
                                       layout.KNN_LISTS, WIDTH_GROWTH)
        got = saved.load("tsne", embed_key, {"raw": (n, 2)})
        if got:
            embedding = Embedding(got[0]["raw"], layout.normalise(got[0]["raw"]), got[1])
        else:
            embedding = embed(reduced.points, backend=tsne, perplexity=perplexity, seed=seed, n_jobs=n_jobs,
                              saved=saved, key=embed_key,  # its own log lines say the iterations and the KL divergence
                              progress=lambda done, total: step.report(done, total, say=False))
            saved.save("tsne", embed_key, {"raw": embedding.raw}, embedding.info)
            for step in (layout.NEIGHBOURS_STEP, layout.SO_FAR_STEP):  # what the embedding was made from, or on the way
                saved.discard(step)
        coords = embedding.coords
    if saved.loaded:
        log.info("resumed: %s from the checkpoints of a stopped run", ", ".join(saved.loaded))
    with timer("trustworthiness"):
        trust = layout.trustworthiness(reduced.points, embedding.raw, k=10, seed=seed)
    log.info("trustworthiness (k=10, against the PCA space): %.4f", trust)
    found, cluster_list, region_list, clustering_info = None, [], [], None
    if clusters:
        with timer("clusters"):
            min_size = min_cluster_size or clustering.default_min_size(n)
            found, cluster_list, region_list, clustering_info = find_clusters(
                coords, reduced.points, ids, [row["year"] for row in rows], min_size=min_size, seed=seed, stem=stem,
                similar=near.index)
    layouts = {"tsne": (coords, geometry.slot_size(n))}
    grid_info = None
    if grid:
        with timer("grid"):
            grid_coords, grid_info = layout.grid(coords)
        layouts["grid"] = (grid_coords, geometry.grid_slot(grid_info["side"]))
    aspect, thumb_max = _aspects(rows)
    tiles, tile_files = {}, 0
    thumbs = [row["thumb_abspath"] for row in rows]  # made here, not held through the t-SNE (130 MB at 1M)
    for name, (xy, slot) in layouts.items():
        with timer(f"tiles {name}") as step:
            u, v = geometry.to_unit(xy[:, 0], xy[:, 1])
            pyramid = build_pyramid(thumbs, geometry.poster_boxes(u, v, aspect, slot), out_dir / own / "tiles" / name,
                                    slot=slot, jobs=n_jobs, progress=step.report)
            tile_files += pyramid.files
            tiles[name] = {**pyramid.as_json(f"{own}/tiles/{name}/{{z}}/{{x}}-{{y}}.jpg"), "slot": round(slot, 6)}

    created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    settings = map_settings(n_sample=n_sample, one_per_movie=one_per_movie, pca_components=pca_components,
                            perplexity=perplexity, tsne=tsne, seed=seed, neighbors=neighbors, pairs=pairs, grid=grid,
                            pair_images=pair_images, clusters=clusters, min_cluster_size=min_cluster_size,
                            attrs=attrs, used={"perplexity": embedding.info.get("perplexity"),
                                               "method": embedding.info.get("method"),
                                               "slot": geometry.slot_size(n),
                                               "min_cluster_size": clustering_info and clustering_info["min_cluster_size"]})
    meta = {
        "format": maptable.FORMAT, "created": created, "count": n, "seed": seed,
        "seconds": round(time.perf_counter() - started, 2),  # the whole stage, up to writing its files
        "features": {"file": features_path.name, **{key: None if attrs.get(key) is None else str(attrs[key])
                                                    for key in ("model", "layer", "weights")},
                     "random_weights": str(attrs.get("weights", "")).startswith("random")},
        "selection": {"n_sample": n_sample, "one_per_movie": one_per_movie, "available": chosen.available,
                      "left_out": chosen.left_out},
        "pca": reduced.info, "tsne": embedding.info, "trustworthiness": round(trust, 4),
        "trustworthiness_k": 10, "neighbors": int(near.index.shape[1]), "similarity": "cosine on fc2 features",
        "similarity_search": describe_search(near.exact, near.search),
        "similarity_recall": near.recall,  # null when exact
        "run": own, "pairs": {"file": f"{own}/{PAIRS_IN_RUN}", "count": len(near.pairs)},
        "state": f"{own}/{mapstate.FILE}",
        "tiles": tiles, "thumb_size": thumb_max, "grid": grid_info, "timings": timer.timings,
        "peak_mib": timer.peaks,
    }
    if clusters:
        meta["clustering"] = clustering_info
        meta["clusters"] = cluster_list
        meta["regions"] = region_list
    del thumbs
    image_rel, thumb_rel = image_paths(rows)  # made here too: 210 MB of paths at 1M, once held through the t-SNE
    columns = map_columns(meta, ids, rows, coords, aspect, near, found, layouts["grid"][0] if grid else None,
                          image_rel, thumb_rel, table)
    centre, scale = layout.normaliser(embedding.raw)
    pair_sim, pair_i, pair_j = pair_arrays(near.pairs)
    kept = mapstate.MapState(np.asarray(ids), reduced.mean, reduced.components, reduced.points, embedding.raw, centre,
                             scale, near.index, near.similarity, pair_sim, pair_i, pair_j, settings)
    publish(output, own, meta, columns, pairs_document(created, near.pairs, ids, pair_rel, output.name),
            clustering.csv_text(ids, found.labels, found.regions) if clusters else None, kept)
    saved.remove()  # the map is written: nothing is left to resume
    return {"count": n, "trustworthiness": trust, "timings": timer.timings, "seconds": meta["seconds"],
            "output": str(output), "pairs": len(near.pairs), "tiles": tile_files,
            "clusters": len(cluster_list) if clusters else None, "resumed": saved.loaded,
            "left_out": chosen.left_out}


def map_settings(*, attrs: dict, used: dict, **given) -> dict:
    """What a map was made with, as its state keeps it: the settings given, the ones the run chose
    (``used``), and the features' provenance, which an update's features must share."""
    return {"given": given, "used": used, "features": mapstate.provenance(attrs)}


def pair_arrays(pairs: list[tuple[float, int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The closest pairs as three columns: similarity, i, j."""
    if not pairs:
        return np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return tuple(np.array(column) for column in zip(*pairs))


def map_columns(meta: dict, ids: list[str], rows: list[dict], coords: np.ndarray, aspect: np.ndarray, near: Similar,
                found, grid_xy: np.ndarray | None, image_rel: list[str], thumb_rel: list[str],
                metadata: categories.Metadata | None = None) -> dict:
    """The map's columns, as format 2 held them in ``data.json`` (format 3 writes them as its table,
    ``contracts/maptable.py``), and ``meta.paths``, ``meta.categories`` and ``meta.metadata`` (set in ``meta``)."""
    columns = {
        "id": ids, "title": [row["title"] for row in rows], "year": [row["year"] for row in rows],
        "version": [row["version"] for row in rows],
        "x": _rounded(coords[:, 0], 5), "y": _rounded(coords[:, 1], 5), "aspect": _rounded(aspect, 4),
        "neighbors": near.index.ravel().tolist(), "similarity": _rounded(near.similarity.ravel(), 3),
    }
    if found is not None:
        columns["cluster"] = found.labels.tolist()
        columns["region"] = found.regions.tolist()
    if grid_xy is not None:
        columns["gx"], columns["gy"] = _rounded(grid_xy[:, 0], 5), _rounded(grid_xy[:, 1], 5)
    # Paths and pages follow templates; a column only for what does not.
    default_thumb = [f"assets/thumbs/{pid}.jpg" for pid in ids]
    default_image = [f"assets/posters/{pid}.jpg" for pid in ids]
    meta["paths"] = {"thumb": "assets/thumbs/{id}.jpg", "image": "assets/posters/{id}.jpg"}
    for key, rel, default in (("thumb", thumb_rel, default_thumb), ("image", image_rel, default_image)):
        if rel != default:
            columns[key] = [None if a == b else a for a, b in zip(rel, default)]
    pages = [row.get("page_url") or "" for row in rows]
    template = _page_template(ids, pages)
    if template:
        meta["paths"]["page"] = template
    elif any(pages):
        columns["page"] = pages
    describe_rows(meta, columns, rows, metadata)
    return columns


def describe_rows(meta: dict, columns: dict, rows: list[dict], metadata: categories.Metadata | None) -> None:
    """What the manifest (and ``--metadata``) say of each poster beyond its place, set in ``columns`` and
    ``meta``: the full image's height, the file it came from, and the categories."""
    for key, values in (("height", [_image_height(row) for row in rows]),
                        ("original", [_original_file(row) for row in rows])):
        columns.pop(key, None)
        if any(values):
            columns[key] = values
    found_categories, report = categories.categories(rows, metadata)
    meta.pop("metadata", None)  # an update's meta is the earlier map's: its report is not this one's
    meta["categories"] = [category.describe() for category in found_categories]
    columns["categories"] = [category.codes.tolist() for category in found_categories]
    if report:
        meta["metadata"] = report


def _image_height(row: dict) -> int | None:
    """The full image's height in pixels, as the manifest gives it (upright), or None when it does not: the
    page loads a full poster only where it is taller than the thumbnail."""
    try:
        height = int(row.get("height") or 0)
    except (TypeError, ValueError):
        return None
    return height if 0 < height <= MAX_IMAGE_SIDE else None


MAX_IMAGE_SIDE = 100_000  # a manifest's height past this is not a picture's: left out


def _original_file(row: dict) -> str | None:
    """The file a ``--from-dir`` image came from (its path on this machine), or None for a scraped one,
    whose page says where it came from."""
    url = row.get("image_url") or ""
    if not url.startswith("file:"):
        return None
    from urllib.request import url2pathname

    return url2pathname(urlsplit(url).path)


def pairs_document(created: str, pairs: list[tuple[float, int, int]], ids: list[str], pair_rel: dict[int, str],
                   data_name: str) -> dict:
    """``pairs.json``: the closest pairs by id, most similar first, with their side-by-side images."""
    return {"meta": {"created": created, "count": len(pairs), "similarity": "cosine on fc2 features",
                     "excludes": "versions of the same movie", "data": data_name},
            "pairs": [{"a": ids[i], "b": ids[j], "similarity": round(value, 5),
                       "image": pair_rel.get(rank)} for rank, (value, i, j) in enumerate(pairs)]}


def publish(output: Path, own: str, meta: dict, columns: dict, pairs_doc: dict, clusters_csv: str | None,
            kept: mapstate.MapState) -> None:
    """Write what ``data.json`` names into the run's folder ``own``, then switch to the new map."""
    out_dir = output.parent
    write_json_atomic(out_dir / own / PAIRS_IN_RUN, pairs_doc)
    if clusters_csv is not None:
        write_text_atomic(out_dir / own / CLUSTERS_IN_RUN, clusters_csv)
    kept.save(out_dir / own / mapstate.FILE)
    install_page(out_dir)
    write_map(output, own, meta, columns)
    settle(output)


def write_map(output: Path, own: str, meta: dict, columns: dict) -> None:
    """Write the map's table (``contracts/maptable.py``) into a new folder of its run's folder ``own``, then
    ``data.json`` naming it (format 3; ``meta`` gains ``format`` and ``table``), then remove the run's other
    tables: a table is never changed in place, so a page that loaded the earlier ``data.json`` reads the
    rows it named until it loads the new one."""
    run = output.parent / own
    folder = maptable.FOLDER
    while (run / folder).exists():  # an update of categories writes the run's table anew beside the old one
        folder = f"{maptable.FOLDER}-{os.urandom(3).hex()}"
    about = maptable.write(run / folder, columns, meta)
    meta["format"] = maptable.FORMAT
    meta["table"] = maptable.relocate(about, f"{own}/{folder}")
    # The switch: until this rename the folder holds the earlier map, whole; after it, this one.
    write_json_atomic(output, {"meta": meta})
    for entry in run.iterdir():
        if entry.is_dir() and entry.name.startswith(maptable.FOLDER) and entry.name != folder:
            shutil.rmtree(entry, ignore_errors=True)


RUN_PREFIX = "run-"
PAIRS_IN_RUN = "pairs.json"
CLUSTERS_IN_RUN = "clusters.csv"


def settle(output: Path) -> None:
    """Finish the switch to the map that ``output`` holds, and tidy what killed runs left.

    A run writes everything its ``data.json`` names (tiles, pair images, the
    pairs and clusters files) into a folder of its own,
    ``assets/maps/STEM/run-TIME-ID/``, and only then replaces ``data.json``,
    atomically: a run stopped at any moment leaves the earlier map whole. This
    step, called before a run starts and after it switches, puts the map's
    ``pairs.json`` and ``clusters.csv`` beside it (hard links to its run's
    copies; the clusters file is removed for a map made with ``--clusters 0``)
    and removes every other run's folder, and the folders of maps made before
    runs had their own (``tiles/``, ``pairs/``), once ``data.json`` no longer
    uses them. When ``data.json`` is missing or unreadable, only the folders of
    runs that never switched go.
    """
    out_dir, stem = output.parent, output.stem
    own = out_dir / "assets" / "maps" / stem
    current = None
    try:
        run = json.loads(output.read_text(encoding="utf-8"))["meta"]["run"]
        current = contained(out_dir, run)
        if current.parent != own:
            current = None
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if current is not None and current.is_dir():
        for name, inside in ((pairs_file_name(stem), PAIRS_IN_RUN), (clusters_file_name(stem), CLUSTERS_IN_RUN)):
            if (current / inside).is_file():
                link_or_copy(current / inside, out_dir / name)
            else:
                with contextlib.suppress(FileNotFoundError):
                    (out_dir / name).unlink()
    if not own.is_dir():
        return
    for entry in own.iterdir():
        if entry == current or not entry.is_dir() or entry.name == checkpoints.FOLDER:
            continue
        if current is not None or entry.name.startswith(RUN_PREFIX):
            shutil.rmtree(entry, ignore_errors=True)


WEB_DIR = Path(__file__).resolve().parents[2] / "web"
PAGE_FILES = ("index.html", "style.css", "app.js", "loader.js", "renderer.js", "interaction.js", "panels.js",
              "clusters.js", "logic.js", "geometry.js", "look.js")
VENDOR_FILES = ("d3.min.js", "arrow.min.js")  # from npm (package-lock.json), copied by `make setup`


def install_page(out_dir: str | os.PathLike) -> bool:
    """Put the page's files (and d3 and Arrow, when ``make setup`` has installed them) beside a map written
    outside ``web/``, so that the folder is a complete site. False if one of them is missing."""
    out_dir = Path(out_dir)
    vendor = WEB_DIR / "vendor"
    missing = [name for name in VENDOR_FILES if not (vendor / name).exists()]
    if out_dir.resolve() == WEB_DIR:
        return not missing
    for name in PAGE_FILES:
        shutil.copyfile(WEB_DIR / name, out_dir / name)
    if missing:
        log.warning("web/vendor/%s is missing: run `make setup` (it installs d3 and Arrow from npm), then run "
                    "this stage again to copy it beside the map", missing[0])
        return False
    (out_dir / "vendor").mkdir(exist_ok=True)
    for name in VENDOR_FILES:
        shutil.copyfile(vendor / name, out_dir / "vendor" / name)
    return True


def _rounded(values, digits: int) -> list[float]:
    return [round(float(v), digits) for v in values]


def _aspects(rows) -> tuple[np.ndarray, int]:
    """Each poster's width / height (from the manifest, else the thumbnail's header), and the
    longest side of the thumbnails (from a sample of their headers)."""
    from ..images import header_size

    aspect = np.empty(len(rows))
    for i, row in enumerate(rows):
        w, h = row.get("width"), row.get("height")
        try:
            w, h = int(w), int(h)
        except (TypeError, ValueError, OverflowError):
            w = h = 0
        if w <= 0 or h <= 0:
            w, h = header_size(row["thumb_abspath"]) or (2, 3)
        aspect[i] = w / h
    # A doctored manifest's 1e9 x 1 would make a poster a line across the map: no poster is drawn
    # more than MAX_ASPECT times wider than tall, or taller than wide.
    np.clip(aspect, 1 / MAX_ASPECT, MAX_ASPECT, out=aspect)
    sizes = [header_size(row["thumb_abspath"]) for row in rows[:: max(1, len(rows) // 200)]]
    longest = max((max(size) for size in sizes if size), default=0)
    return aspect, min(longest, 4096) or 256


def _page_template(ids: list[str], pages: list[str]) -> str | None:
    """``http://www.impawards.com/{id}.html`` when every page is that with its poster's id."""
    if not pages or not pages[0] or not pages[0].endswith(f"{ids[0]}.html"):
        return None
    template = pages[0][: -len(f"{ids[0]}.html")] + "{id}.html"
    prefix = template[:-len("{id}.html")]
    return template if all(p == f"{prefix}{pid}.html" for pid, p in zip(ids, pages)) else None


def _companion(stem: str, kind: str, suffix: str) -> str:
    """The name of a file that goes with map ``stem``: ``data`` -> ``KIND.SUFFIX``, ``data-30k`` ->
    ``KIND-30k.SUFFIX``, ``map`` -> ``map-KIND.SUFFIX``."""
    return f"{kind}{stem[4:]}{suffix}" if stem.startswith("data") else f"{stem}-{kind}{suffix}"


def pairs_file_name(stem: str) -> str:
    """``data`` -> ``pairs.json``, ``data-30k`` -> ``pairs-30k.json``, ``map`` -> ``map-pairs.json``."""
    return _companion(stem, "pairs", ".json")


def clusters_file_name(stem: str) -> str:
    """``data`` -> ``clusters.csv``, ``data-30k`` -> ``clusters-30k.csv``, ``map`` -> ``map-clusters.csv``."""
    return _companion(stem, "clusters", ".csv")


def _import_sklearn() -> None:
    try:
        import hdbscan  # noqa: F401
        import sklearn.cluster  # noqa: F401
        import sklearn.decomposition  # noqa: F401
        import sklearn.manifold  # noqa: F401
    except ImportError:  # pragma: no cover - reported where it is used
        pass


def _missing(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None


def image_paths(rows) -> tuple[list[str], list[str]]:
    """Where the page finds each poster's image and thumbnail, relative to data.json's folder."""
    return [asset_path(row, "image") for row in rows], [asset_path(row, "thumb") for row in rows]


def asset_path(row, kind: str) -> str:
    """Where the page finds a poster's ``kind`` ("image" or "thumb"), relative to data.json's folder."""
    return f"assets/{row[f'{kind}_path']}"


LINK_BATCH = 512  # images one task links: a task (a future) for each link cost as much as the link


def link_images(rows, assets: Path, jobs: int, progress=None) -> None:
    """Link (or copy) every image the page shows of ``rows`` under ``assets``: LINK_BATCH to a task, a few
    tasks at a time in flight, never a list of them (``Executor.map`` takes every item at once: at 1,000,000
    posters its two million pending calls held 4 GB, the stage's peak). ``progress(done, total)`` counts the
    images linked, two a poster."""
    root = os.fspath(assets.parent)

    def batches():
        for kind in ("image", "thumb"):
            source = iter(rows)
            while batch := list(itertools.islice(source, LINK_BATCH)):
                yield kind, batch

    def one(item):
        kind, batch = item
        for row in batch:
            src = row[f"{kind}_abspath"]
            try:
                link_or_copy(src, os.path.join(root, asset_path(row, kind)))
            except OSError as exc:
                log.warning("cannot copy %s: %s", src, exc)
        return len(batch)

    done = 0
    with cf.ThreadPoolExecutor(jobs) as pool:
        for linked in bounded_map(pool, one, batches(), window=2 * max(1, jobs)):
            done += linked
            if progress is not None:
                progress(done, 2 * len(rows))


def _pair_images(best_pairs, rows, out_dir: Path, rel_folder: str, jobs: int, height: int = 256) -> dict[int, str]:
    """Side-by-side composites of each pair, from the thumbnails, at most ``height`` pixels tall.

    They go to ``out_dir/rel_folder``, a folder of this map's own: images of an
    earlier run that are not written again are removed from it.
    """
    folder = out_dir / rel_folder
    from PIL import Image

    from ..fsutil import write_bytes_atomic
    from ..images import BadImage, jpeg_bytes, load as load_image, to_rgb

    paths = [row["thumb_abspath"] for row in rows]

    def load(path):
        rgb = to_rgb(load_image(path, reduce_to=height))
        return rgb.resize((max(1, round(rgb.width * height / rgb.height)), height), Image.Resampling.BILINEAR)

    def one(item):
        rank, (_, i, j) = item
        try:
            left, right = load(paths[i]), load(paths[j])
        except BadImage as exc:
            log.warning("pair %d: cannot read an image: %s", rank, exc)
            return rank, None
        gap = 12
        canvas = Image.new("RGB", (left.width + right.width + 3 * gap, height + 2 * gap), (255, 255, 255))
        canvas.paste(left, (gap, gap))
        canvas.paste(right, (2 * gap + left.width, gap))
        name = f"{rank:03d}.jpg"
        write_bytes_atomic(folder / name, jpeg_bytes(canvas, 85))
        return rank, f"{rel_folder}/{name}"

    with cf.ThreadPoolExecutor(jobs) as pool:
        done = dict(pool.map(one, enumerate(best_pairs)))
    for old in folder.glob("*.jpg"):
        if f"{rel_folder}/{old.name}" not in done.values():
            old.unlink()
    return {rank: rel for rank, rel in done.items() if rel}


def load_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())
