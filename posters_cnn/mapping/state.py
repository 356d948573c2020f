"""``state.npz``: what a map keeps so that new posters can join it later without moving it.

Every run of stage 3 writes it into its run's folder, beside the tiles that
``data.json`` names (``assets/maps/STEM/run-TIME-ID/state.npz``, and
``meta.state`` says where), so that the map and its state always switch
together. It is a plain ``numpy.savez`` file (no pickles; read it with
``numpy.load(path, allow_pickle=False)``):

* ``ids`` (n,) bytes: the map's posters, UTF-8, in ``data.json``'s order;
* ``pca_mean`` (d,), ``pca_components`` (c, d) float32: the PCA basis; a
  feature row ``f`` projects to ``(f - pca_mean) @ pca_components.T``;
* ``points`` (n, c) float32: each poster's PCA projection (t-SNE's input);
* ``raw`` (n, 2) float64: the t-SNE positions as openTSNE made them, and
  ``centre`` (2,), ``scale`` (): ``data.json``'s ``x, y`` are
  ``(raw - centre) * scale``, so a placed poster lands in the same frame;
* ``neighbors`` (n, k) int32, ``similarity`` (n, k) float32: each poster's
  most similar posters (indices into ``ids``) at full precision;
* ``pair_sim``, ``pair_i``, ``pair_j``: the closest pairs, most similar first;
* ``settings``: a JSON string: the settings the map was made with and the
  features' provenance (model, layer, weights, preprocessing, precision).

:func:`load` checks every shape and value it relies on and says in one line
what is wrong with a damaged or doctored file.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..cli import UsageError
from ..fsutil import atomic_path

FILE = "state.npz"
FORMAT = 1
# The features file's attributes that say how its rows were made: a map's features and an update's must agree.
PROVENANCE = ("model", "layer", "weights", "weights_sha256", "input_size", "resize", "crop", "preprocessing",
              "precision")


@dataclass
class MapState:
    ids: np.ndarray
    pca_mean: np.ndarray
    pca_components: np.ndarray
    points: np.ndarray
    raw: np.ndarray
    centre: np.ndarray
    scale: float
    neighbors: np.ndarray
    similarity: np.ndarray
    pair_sim: np.ndarray
    pair_i: np.ndarray
    pair_j: np.ndarray
    settings: dict = field(default_factory=dict)

    def save(self, path: str | os.PathLike) -> None:
        """Write atomically: a run killed while saving leaves no half file under this name."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, format=np.array(FORMAT), ids=np.char.encode(np.asarray(self.ids, dtype=str), "utf-8"),
                         pca_mean=self.pca_mean.astype(np.float32), pca_components=self.pca_components.astype(np.float32),
                         points=self.points.astype(np.float32), raw=self.raw.astype(np.float64),
                         centre=np.asarray(self.centre, np.float64), scale=np.array(float(self.scale)),
                         neighbors=self.neighbors.astype(np.int32), similarity=self.similarity.astype(np.float32),
                         pair_sim=np.asarray(self.pair_sim, np.float64), pair_i=np.asarray(self.pair_i, np.int64),
                         pair_j=np.asarray(self.pair_j, np.int64), settings=np.array(json.dumps(self.settings)))
                fh.flush()
                os.fsync(fh.fileno())


def provenance(attrs: dict) -> dict:
    """The features file's attributes that say how its rows were made, as strings (None when absent)."""
    from ..contracts.store import _precision_of

    out = {key: None if attrs.get(key) is None else str(attrs[key]) for key in PROVENANCE}
    out["precision"] = _precision_of(attrs)
    return out


def load(path: str | os.PathLike) -> MapState:
    """The state at ``path``, checked; UsageError in one line if it is missing, damaged or doctored."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path} is missing")

    def bad(why: str):
        return UsageError(f"{path} is damaged ({why})")

    try:
        with np.load(path, allow_pickle=False) as saved:
            arrays = {name: saved[name] for name in saved.files}
        settings = json.loads(str(arrays.pop("settings")))
        version = int(arrays.pop("format"))
    except KeyError as exc:
        raise bad(f"no {exc}") from None
    except (OSError, ValueError, TypeError, zipfile.BadZipFile, EOFError) as exc:
        raise bad(exc.__class__.__name__) from None
    if version != FORMAT:
        raise UsageError(f"{path} is in state format {version}, not {FORMAT}")
    if not isinstance(settings, dict):
        raise bad("its settings are not a JSON object")
    names = ("ids", "pca_mean", "pca_components", "points", "raw", "centre", "scale", "neighbors", "similarity",
             "pair_sim", "pair_i", "pair_j")
    missing = [name for name in names if name not in arrays]
    if missing:
        raise bad(f"no {', '.join(missing)}")
    a = arrays
    n = a["ids"].shape[0] if a["ids"].ndim == 1 else -1
    c, d = a["pca_components"].shape if a["pca_components"].ndim == 2 else (-1, -1)
    shapes = {"ids": (n,), "pca_mean": (d,), "pca_components": (c, d), "points": (n, c), "raw": (n, 2),
              "centre": (2,), "scale": (), "neighbors": (n, None), "similarity": (n, None)}
    for name, shape in shapes.items():
        got = a[name].shape
        if n < 1 or c < 1 or len(got) != len(shape) or any(w is not None and w != h for w, h in zip(shape, got)):
            raise bad(f"{name} has shape {got}")
    if a["ids"].dtype.kind != "S" or a["neighbors"].dtype.kind not in "iu" or a["neighbors"].shape != \
            a["similarity"].shape:
        raise bad("ids or neighbours of the wrong kind")
    try:
        a["ids"] = np.char.decode(a["ids"], "utf-8")
    except UnicodeDecodeError:
        raise bad("ids that are not UTF-8") from None
    for name in ("pca_mean", "pca_components", "points", "raw", "centre", "scale", "similarity", "pair_sim"):
        if a[name].dtype.kind != "f" or not np.isfinite(a[name]).all():
            raise bad(f"{name} holds values that are not numbers")
    if not float(a["scale"]) > 0 or len(set(a["ids"].tolist())) != n:
        raise bad("a scale that is not positive, or a poster listed twice")
    if a["neighbors"].size and (a["neighbors"].min() < 0 or a["neighbors"].max() >= n):
        raise bad("a neighbour that is not on the map")
    pairs = (a["pair_sim"], a["pair_i"], a["pair_j"])
    if any(p.ndim != 1 or p.shape != pairs[0].shape for p in pairs) or a["pair_i"].dtype.kind not in "iu" or \
            a["pair_j"].dtype.kind not in "iu" or (pairs[0].size and (min(p.min() for p in pairs[1:]) < 0 or
                                                                    max(p.max() for p in pairs[1:]) >= n)):
        raise bad("pairs that do not match the map")
    return MapState(a["ids"], a["pca_mean"], a["pca_components"], a["points"], a["raw"], a["centre"],
                    float(a["scale"]), a["neighbors"].astype(np.int64), a["similarity"], a["pair_sim"],
                    a["pair_i"].astype(np.int64), a["pair_j"].astype(np.int64), settings)
