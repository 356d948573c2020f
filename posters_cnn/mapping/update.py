"""Stage 3 ``--update``: new posters join a map without moving it.

A map keeps its state beside its tiles (:mod:`.state`). An update reads it,
and the features file and manifest that have grown since, and:

* **places** each new poster into the saved t-SNE embedding with openTSNE's
  ``TSNEEmbedding.transform`` (its defaults: perplexity 5, 250 iterations),
  against the map's posters only; no poster already on the map moves, and its
  ``x, y`` stay bit-identical. A new poster placed past the map's edge is
  drawn on the edge;
* **finds similar posters both ways**: each new poster's most similar posters
  by exact cosine over the whole map, and each poster already there gains a new
  one that is closer than its last; a poster whose list named a poster that
  left has its list found again. The closest pairs take in pairs with a new
  poster; pairs with a poster that left go (the list may then be shorter
  than ``--pairs``);
* **clusters**: a new poster joins the cluster that at least half of its 10
  nearest posters on the map belong to, or none; cluster numbers stay, their
  sizes, years, faces and outlines follow, and so does ``clusters.csv``;
* **posters that left** the manifest or the features file leave the map;
* **tiles**: only the tiles (at every level) that an added or removed poster
  meets are drawn again (:mod:`.tiles` says how); every other tile is a hard
  link to the earlier file.
  They all go to a new run's folder, so every tile URL changes and no browser
  shows a cached tile beside new data; ``data.json`` switches to the new run
  atomically, as a full run's does.

It refuses, in one line (exit 2), what it cannot do well: more new posters
than a fifth of the map, or more than a tenth of them far from everything on
the map (:func:`far_from_map`), unless ``--force``; features made with other
weights, preprocessing or precision; settings other than the map's; a map of
a sample or with a grid; a map without its state. With ``--update=auto`` it
makes the map in full instead (the chain's choice).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ..cli import StageError, UsageError
from ..contracts import geometry, maptable, store
from ..contracts.manifest import load_ok_records
from ..fsutil import UnsafePath, contained, remove_stale_temporaries
from ..names import movie_of
from . import categories, clusters as clustering, stage, state as mapstate
from .similarity import _top, normalize_rows
from .tiles import build_pyramid

log = logging.getLogger(__name__)

MAX_SHARE = 0.2  # more new posters than this share of the map: a full run places them better
FAR_SHARE = 0.1  # more new posters than this share far from everything on the map: the same
FAR_QUANTILE = 0.01  # "far": less like its most similar poster on the map than 99% of the map's posters are
VOTERS = 10  # a new poster joins the cluster of at least half of its VOTERS nearest posters on the map
PLACED = "openTSNE TSNEEmbedding.transform into the saved embedding (its defaults: perplexity 5, 250 iterations)"
INTEGRITY_SAMPLE = 256  # posters whose features are checked against the saved PCA points
PRODUCT_FLOATS = 1 << 24  # a block of rows x queries similarities is at most this many floats (64 MB)


class NeedsFullRun(UsageError):
    """An update cannot do this (well); a full run of stage 3 can. One line, exit 2."""


# The settings an update keeps from the map: (flag, key in the map's settings).
KEPT_SETTINGS = (("--n-sample", "n_sample"), ("--one-per-movie", "one_per_movie"),
                 ("--pca-components", "pca_components"), ("--perplexity", "perplexity"), ("--tsne", "tsne"),
                 ("--seed", "seed"), ("--neighbors", "neighbors"), ("--pairs", "pairs"), ("--grid", "grid"),
                 ("--no-pair-images", "pair_images"), ("--clusters", "clusters"),
                 ("--min-cluster-size", "min_cluster_size"))


@dataclass
class Plan:
    """Who stays, who leaves and who joins: indices into the old map, and the new posters' ids and rows."""

    kept: np.ndarray
    removed: np.ndarray
    new_ids: list[str]
    new_rows: list[dict]


def update_map(features_path: str | os.PathLike, posters_csv: str | os.PathLike | None,
               output: str | os.PathLike, *, given: dict | None = None, force: bool = False,
               n_jobs: int | None = None, metadata: str | os.PathLike | None = None) -> dict:
    """Add the posters that the features file and manifest have and the map lacks; see the module docstring.

    ``given``: the settings passed on the command line (the map's keys, as :data:`KEPT_SETTINGS` names
    them): one that differs from the map's raises :class:`NeedsFullRun`.
    """
    started = time.perf_counter()
    timings: dict[str, float] = {}
    clock = [time.perf_counter()]

    def lap(name: str) -> None:
        now = time.perf_counter()
        timings[name] = round(now - clock[0], 3)
        clock[0] = now
        log.info("%s: %.2fs", name, timings[name])

    n_jobs = n_jobs or os.cpu_count() or 1
    output = stage.check_output(output)
    table = categories.read_metadata(metadata) if metadata else None
    features_path = Path(features_path)
    posters_csv = Path(posters_csv) if posters_csv else features_path.parent / "posters.csv"
    out_dir, stem = output.parent, output.stem
    remove_stale_temporaries(out_dir, (), names=(output.name, stage.pairs_file_name(stem),
                                                 stage.clusters_file_name(stem)))
    stage.settle(output)
    meta, columns, saved = read_map(output)
    check_settings(saved.settings, given or {})
    ids_file, _, attrs = store.read_features(features_path, load=False)
    check_provenance(saved.settings.get("features", {}), mapstate.provenance(attrs), features_path)
    known = {row["poster_id"]: row for row in load_ok_records(posters_csv)}
    plan = plan_update(saved, ids_file, known, one_per_movie=bool(saved.settings["given"].get("one_per_movie")))
    rows_of = {}
    for row_number, pid in enumerate(ids_file):
        rows_of.setdefault(pid, row_number)
    new_features = _read_rows(features_path, [rows_of[pid] for pid in plan.new_ids])
    finite = np.isfinite(new_features).all(axis=1)
    not_finite = [pid for pid, ok in zip(plan.new_ids, finite) if not ok]
    if not_finite:  # as a full run does
        log.warning("%d new posters have NaN or infinite features; leaving them out", len(not_finite))
        plan.new_ids = [pid for pid, ok in zip(plan.new_ids, finite) if ok]
        plan.new_rows = [row for row, ok in zip(plan.new_rows, finite) if ok]
        new_features = new_features[finite]
    old_n, kept_n = len(saved.ids), len(plan.kept)
    if not plan.new_ids and not len(plan.removed):
        relabelled = refresh_categories(output, meta, columns, [known[str(pid)] for pid in saved.ids], table)
        log.info("the map is up to date: no poster to add or remove%s",
                 "; its categories were read again" if relabelled else "")
        return {"count": old_n, "added": 0, "removed": 0, "tiles": 0, "drawn": 0, "seconds":
                round(time.perf_counter() - started, 2), "output": str(output), "changed": False,
                "relabelled": relabelled}
    if kept_n < max(stage.MIN_POSTERS, saved.neighbors.shape[1] + 1):
        raise NeedsFullRun(f"only {kept_n} of the map's posters are left: make the map in full")
    if len(plan.new_ids) > MAX_SHARE * kept_n and not force:
        raise NeedsFullRun(f"{len(plan.new_ids)} new posters are more than a fifth of the map's {kept_n}: placed "
                           f"one by one into a map they would reshape, they would sit poorly; make the map in full "
                           f"(without --update), or pass --force to place them anyway")
    new_points = ((new_features - saved.pca_mean) @ saved.pca_components.T).astype(np.float32)
    log.info("update: %d posters stay, %d leave, %d join", kept_n, len(plan.removed), len(plan.new_ids))
    lap("plan")

    ids = [str(saved.ids[i]) for i in plan.kept] + plan.new_ids
    near, closest = similar_after_update(features_path, ids, rows_of, saved, plan, new_features)
    del new_features
    lap("similarity")

    far = far_from_map(saved.similarity[plan.kept, 0], closest)
    if far.any() and far.mean() > FAR_SHARE and not force:
        raise NeedsFullRun(f"{int(far.sum())} of the {len(far)} new posters are far from every poster on the map "
                           f"(less like their most similar poster there than 99% of its posters are like theirs): "
                           f"they are unlike what the map was made from; make the map in full, or pass --force to "
                           f"place them anyway")
    kept_points = saved.points[plan.kept]
    kept_raw = saved.raw[plan.kept]
    settings_used = saved.settings.get("used", {})
    new_raw = place(kept_raw, kept_points, new_points, seed=int(saved.settings["given"].get("seed", 0)),
                    method=settings_used.get("method") or ("fft" if kept_n >= 10_000 else "bh"), n_jobs=n_jobs)
    raw = np.concatenate([kept_raw, new_raw])
    coords = positions(raw, saved)
    clipped = int((np.abs((new_raw - saved.centre) * saved.scale) > 1).any(axis=1).sum())
    if clipped:
        log.info("%d new posters were placed past the map's edge and are drawn on it", clipped)
    points = np.concatenate([kept_points, new_points])
    lap("place")

    rows = [known[pid] for pid in ids]
    found, cluster_list, region_list = None, [], []
    if "cluster" in columns:
        found, cluster_list, region_list = clusters_after_update(meta, columns, plan, coords, points, ids, rows)
    lap("clusters")

    own = f"assets/maps/{stem}/{stage.RUN_PREFIX}{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S}-{os.urandom(3).hex()}"
    stage.link_images(plan.new_rows, out_dir / "assets", n_jobs)
    image_rel, thumb_rel = stage.image_paths(rows)
    pair_rel = {}
    if saved.settings["given"].get("pair_images", True) and near.pairs:
        pair_rel = stage._pair_images(near.pairs, rows, out_dir, f"{own}/pairs", n_jobs)
    lap("images")

    slot = float(settings_used.get("slot") or meta["tiles"]["tsne"]["slot"])
    aspect, _ = stage._aspects(rows)
    boxes = geometry.poster_boxes(*geometry.to_unit(coords[:, 0], coords[:, 1]), aspect, slot)
    old_coords = positions(saved.raw[plan.removed], saved)
    old_aspect = np.array(columns["aspect"], dtype=float)[plan.removed]
    removed = geometry.poster_boxes(*geometry.to_unit(old_coords[:, 0], old_coords[:, 1]), old_aspect, slot)
    pyramid_was = meta["tiles"]["tsne"]
    try:
        reuse = contained(out_dir, pyramid_was["path"].split("/{z}")[0])
    except UnsafePath:
        raise NeedsFullRun(f"{output}: meta.tiles.tsne.path is not a path under its folder") from None
    pyramid = build_pyramid([row["thumb_abspath"] for row in rows], boxes, out_dir / own / "tiles" / "tsne",
                            slot=slot, jobs=n_jobs, reuse=reuse, new_from=kept_n, removed=removed)
    if pyramid.levels != pyramid_was["levels"]:
        raise StageError(f"the updated map's pyramid has {pyramid.levels} levels, the map's {pyramid_was['levels']}")
    lap("tiles")

    created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    meta = dict(meta)
    meta.update({
        "created": created, "count": len(ids), "run": own, "state": f"{own}/{mapstate.FILE}",
        "pairs": {"file": f"{own}/{stage.PAIRS_IN_RUN}", "count": len(near.pairs)},
        "tiles": {"tsne": {**pyramid.as_json(f"{own}/tiles/tsne/{{z}}/{{x}}-{{y}}.jpg"), "slot": pyramid_was["slot"]}},
        "selection": {**meta.get("selection", {}), "available": len(ids_file),
                      "left_out": stage.left_out(stage.unlisted(ids_file, known), not_finite)},
        "update": {"added": len(plan.new_ids), "removed": int(len(plan.removed)), "placed": PLACED,
                   "far": int(far.sum()), "past_edge": clipped, "tiles_drawn": pyramid.files - pyramid.reused,
                   "tiles_linked": pyramid.reused,
                   "made": (meta.get("update") or {}).get("made", meta["created"]), "timings": timings},
    })
    if found is not None:
        meta["clusters"], meta["regions"] = cluster_list, region_list
        meta["clustering"] = {**meta["clustering"], "unclustered": int((found.labels < 0).sum())}
    meta["seconds"] = round(time.perf_counter() - started, 2)
    if table is None and meta.get("metadata"):
        log.warning(FORGOTTEN, meta["metadata"].get("file"))
    columns = stage.map_columns(meta, ids, rows, coords, aspect, near, found, None, image_rel, thumb_rel, table)
    pair_sim, pair_i, pair_j = stage.pair_arrays(near.pairs)
    kept_state = mapstate.MapState(np.asarray(ids), saved.pca_mean, saved.pca_components, points, raw, saved.centre,
                                   saved.scale, near.index, near.similarity, pair_sim, pair_i, pair_j, saved.settings)
    stage.publish(output, own, meta, columns,
                  stage.pairs_document(created, near.pairs, ids, pair_rel, output.name),
                  clustering.csv_text(ids, found.labels, found.regions) if found is not None else None, kept_state)
    lap("write")
    return {"count": len(ids), "added": len(plan.new_ids), "removed": int(len(plan.removed)),
            "tiles": pyramid.files, "drawn": pyramid.files - pyramid.reused, "seconds": meta["seconds"],
            "output": str(output), "changed": True, "far": int(far.sum()), "timings": timings,
            "left_out": meta["selection"]["left_out"]}


def refresh_categories(output: Path, meta: dict, columns: dict, rows: list[dict],
                       table: categories.Metadata | None) -> bool:
    """With no poster to add or remove, what the manifest and ``--metadata`` say of the posters may still
    have changed (a folder renamed, another ``--metadata``, a map made before heights were written): write
    it into ``data.json`` in place (nothing else changes, the tiles and the run folder stay). Whether it
    changed."""
    new_meta, new_columns = dict(meta), dict(columns)
    stage.describe_rows(new_meta, new_columns, rows, table)
    if new_meta == meta and new_columns == columns:
        return False
    if table is None and meta.get("metadata"):
        log.warning(FORGOTTEN, meta["metadata"].get("file"))
    stage.write_map(output, meta["run"], new_meta, new_columns)
    return True


FORGOTTEN = ("the map had the columns of --metadata %s; this update was given none, so they are left out: pass "
             "--metadata again to keep them")


def read_map(output: Path) -> tuple[dict, dict, mapstate.MapState]:
    """(meta, columns, state) of the map at ``output``, or NeedsFullRun saying why it cannot be updated."""
    try:
        meta, columns = maptable.read_columns(output)
        n = len(columns["id"])
    except FileNotFoundError:
        raise NeedsFullRun(f"there is no map at {output} to update: make it first, without --update") from None
    except maptable.BadTable as exc:
        raise NeedsFullRun(f"{exc}: make the map again, without --update") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NeedsFullRun(f"{output} is not a readable map ({exc.__class__.__name__}): make it again, without "
                           f"--update") from None
    if not isinstance(meta.get("state"), str):
        raise NeedsFullRun(f"{output} was made without its state (by an earlier version of this stage): make it "
                           f"once without --update; later runs can update it")
    if meta.get("grid") or "tsne" not in meta.get("tiles", {}) or len(meta.get("tiles", {})) != 1:
        raise NeedsFullRun(f"{output} has a grid layout: a new poster would move every cell of the grid, so the map "
                           f"is made in full (without --update)")
    try:
        saved = mapstate.load(contained(output.parent, meta["state"]))
    except (UsageError, UnsafePath) as exc:
        raise NeedsFullRun(f"{exc}: make the map in full (without --update)") from None
    if len(saved.ids) != n or saved.ids.tolist() != columns["id"]:
        raise NeedsFullRun(f"{meta['state']} does not hold the posters of {output.name}: make the map in full "
                           f"(without --update)")
    return meta, columns, saved


def check_settings(settings: dict, given: dict) -> None:
    """NeedsFullRun when the map cannot be updated with the settings ``given``: the map keeps its own."""
    was = settings.get("given", {})
    for flag, key in KEPT_SETTINGS:
        if key in given and key in was and given[key] != was[key]:
            raise NeedsFullRun(f"the map was made with {key}={was[key]!r}, not {given[key]!r} ({flag}): an update "
                               f"keeps the map's settings; leave out {flag}, or make the map again without --update")
    if was.get("n_sample"):
        raise NeedsFullRun(f"the map is a sample of {was['n_sample']} posters (--n-sample): an update would add "
                           f"every poster left out; make the map again without --update")


def check_provenance(was: dict, now: dict, features_path: Path) -> None:
    """NeedsFullRun when the features were made otherwise than the map's (other weights, preprocessing,
    precision): their distances would mean nothing against the map's."""
    for key in mapstate.PROVENANCE:
        if was.get(key) != now.get(key):
            raise NeedsFullRun(f"{features_path} holds features made with {key}={now.get(key)!r}, the map's with "
                               f"{was.get(key)!r}: they cannot share a map; make it again without --update")


def plan_update(saved: mapstate.MapState, ids_file: list[str], known: dict, *, one_per_movie: bool) -> Plan:
    """Which of the map's posters stay (in the features file and ok in the manifest), and which join."""
    in_file = set(ids_file)
    on_map = set(saved.ids.tolist())
    kept = np.array([i for i, pid in enumerate(saved.ids.tolist()) if pid in in_file and pid in known], np.int64)
    removed = np.setdiff1d(np.arange(len(saved.ids)), kept)
    new_ids, seen = [], set()
    for pid in ids_file:
        if pid in known and pid not in on_map and pid not in seen:
            new_ids.append(pid)
            seen.add(pid)
    if one_per_movie:  # the map keeps one version per movie: no other version of a movie on it, the lowest
        movies = {movie_of(str(saved.ids[i])) for i in kept}
        best: dict[str, str] = {}
        for pid in new_ids:
            key = movie_of(pid)
            if key not in movies and (key not in best or known[pid]["version"] < known[best[key]]["version"]):
                best[key] = pid
        chosen = set(best.values())
        new_ids = [pid for pid in new_ids if pid in chosen]
    return Plan(kept, removed, new_ids, [known[pid] for pid in new_ids])


def _read_rows(features_path: Path, rows: list[int]) -> np.ndarray:
    """The features file's ``rows`` (any order), as float32."""
    rows = np.asarray(rows, np.int64)
    with h5py.File(features_path, "r") as handle:
        data = handle[store.FEATURES]
        out = np.empty((len(rows), data.shape[1]), np.float32)
        if not len(rows):
            return out
        order = np.argsort(rows, kind="stable")
        for start in range(0, len(rows), 4096):
            part = order[start:start + 4096]
            out[part] = data[rows[part]]
    return out


def positions(raw: np.ndarray, saved: mapstate.MapState) -> np.ndarray:
    """data.json's ``x, y`` of t-SNE positions: the map's normalisation, then the map's edge."""
    return np.clip((raw - saved.centre) * saved.scale, -1.0, 1.0)


def _nearest(queries: np.ndarray, points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each query's ``k`` nearest ``points`` (euclidean): (indices, distances), nearest first."""
    k = min(k, len(points))
    chunk = max(1, PRODUCT_FLOATS // max(len(points), 1))  # a chunk's distances: at most 128 MB
    points = points.astype(np.float64)
    sq = (points ** 2).sum(axis=1)
    index = np.empty((len(queries), k), np.int64)
    distance = np.empty((len(queries), k))
    for start in range(0, len(queries), chunk):
        q = queries[start:start + chunk].astype(np.float64)
        d2 = (q ** 2).sum(axis=1)[:, None] - 2 * q @ points.T + sq[None, :]
        found, values = _top(-d2, k)
        index[start:start + len(q)] = found
        distance[start:start + len(q)] = np.sqrt(np.maximum(-values, 0))
    return index, distance


def far_from_map(map_closest: np.ndarray, new_closest: np.ndarray) -> np.ndarray:
    """Which new posters are far from every poster on the map: their highest cosine similarity to a poster
    on the map (``new_closest``) is below the FAR_QUANTILE of the map's posters' own (``map_closest``: each
    one's most similar poster's). Measured on the features, not the PCA points: a poster unlike anything
    the PCA was fitted on can project near the middle of its space."""
    if not len(new_closest) or not len(map_closest):
        return np.zeros(len(new_closest), bool)
    return new_closest < float(np.quantile(map_closest, FAR_QUANTILE))


def place(map_raw: np.ndarray, map_points: np.ndarray, new_points: np.ndarray, *, seed: int, method: str,
          n_jobs: int) -> np.ndarray:
    """The t-SNE positions of ``new_points``, placed by openTSNE's transform among the map's, which stay."""
    if not len(new_points):
        return np.zeros((0, 2))
    import scipy.sparse as sp
    from openTSNE import TSNEEmbedding
    from openTSNE.affinity import Affinities, joint_probabilities_nn

    class MapAffinities(Affinities):
        """The map's posters as openTSNE's reference: their new neighbours found exactly in the PCA space."""

        def __init__(self):
            super().__init__()
            self.P = sp.csr_matrix((len(map_points), len(map_points)))

        def to_new(self, data, perplexity=5, return_distances=False, k_neighbors="auto"):
            k = max(25, int(3 * perplexity)) if k_neighbors == "auto" else int(k_neighbors)
            neighbours, distances = _nearest(data, map_points, k)
            P = joint_probabilities_nn(neighbours, distances, [min(perplexity, neighbours.shape[1] / 3)],
                                       symmetrize=False, normalization="point-wise",
                                       n_reference_samples=len(map_points), n_jobs=n_jobs)
            return (P, neighbours, distances) if return_distances else P

    shift = (map_raw.max(axis=0) + map_raw.min(axis=0)) / 2  # transform centres the map; put it back after
    embedding = TSNEEmbedding(map_raw.copy(), MapAffinities(), negative_gradient_method=method, random_state=seed,
                              n_jobs=n_jobs)
    placed = np.asarray(embedding.transform(new_points.astype(np.float64)), dtype=np.float64) + shift
    if not np.isfinite(placed).all():
        raise StageError("placing the new posters gave positions that are not numbers; make the map in full")
    return placed


def _merge_top(best_idx: np.ndarray, best_sim: np.ndarray, values: np.ndarray, columns: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """Each row's best ``k`` (indices and similarities, most similar first) merged with ``values`` (rows x
    candidates; candidate j is ``columns[j]``). Only candidates above a row's last best are looked at: after
    the first blocks of a search, few are."""
    k = best_sim.shape[1]
    if not k or not values.size:
        return best_idx, best_sim
    if not np.isfinite(best_sim[:, -1]).all():  # the first block: every candidate counts
        cand_sim = np.concatenate([best_sim, values], axis=1)
        cand_idx = np.concatenate([best_idx, np.broadcast_to(columns, values.shape)], axis=1)
        top, top_sim = _top(cand_sim, k)
        return np.take_along_axis(cand_idx, top, axis=1), top_sim
    r, c = np.nonzero(values > best_sim[:, -1:])
    if not len(r):
        return best_idx, best_sim
    hit = np.unique(r)
    rows = np.concatenate([np.repeat(hit, k), r])
    sims = np.concatenate([best_sim[hit].ravel(), values[r, c]])
    idx = np.concatenate([best_idx[hit].ravel(), columns[c]])
    order = np.lexsort((-sims, rows))  # by row, then most similar first (the earlier best first on ties)
    rows, sims, idx = rows[order], sims[order], idx[order]
    first = np.searchsorted(rows, hit)
    keep = (np.arange(len(rows)) - np.repeat(first, np.diff(np.append(first, len(rows))))) < k
    best_idx, best_sim = best_idx.copy(), best_sim.copy()
    best_idx[hit], best_sim[hit] = idx[keep].reshape(len(hit), k), sims[keep].reshape(len(hit), k)
    return best_idx, best_sim


def similar_after_update(features_path: Path, ids: list[str], rows_of: dict, saved: mapstate.MapState,
                         plan: Plan, new_features: np.ndarray) -> tuple[stage.Similar, np.ndarray]:
    """Each poster's most similar posters and the closest pairs on the updated map (ids: kept, then new).

    Exact cosine on the features, streamed through in blocks: the new posters and the posters whose list
    named one that left are searched over every poster; the others keep their list, with any new poster
    closer than its last taken in. ``new_features``: the new posters' rows. Also returns each new
    poster's highest similarity to a poster already on the map, and checks a sample of the map's posters
    against the saved PCA points (a features file changed under the map).
    """
    kept_n, n = len(plan.kept), len(ids)
    k = saved.neighbors.shape[1]
    new_of_old = np.full(len(saved.ids), -1, np.int64)
    new_of_old[plan.kept] = np.arange(kept_n)
    old_index = new_of_old[saved.neighbors[plan.kept]]  # (kept_n, k); -1 where a neighbour left
    old_sim = saved.similarity[plan.kept].copy()
    affected = np.flatnonzero((old_index < 0).any(axis=1))
    queries = np.concatenate([affected, np.arange(kept_n, n)]).astype(np.int64)  # map indices searched in full
    is_query = np.zeros(n, bool)
    is_query[queries] = True
    q_unit = normalize_rows(np.concatenate([_read_rows(features_path, [rows_of[ids[m]] for m in affected]),
                                            new_features]))
    new_cols = np.arange(len(affected), len(queries))
    groups = {}
    group = np.array([groups.setdefault(movie_of(pid), len(groups)) for pid in ids], np.int64)
    best_idx = np.full((len(queries), k), -1, np.int64)
    best_sim = np.full((len(queries), k), -np.inf, np.float32)
    closest = np.full(len(new_cols), -np.inf, np.float32)  # each new poster's best on the map as it was
    index = np.zeros((n, k), np.int64)
    similarity = np.zeros((n, k), np.float32)
    index[:kept_n], similarity[:kept_n] = old_index, old_sim
    n_pairs = int(saved.settings["given"].get("pairs", len(saved.pair_sim)))
    pair_items: list[tuple[float, int, int]] = []
    old_pairs = [(float(s), int(new_of_old[i]), int(new_of_old[j]))
                 for s, i, j in zip(saved.pair_sim, saved.pair_i, saved.pair_j) if new_of_old[i] >= 0 and new_of_old[j] >= 0]
    # A new pair enters the list only above its last pair (when the list is still full).
    pair_floor = min(s for s, _, _ in old_pairs) if n_pairs and len(old_pairs) >= n_pairs else -np.inf
    check = np.zeros(n, bool)
    check[np.random.default_rng(0).choice(kept_n, min(INTEGRITY_SAMPLE, kept_n), replace=False)] = True
    map_of_row = np.full(max(rows_of.values()) + 1, -1, np.int64)
    map_of_row[[rows_of[pid] for pid in ids]] = np.arange(n)
    block = int(np.clip(PRODUCT_FLOATS // max(len(queries), 1), 64, 8192))
    mismatched = 0
    with h5py.File(features_path, "r") as handle:
        data = handle[store.FEATURES]
        for start in range(0, len(map_of_row), block):
            stop = min(start + block, len(map_of_row))
            where = map_of_row[start:stop]
            take = np.flatnonzero(where >= 0)
            if not len(take):
                continue
            raw = data[start:stop][take].astype(np.float32, copy=False)
            members = where[take]
            checked = np.flatnonzero(check[members])
            if len(checked):
                want = saved.points[plan.kept[members[checked]]]
                got = (raw[checked] - saved.pca_mean) @ saved.pca_components.T
                mismatched += int((np.linalg.norm(got - want, axis=1) > 1e-3 * (np.linalg.norm(want, axis=1) + 1)).sum())
            unit = normalize_rows(raw)
            sims = unit @ q_unit.T  # (rows, queries)
            sims[members[:, None] == queries[None, :]] = -np.inf  # never one's own neighbour
            on_map = members < kept_n
            if on_map.any() and len(new_cols):
                np.maximum(closest, sims[on_map][:, new_cols].max(axis=0), out=closest)
            # The searched posters: their best over every poster.
            best_idx, best_sim = _merge_top(best_idx, best_sim, sims.T, members)
            # The others: a new poster closer than their last.
            stay = np.flatnonzero((members < kept_n) & ~is_query[members])
            if len(stay) and len(new_cols):
                m = members[stay]
                index[m], similarity[m] = _merge_top(index[m], similarity[m], sims[stay][:, new_cols],
                                                     queries[new_cols])
            # Pairs with a new poster: once each (i < j), never two versions of one movie; only those that
            # would enter the list so far.
            if n_pairs and len(new_cols):
                part = sims[:, new_cols]
                cols = queries[new_cols]
                floor = pair_floor if len(pair_items) < n_pairs else max(pair_floor, pair_items[-1][0])
                r, c = np.nonzero(part >= floor)
                ok = (members[r] < cols[c]) & (group[members[r]] != group[cols[c]])
                r, c = r[ok], c[ok]
                found = part[r, c]
                if len(found) > n_pairs:  # a list not yet full takes every pair: keep this block's best
                    top = np.argpartition(-found, n_pairs - 1)[:n_pairs]
                    r, c, found = r[top], c[top], found[top]
                pair_items += [(float(v), int(a), int(b)) for v, a, b in zip(found, members[r], cols[c])]
                pair_items = sorted(pair_items, key=lambda p: (-p[0], p[1], p[2]))[:n_pairs]
    if mismatched:
        raise NeedsFullRun(f"the features of {mismatched} of {int(check.sum())} sampled posters on the map are not the ones "
                           f"it was made from ({features_path} was made again?): make the map in full")
    index[queries], similarity[queries] = best_idx, best_sim
    pairs = sorted(old_pairs + pair_items, key=lambda p: (-p[0], p[1], p[2]))[:n_pairs]
    return stage.Similar(index, similarity, pairs, exact=True), closest


def clusters_after_update(meta: dict, columns: dict, plan: Plan, coords: np.ndarray, points: np.ndarray,
                          ids: list[str], rows: list[dict]) -> tuple[clustering.Clustering, list[dict], list[dict]]:
    """The map's clusters with the new posters in them (see the module docstring), described again."""
    from scipy.spatial import cKDTree

    kept_n = len(plan.kept)
    old_labels = np.asarray(columns["cluster"], np.int64)[plan.kept]
    region_of = {c["id"]: c["region"] for c in meta.get("clusters", [])}
    new_labels = np.full(len(ids) - kept_n, -1, np.int64)
    if len(new_labels):
        voters = min(VOTERS, kept_n)
        _, near = cKDTree(coords[:kept_n]).query(coords[kept_n:], k=voters)
        votes = old_labels[np.asarray(near).reshape(len(new_labels), voters)]
        for i, row in enumerate(votes):
            labels, counts = np.unique(row[row >= 0], return_counts=True)
            if len(counts) and counts.max() * 2 >= voters:
                new_labels[i] = labels[np.argmax(counts)]
    labels = np.concatenate([old_labels, new_labels])
    count = len(meta.get("clusters", []))
    empty = sorted(set(range(count)) - set(labels[labels >= 0].tolist()))
    if empty:
        raise NeedsFullRun(f"cluster {empty[0]} lost all its posters: make the map in full (without --update)")
    regions = np.array([region_of.get(int(c), -1) if c >= 0 else -1 for c in labels], np.int64)
    found = clustering.Clustering(labels.astype(np.int32), np.array([region_of[c] for c in range(count)], np.int32),
                                  regions.astype(np.int32), meta.get("clustering", {}))
    cluster_list, region_list = stage.describe_clusters(found, coords, points, ids, [row["year"] for row in rows])
    return found, cluster_list, region_list
