"""``features.h5``: the file stage 2 appends to and stage 3 reads.

Layout (documented in the README):

* ``features``  float32, N x 4096, chunked, resizable: the ``fc2`` activations;
* ``poster_id`` utf-8 strings, N: the poster each row belongs to;
* ``skipped_id`` / ``skipped_error`` utf-8 strings: posters whose image could
  not be read, never given a feature row;
* attributes: model, layer, weights, weights_sha256, input_size, resize,
  preprocessing, crop, created, updated, versions and ``count``.

``count`` is written after the rows of each batch and flushed, so a run
killed at any moment leaves a file whose first ``count`` rows are complete;
the next run reads those and writes over anything past them. Reading needs
only h5py and numpy: stage 3 does not import TensorFlow.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import h5py
import numpy as np

from ..cli import StageError, UsageError
from ..fsutil import OutputBusy, lock_holder

log = logging.getLogger(__name__)

FEATURES = "features"
POSTER_ID = "poster_id"
SKIPPED_ID = "skipped_id"
SKIPPED_ERROR = "skipped_error"
_STR = h5py.string_dtype("utf-8")
CHUNK_ROWS = 64
RESERVE_SLACK = 1 << 20  # room for HDF5's own metadata (chunk index, string heap) on top of the rows


def _decode(values) -> list[str]:
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def _plain(value):
    """An attribute as plain Python (str, int, float, lists of them), as JSON can hold it."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (np.ndarray, np.generic)):
        return _plain(value.tolist())
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _open_readonly(path: str | os.PathLike) -> h5py.File:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"features file not found: {path}")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        holder = lock_holder(path)
        if holder:
            raise OutputBusy(f"{path} is being written by {holder} (get_features_from_cnn.py): wait for that "
                             f"run to end, then run this again") from None
        raise UsageError(f"{path} is not a readable HDF5 file ({exc.__class__.__name__}); "
                         f"was it written by get_features_from_cnn.py?") from None


def _count_attr(handle: h5py.File, name: str, default: int) -> int:
    """A row count kept in an attribute, or UsageError: a doctored one must not pass for a number."""
    value = handle.attrs.get(name, default)
    try:
        number = np.asarray(value).item()
        if isinstance(number, bytes):
            number = number.decode()
        count = int(number)
        if count != float(number) or count < 0:
            raise ValueError(number)
    except (TypeError, ValueError, OverflowError):
        raise UsageError(f"{handle.filename}: its attribute {name!r} is {value!r}, not a count of rows; "
                         f"was it written by get_features_from_cnn.py?") from None
    return count


def _valid_rows(handle: h5py.File) -> int:
    if FEATURES not in handle or POSTER_ID not in handle or not isinstance(handle[FEATURES], h5py.Dataset) \
            or not isinstance(handle[POSTER_ID], h5py.Dataset) or handle[FEATURES].ndim != 2:
        return -1
    count = _count_attr(handle, "count", handle[FEATURES].shape[0])
    return min(count, handle[FEATURES].shape[0], handle[POSTER_ID].shape[0])


def read_features(path: str | os.PathLike, *, load: bool = True):
    """(poster_ids, features or None, attrs) of a stage-2 file; UsageError if it is not one."""
    with _open_readonly(path) as handle:
        rows = _valid_rows(handle)
        if rows < 0:
            raise UsageError(f"{path} is not a features file from get_features_from_cnn.py "
                             f"(expected datasets '{FEATURES}' and '{POSTER_ID}')")
        if handle[FEATURES].dtype.kind not in "fiu":
            raise UsageError(f"{path}: its '{FEATURES}' are {handle[FEATURES].dtype}, not numbers")
        ids = _decode(handle[POSTER_ID][:rows])
        features = handle[FEATURES][:rows].astype(np.float32, copy=False) if load else None
        attrs = {k: _plain(v) for k, v in handle.attrs.items()}
    return ids, features, attrs


def iter_rows(path: str | os.PathLike, indices, block: int):
    """The features of rows ``indices`` (ascending) of a stage-2 file, ``block`` at a time, as float32:
    ``(position in indices of the block's first row, rows)``. A run of rows close together is read as one
    slice; scattered ones (a small sample of a big file) one by one in a single read."""
    indices = np.asarray(indices, np.int64)
    with _open_readonly(path) as handle:
        data = handle[FEATURES]
        for start in range(0, len(indices), block):
            part = indices[start:start + block]
            lo, hi = int(part[0]), int(part[-1]) + 1
            if hi - lo <= 2 * len(part):  # dense: one slice, then the rows wanted
                rows = data[lo:hi][part - lo]
            else:
                rows = data[part]
            yield start, rows.astype(np.float32, copy=False)


def _precision_of(attrs) -> str | None:
    """The precision that made a file's features; files before ``precision`` had ``mixed_precision``."""
    value = attrs.get("precision")
    if value is not None:
        return value.decode() if isinstance(value, bytes) else str(value)
    if "mixed_precision" in attrs:
        return "float16" if bool(attrs["mixed_precision"]) else "float32"
    return None


def existing_precision(path: str | os.PathLike) -> str | None:
    """The precision of the rows already in ``path``, or None (no file, no rows, not readable)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with h5py.File(path, "r") as handle:
            return _precision_of(handle.attrs) if _valid_rows(handle) > 0 else None
    except OSError:
        return None


def _ids_in(handle: h5py.File) -> set[str]:
    rows = max(_valid_rows(handle), 0)
    skipped = min(_count_attr(handle, "skipped_count", 0), handle[SKIPPED_ID].shape[0])
    ids = set(_decode(handle[POSTER_ID][:rows]))
    ids.update(_decode(handle[SKIPPED_ID][:skipped]))
    return ids


def check_and_read_done(path: str | os.PathLike, dim: int, attrs: dict) -> set[str]:
    """The posters already in ``path`` (rows and skips), after the checks a writer would make;
    an empty set when there is no file. Opens the file read-only: it changes nothing."""
    path = Path(path)
    if not path.exists():
        return set()
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise UsageError(f"{path} exists but is not a readable HDF5 file ({exc}); "
                         f"move it away or pass --overwrite") from None
    with handle:
        _check_compatible(handle, path, dim, attrs)
        return _ids_in(handle)


def _check_compatible(handle: h5py.File, path: Path, dim: int, attrs: dict) -> None:
    """UsageError unless the rows in ``handle`` were made like the ones ``attrs`` describe.

    A file with no rows is free to reuse, whatever made it (a run that failed early, say).
    """
    if _valid_rows(handle) < 0 or handle[FEATURES].shape[1] != dim or SKIPPED_ID not in handle:
        raise UsageError(f"{path} is not a features file of this kind; move it away or pass --overwrite")
    if _valid_rows(handle) == 0:
        return
    old, new = _precision_of(handle.attrs), attrs.get("precision")
    if old is not None and new is not None and old != new:
        raise UsageError(f"{path} holds features computed in {old}, not {new}: pass --precision "
                         f"{old} to extend it, or use another -o or --overwrite")
    for key in ("model", "layer", "weights", "weights_sha256", "input_size", "crop", "preprocessing"):
        old, new = handle.attrs.get(key), attrs.get(key)
        old = old.decode() if isinstance(old, bytes) else old
        if old is not None and new is not None and str(old) != str(new):
            raise UsageError(f"{path} holds features made with {key}={old!r}, not {new!r}: "
                             f"mixing them would be meaningless; use another -o or pass --overwrite")


class FeatureWriter:
    """Appends batches of features to an HDF5 file, resumably (see module docstring)."""

    def __init__(self, path: str | os.PathLike, dim: int, attrs: dict, *, overwrite: bool = False):
        self.path = Path(path)
        self.dim = dim
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if overwrite and self.path.exists():
            self.path.unlink()
        if self.path.exists():
            try:
                self.handle = h5py.File(self.path, "r+")
            except OSError as exc:
                raise UsageError(f"{self.path} exists but is not a readable HDF5 file ({exc}); "
                                 f"move it away or pass --overwrite") from None
            self._check_compatible(attrs)
        else:
            self.handle = h5py.File(self.path, "w")
            self.handle.create_dataset(FEATURES, shape=(0, dim), maxshape=(None, dim), dtype="float32",
                                       chunks=(CHUNK_ROWS, dim))
            for name in (POSTER_ID, SKIPPED_ID, SKIPPED_ERROR):
                self.handle.create_dataset(name, shape=(0,), maxshape=(None,), dtype=_STR, chunks=(1024,))
            self.handle.attrs["count"] = 0
            self.handle.attrs["skipped_count"] = 0
        for key, value in attrs.items():
            self.handle.attrs[key] = value
        if "precision" in attrs and "mixed_precision" in self.handle.attrs:
            del self.handle.attrs["mixed_precision"]  # replaced by precision
        self.count = _valid_rows(self.handle)
        self.skipped_count = min(_count_attr(self.handle, "skipped_count", 0),
                                 self.handle[SKIPPED_ID].shape[0], self.handle[SKIPPED_ERROR].shape[0])
        self.handle.flush()

    def _check_compatible(self, attrs: dict) -> None:
        _check_compatible(self.handle, self.path, self.dim, attrs)

    def _reserve(self, nbytes: int) -> None:
        """Allocate room on disk for the next ``nbytes`` of rows (and their metadata) before HDF5 writes.

        HDF5 writing into a full disk leaves a file no one can open (and can
        crash the process): so the space is taken first, with ``posix_fallocate``
        past the end of the file. When there is none, this raises StageError
        and HDF5 has written nothing: the rows before stay readable. HDF5 cuts
        the unused tail off when the file is closed.
        """
        fd = os.open(self.path, os.O_RDWR)
        try:
            os.posix_fallocate(fd, self.handle.id.get_filesize(), nbytes + RESERVE_SLACK)
        except OSError as exc:
            raise StageError(f"cannot write {self.path}: {exc.strerror or exc} (the disk is full?); the "
                             f"{self.count} rows before are kept: make room and run again to go on") from None
        finally:
            os.close(fd)

    def record_run(self, **fields) -> None:
        """Add this run to the JSON list in the ``runs`` attribute: what made which rows."""
        import datetime as dt
        import json

        try:
            runs = json.loads(self.handle.attrs.get("runs", "[]"))
        except (TypeError, ValueError):
            runs = None
        if not isinstance(runs, list):
            log.warning("%s: its attribute 'runs' is not a JSON list; it starts again", self.path)
            runs = []
        runs.append({"started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), **fields})
        text = json.dumps(runs)
        self._reserve(2 * len(text))
        self.handle.attrs["runs"] = text
        self.handle.flush()

    def done_ids(self) -> set[str]:
        ids = set(_decode(self.handle[POSTER_ID][: self.count]))
        ids.update(_decode(self.handle[SKIPPED_ID][: self.skipped_count]))
        return ids

    def append(self, poster_ids: list[str], rows: np.ndarray) -> None:
        if not poster_ids:
            return
        n, end = len(poster_ids), self.count + len(poster_ids)
        self._reserve(n * (self.dim * 4 + 64) + sum(len(pid.encode()) for pid in poster_ids))
        features, ids = self.handle[FEATURES], self.handle[POSTER_ID]
        if features.shape[0] < end:
            features.resize((end, self.dim))
        if ids.shape[0] < end:
            ids.resize((end,))
        features[self.count:end] = rows[:n].astype(np.float32, copy=False)
        ids[self.count:end] = poster_ids
        self.handle.flush()
        self.count = end
        self.handle.attrs["count"] = end  # written last: the rows before it are complete
        self.handle.flush()

    def skip(self, poster_id: str, error: str) -> None:
        end = self.skipped_count + 1
        self._reserve(len(poster_id.encode()) + len(error.encode()) + 64)
        for name, value in ((SKIPPED_ID, poster_id), (SKIPPED_ERROR, error)):
            dataset = self.handle[name]
            if dataset.shape[0] < end:
                dataset.resize((end,))
            dataset[end - 1] = value
        self.handle.flush()
        self.skipped_count = end
        self.handle.attrs["skipped_count"] = end
        self.handle.flush()

    def close(self, **attrs) -> None:
        """Trim rows a killed run left past ``count``, set ``attrs`` and close."""
        for name, rows in ((FEATURES, self.count), (POSTER_ID, self.count),
                           (SKIPPED_ID, self.skipped_count), (SKIPPED_ERROR, self.skipped_count)):
            dataset = self.handle[name]
            if dataset.shape[0] > rows:
                dataset.resize((rows,) + dataset.shape[1:])
        for key, value in attrs.items():
            self.handle.attrs[key] = value
        self.handle.close()
