"""Stage 3's long steps keep their outputs, so that a stopped run starts again after them.

The PCA, the similar posters and the t-SNE embedding are the steps that take
minutes at 100,000 posters and more (above 5,000 posters the similar posters'
graph search keeps its candidates too, until the similar posters are saved:
at 1,000,000 posters it takes hours). Each step's output is saved, as soon as
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
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np

from ..fsutil import atomic_path

log = logging.getLogger(__name__)

FOLDER = "checkpoints"


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
            if arrays[name].dtype.kind == "f" and not np.isfinite(arrays[name]).all():
                log.warning("checkpoint %s: %s holds values that are not numbers; computing it again", path, name)
                return None
        for name, bound in (within or {}).items():
            values = arrays[name]
            if values.size and (values.dtype.kind not in "iu" or values.min() < 0 or values.max() >= bound):
                log.warning("checkpoint %s: %s holds rows that are not among the %d posters; computing it again",
                            path, name, bound)
                return None
        if not isinstance(info, dict):
            return None
        self.loaded.append(step)
        return arrays, info

    def save(self, step: str, key: str, arrays: dict[str, np.ndarray], info: dict) -> None:
        """Save ``step``'s output atomically (a run killed while saving leaves the previous file or none)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{step}.npz"
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, key=np.array(key), info=np.array(json.dumps(info)), **arrays)
                fh.flush()
                os.fsync(fh.fileno())

    def discard(self, step: str) -> None:
        """Remove ``step``'s file: a later step's checkpoint holds what it was for."""
        (self.folder / f"{step}.npz").unlink(missing_ok=True)

    def remove(self) -> None:
        """Once the map is written. What cannot be removed now, the next run uses (same key) or replaces."""
        shutil.rmtree(self.folder, ignore_errors=True)
