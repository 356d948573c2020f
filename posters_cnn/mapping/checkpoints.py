"""Stage 3's long steps keep their outputs, so that a stopped run starts again after them.

The PCA, the similar posters and the t-SNE embedding are the steps that take
minutes at 100,000 posters and more (above 5,000 posters the candidates of the
similar posters' search are kept too, as they are found, until the similar posters
are saved). Each step's output is saved, as soon as
it is made, to ``assets/maps/STEM/checkpoints/STEP.npz`` (numpy arrays and a
JSON description; no pickles), written atomically, with the **key** of what
made it: a SHA-256 of the step's inputs (the features file's size, time and
row count, the posters mapped, in order) and of every setting that changes
its output. A run loads a step's file only when its key is the one it would
compute, and the arrays have the shapes it expects; anything else (another
setting, a features file extended since, a doctored or truncated file) is
computed again, the unusable file said so in the log. Since every step is
deterministic for its inputs, a resumed run makes the same map as one that
was never stopped. The folder is removed once the map is written.

The search for candidates goes a block of posters at a time for tens of minutes at
1,000,000 posters; its rows are kept as they are made (:class:`RowsSoFar`: ``STEP.rows``, appended to,
and ``STEP.json``, rewritten after each append), so a stopped run goes on from the last rows
saved, at most SAVE_EVERY_S seconds of work before the stop. An append costs the same at 1,000 rows as
at 1,000,000. The t-SNE keeps its neighbours and its state so far the same way (``tsne-neighbours.npz``,
``tsne-so-far.npz``: see :func:`.layout.tsne`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
import zipfile
from pathlib import Path

import numpy as np

from ..fsutil import atomic_path, write_json_atomic

log = logging.getLogger(__name__)

FOLDER = "checkpoints"
SAVE_EVERY_S = 30.0  # how much of a step going row block by row block a stop may lose (RowsSoFar)


def key_of(*parts) -> str:
    """A stable SHA-256 of JSON-able parts (settings) and numpy arrays (data)."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            digest.update(f"{part.dtype}{part.shape}".encode())
            digest.update(np.ascontiguousarray(part).tobytes())
        else:
            digest.update(json.dumps(part, sort_keys=True, default=str).encode())
        digest.update(b"\0")
    return digest.hexdigest()


class Checkpoints:
    """The checkpoints of one map: ``folder`` is ``assets/maps/STEM/checkpoints``."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.loaded: list[str] = []  # the steps this run took from a checkpoint
        self.unwritable: set[str] = set()  # optional steps whose file could not be written

    def load(self, step: str, key: str, shapes: dict[str, tuple], *,
             within: dict[str, int] | None = None) -> tuple[dict[str, np.ndarray], dict] | None:
        """(arrays, info) saved by ``step`` under ``key``, when every array in ``shapes`` is there with
        that shape (None in a shape: any length), and each array named in ``within`` holds integers from 0
        to below its bound (row numbers); else None."""
        path = self.folder / f"{step}.npz"
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as saved:
                if str(saved["key"]) != key:
                    log.info("checkpoint %s: made from other inputs or settings; computing it again", step)
                    return None
                arrays = {name: saved[name] for name in shapes}
                info = json.loads(str(saved["info"]))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
            log.warning("checkpoint %s is unreadable (%s); computing it again", path, exc.__class__.__name__)
            return None
        for name, shape in shapes.items():
            got = arrays[name].shape
            if len(got) != len(shape) or any(want is not None and want != have for want, have in zip(shape, got)):
                log.warning("checkpoint %s: %s has shape %s, not %s; computing it again", path, name, got, shape)
                return None
        if _refused(path, arrays, within or {}):
            return None
        if not isinstance(info, dict):
            return None
        self.loaded.append(step)
        return arrays, info

    def save(self, step: str, key: str, arrays: dict[str, np.ndarray], info: dict, *, optional: bool = False) -> None:
        """Save ``step``'s output atomically (a run killed while saving leaves the previous file or none).
        An ``optional`` one that cannot be written (a full disk) is said in one line, and the run goes on
        without it: a step that saves its state as it goes (the t-SNE's) is not tried again."""
        path = self.folder / f"{step}.npz"
        if step in self.unwritable:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(fh, key=np.array(key), info=np.array(json.dumps(info)), **arrays)
                    fh.flush()
                    os.fsync(fh.fileno())
        except OSError as exc:
            if not optional:
                raise
            self.unwritable.add(step)
            _not_kept(path, exc.strerror or exc.__class__.__name__)

    def rows_so_far(self, step: str, key: str, rows: int, columns: dict[str, tuple[str, int]], *,
                    within: dict[str, int] | None = None) -> "RowsSoFar":
        """The rows ``step`` made so far under ``key`` (none where there are none or they are unusable, said
        as :meth:`load` says it), to go on from and to append to: see :class:`RowsSoFar`."""
        kept = RowsSoFar(self.folder, step, key, rows, columns)
        if kept.read_back(within or {}):
            self.loaded.append(step if kept.complete else f"{step} ({kept.done:,} of {rows:,} rows)")
        return kept

    def discard(self, step: str) -> None:
        """Remove ``step``'s files: a later step's checkpoint holds what it was for (what cannot be removed
        now goes with the folder, once the map is written)."""
        for suffix in (".npz", ".json", ".rows", ".faiss"):  # .faiss: the graph of versions before bc9d819
            with contextlib.suppress(OSError):
                (self.folder / f"{step}{suffix}").unlink(missing_ok=True)

    def remove(self) -> None:
        """Once the map is written. What cannot be removed now, the next run uses (same key) or replaces."""
        shutil.rmtree(self.folder, ignore_errors=True)


class RowsSoFar:
    """The rows a step has made so far, its first :attr:`done` rows of ``rows`` (in :attr:`arrays`, one
    array of ``(done, width)`` per column), and what it told :meth:`begin` (:attr:`info`).

    Kept in ``STEP.rows`` (the rows' columns side by side, row after row, in a numpy record ``dtype``)
    and ``STEP.json`` (the key, the dtype, how many rows are whole, their SHA-256, the info). A block of
    rows goes to :meth:`append`; they are written (appended, synced, then the JSON replaced) once
    SAVE_EVERY_S seconds have passed since the last write, and at :meth:`finish`. Each write starts at
    the end of the rows the JSON counts, so what a stop left past them is written over. Rows that are
    not the ones saved (another key or dtype, a short file, changed bytes, a row number outside the
    map, a value that is not a number) are not used.
    """

    def __init__(self, folder: Path, step: str, key: str, rows: int, columns: dict[str, tuple[str, int]]):
        self.folder, self.step, self.key, self.rows = folder, step, key, rows
        self.dtype = np.dtype([(name, np.dtype(kind), (width,)) for name, (kind, width) in columns.items()])
        self.path, self.about = folder / f"{step}.rows", folder / f"{step}.json"
        self.done = 0
        self.arrays = {name: np.empty((0, width), np.dtype(kind)) for name, (kind, width) in columns.items()}
        self.info: dict = {}
        self._digest = hashlib.sha256()
        self._pending: list[bytes] = []
        self._pending_rows = 0
        self._saved_at = time.monotonic()
        self._unwritable = False

    @property
    def complete(self) -> bool:
        return self.done + self._pending_rows == self.rows

    def read_back(self, within: dict[str, int]) -> bool:
        """Take a stopped run's rows, when they are the ones it saved; else start from none."""
        if not self.about.is_file():
            return self._restart()  # rows without their JSON: a stop before the first write ended
        try:
            told = json.loads(self.about.read_text())
            if not isinstance(told, dict):
                raise ValueError("not an object")
            if told.get("key") != self.key:
                log.info("checkpoint %s: made from other inputs or settings; computing it again", self.step)
                return self._restart()
            done, info = told.get("rows"), told.get("info")
            if told.get("dtype") != str(self.dtype) or not isinstance(info, dict) \
                    or not isinstance(done, int) or not 0 <= done <= self.rows:
                raise ValueError("not rows of this step")
            size = done * self.dtype.itemsize
            with open(self.path, "rb") as fh:
                data = fh.read(size)
            if len(data) < size:
                raise ValueError("the file is shorter than its rows")
            digest = hashlib.sha256(data)
            if digest.hexdigest() != told.get("sha256"):
                raise ValueError("the file changed since it was saved")
        except (OSError, ValueError) as exc:
            log.warning("checkpoint %s is unreadable (%s); computing it again", self.path,
                        str(exc) if isinstance(exc, ValueError) and not isinstance(exc, json.JSONDecodeError)
                        else exc.__class__.__name__)
            return self._restart()
        records = np.frombuffer(data, self.dtype, count=done)
        arrays = {name: np.array(records[name]) for name in self.dtype.names}
        if _refused(self.path, arrays, within):
            return self._restart()
        self.done, self.arrays, self.info, self._digest = done, arrays, info, digest
        return True

    def restart(self, why: str) -> None:
        """Drop the rows read back (``why``: one line for the log): the step starts from its first row."""
        log.warning("checkpoint %s: %s; computing it again", self.path, why)
        self._restart()

    def _restart(self) -> bool:
        self.done, self.info, self._digest = 0, {}, hashlib.sha256()
        self.arrays = {name: values[:0] for name, values in self.arrays.items()}
        self._pending, self._pending_rows = [], 0
        self._remove()
        return False

    def _remove(self) -> None:
        for path in (self.about, self.path):
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)

    def begin(self, info: dict) -> None:
        """Say what the rows depend on beyond the key, saved at once (the search's chosen width)."""
        self.info = dict(info)
        self._save()

    def append(self, arrays: dict[str, np.ndarray]) -> None:
        """The step's next rows, one array per column (written when SAVE_EVERY_S has passed)."""
        count = len(next(iter(arrays.values())))
        block = np.empty(count, self.dtype)
        for name in self.dtype.names:
            block[name] = arrays[name]
        self._pending.append(block.tobytes())
        self._pending_rows += count
        if time.monotonic() - self._saved_at >= SAVE_EVERY_S:
            self._save()

    def finish(self) -> None:
        """Write what is not yet written: the step has made all its rows."""
        self._save()

    def _save(self) -> None:
        self._saved_at = time.monotonic()
        if self._unwritable:
            self.done += self._pending_rows
            self._pending, self._pending_rows = [], 0
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            digest = self._digest.copy()
            # At the end of the rows counted, whatever a write stopped part-way (Ctrl-C) left past them.
            with open(self.path, "r+b" if self.path.is_file() else "wb") as fh:
                fh.truncate(self.done * self.dtype.itemsize)
                fh.seek(0, os.SEEK_END)
                for data in self._pending:
                    fh.write(data)
                    digest.update(data)
                fh.flush()
                os.fsync(fh.fileno())
            write_json_atomic(self.about, {"key": self.key, "dtype": str(self.dtype),
                                           "rows": self.done + self._pending_rows, "sha256": digest.hexdigest(),
                                           "info": self.info})
            self.done += self._pending_rows
            self._pending, self._pending_rows, self._digest = [], 0, digest
        except OSError as exc:  # a full disk, say: the rows are made all the same, only not kept
            self._unwritable = True
            self.done += self._pending_rows
            self._pending, self._pending_rows = [], 0
            self._remove()
            log.warning("checkpoint %s could not be written (%s); going on without it: a stopped run will make "
                        "its rows again", self.path, exc.strerror or exc.__class__.__name__)


def _not_kept(path: Path, why: str) -> None:
    log.warning("checkpoint %s could not be written (%s); going on without it: a stopped run will make it again",
                path, why)


def _refused(path: Path, arrays: dict[str, np.ndarray], within: dict[str, int]) -> bool:
    """Whether a checkpoint's ``arrays`` hold a value that is not a number, or (each named in ``within``)
    anything but row numbers from 0 to below its bound; said in one line."""
    for name, values in arrays.items():
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            log.warning("checkpoint %s: %s holds values that are not numbers; computing it again", path, name)
            return True
    for name, bound in within.items():
        values = arrays[name]
        if values.size and (values.dtype.kind not in "iu" or values.min() < 0 or values.max() >= bound):
            log.warning("checkpoint %s: %s holds rows that are not among the %d posters; computing it again",
                        path, name, bound)
            return True
    return False
