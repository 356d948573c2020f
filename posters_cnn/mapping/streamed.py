"""Stage 3's features, read once in blocks and never all held as float32.

Stage 3 needs the features for two things: the PCA, and the cosine between posters (similar posters,
closest pairs). Both are served by one pass over the features file, a block of rows at a time:

* the PCA from the rows' sum and the sum of their outer products (a 4096 x 4096 matrix in float64,
  128 MB whatever the number of posters): their covariance, whose leading eigenvectors are the
  components (:func:`.layout.pca_from_moments`). This is the exact PCA, in one pass. With fewer rows
  than dimensions the rows themselves are kept instead (at most 64 MB), and the same PCA comes from
  their SVD, an n x n problem (:func:`.layout.pca_fit`);
* each row scaled to length 1: cosines are dot products of these rows.

Each poster's PCA point, ``(row - mean) @ components.T``, is then made in a second pass over the file
(:func:`project`), from the float32 rows, as ``--update`` projects a new poster and checks the old ones.

The unit rows are float32 while they take at most :data:`FLOAT32_MAX_BYTES` (2 GiB: 131,072 posters at
4096-d), and float16 past that (8 KB a poster: 2.4 GB at 300,000, where the float32 features alone took
4.9 GB and their normalised copy as much again). A float16 unit row holds each value to 1 part in
2,048, so a cosine is off by about 1e-4; the similar-poster search then converts the rows it compares
back to float32 (from their bits: :func:`.similarity._as_float32`), 1.06x the float32 search's time at
30,000 posters (numpy's own cast made it 1.82x): float32 while memory allows, for exact float32 cosines.
Past :data:`MEMORY_MAX_BYTES` of float16 (4 GiB: 524,288 posters; 1,000,000 take 7.6 GiB) the unit rows
go to a file in the map's checkpoints folder instead (:class:`RowsOnDisk`), read a selection at a time
(with ``pread``, not a memory map: see the class).
The similar posters are their only user: stage 3 drops them (and the file) once those are found.
"""

from __future__ import annotations

import os
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..contracts import store

BLOCK = 4096  # rows read at a time: 64 MB of float32 at 4096-d
FLOAT32_MAX_BYTES = 2 << 30  # unit rows past this are float16
MEMORY_MAX_BYTES = 4 << 30  # float16 unit rows past this go to a file (when read() is given a folder)
SPILL_NAME = "unit-rows"  # the file: .unit-rows.RANDOM.part, a temporary that fsutil.remove_stale_temporaries knows


class RowsOnDisk:
    """Float16 unit rows in a file, indexed like an array (an integer, a slice or an array of row numbers,
    then optionally what selects within the rows: ``rows[i, :, None]``): each ``rows[key]`` reads the rows
    it selects with ``pread`` into an array of its own, so the process holds only the rows a step is using
    (the kernel's page cache keeps the rest while memory allows). Not a memory map: on this kernel (6.18) a
    map's scattered reads made the file's pages resident in the process (a sample of one row in 50 out of
    1,000,000 held 1.8 GiB for 156 MiB of rows; one re-ranking batch of 4,096 rows, 0.7 GiB), and so in its
    peak memory. The file is removed by :meth:`remove`, or when this is collected."""

    dtype = np.dtype(np.float16)

    def __init__(self, path: Path, n: int, d: int):
        self.path, self.shape = Path(path), (n, d)
        self._finalizer = weakref.finalize(self, _unlink, self.path)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        rest = ()
        if isinstance(key, tuple):
            key, rest = key[0], key[1:]
        n, d = self.shape
        row_size = d * self.dtype.itemsize
        with open(self.path, "rb", buffering=0) as fh:
            if isinstance(key, slice) and key.indices(n)[2] == 1:  # a run of rows: one read
                start, stop, _ = key.indices(n)
                out = np.empty((max(0, stop - start), d), self.dtype)
                _read_into(fh.fileno(), out, start * row_size)
            else:
                index = np.arange(n)[key] if isinstance(key, slice) else np.asarray(key)
                if index.dtype.kind not in "iu":
                    raise IndexError(f"rows are selected by integers or slices, not {index.dtype}")
                if index.size and (index.min() < -n or index.max() >= n):
                    raise IndexError(f"a row number is out of range for {n} rows")
                wanted, inverse = np.unique(np.where(index < 0, index + n, index), return_inverse=True)
                held = np.empty((len(wanted), d), self.dtype)
                for i, row in enumerate(wanted.tolist()):
                    _read_into(fh.fileno(), held[i], row * row_size)
                flat = index.ravel()
                in_order = len(wanted) == flat.size and bool((wanted == np.where(flat < 0, flat + n, flat)).all())
                out = held.reshape(index.shape + (d,)) if in_order else held[inverse.reshape(index.shape)]
        return out[(slice(None),) * (out.ndim - 1) + rest] if rest else out

    def remove(self) -> None:
        self._finalizer()


def _read_into(fd: int, out: np.ndarray, offset: int) -> None:
    """Fill the contiguous array ``out`` from file ``fd`` at ``offset`` (a short read is read on)."""
    if not out.size:
        return
    view = memoryview(out).cast("B")
    done = 0
    while done < len(view):
        got = os.preadv(fd, [view[done:]], offset + done)
        if got <= 0:
            raise OSError(f"the unit rows' file ended early, at byte {offset + done}")
        done += got


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)


@dataclass
class Features:
    """The features of the posters to map, as :func:`read` keeps them (see the module docstring)."""

    unit: np.ndarray | RowsOnDisk | None  # (n, d): each row scaled to length 1 (a zero row stays zero); None: dropped
    total: np.ndarray     # (d,) float64: the sum of the rows
    gram: np.ndarray      # (d, d) float64: the sum of the rows' outer products
    constant: bool        # every row is the same
    path: object = None   # the features file, and the rows of it these are (for project)
    rows: np.ndarray | None = None
    raw: np.ndarray | None = None  # (n, d) float32, when there are fewer rows than dimensions (layout.pca_fit)

    def __post_init__(self):
        self.n, self.dim = self.unit.shape

    def drop_unit_rows(self) -> None:
        """Free the unit rows (remove their file, if on disk): the similar posters, their one user, are found."""
        if isinstance(self.unit, RowsOnDisk):
            self.unit.remove()
        self.unit = None


def read(path, indices: np.ndarray, *, block: int = BLOCK, spill: Path | None = None,
         progress=None) -> tuple[Features, np.ndarray]:
    """The features of file rows ``indices`` (ascending), and which of them were finite: a row with a NaN or
    an infinity is left out of the Features (the caller leaves its poster out). ``spill``: the folder for
    the unit rows' file when they are too many to hold (see the module docstring); without it they are held.
    ``progress(done, n)`` is called after each block."""
    n = len(indices)
    finite = np.zeros(n, bool)
    unit = total = gram = first = raw = on_disk = None
    kept = 0
    same = True
    try:
        for start, rows in _told(store.iter_rows(path, indices, block), n, progress):
            if unit is None:
                d = rows.shape[1]
                if spill is not None and n * d * 2 > MEMORY_MAX_BYTES:
                    Path(spill).mkdir(parents=True, exist_ok=True)
                    on_disk = Path(spill) / f".{SPILL_NAME}.{os.urandom(4).hex()}.part"
                    unit = open(on_disk, "wb")  # noqa: SIM115 (closed below, after the last block)
                else:
                    unit = np.empty((n, d), np.float32 if n * d * 4 <= FLOAT32_MAX_BYTES else np.float16)
                # Fewer rows than dimensions: their PCA is an n x n problem, from the rows themselves.
                raw = np.empty((n, d), np.float32) if n < d else None
                total = np.zeros(d)
                gram = np.zeros((d, d))
            ok = np.isfinite(rows).all(axis=1)
            finite[start:start + len(rows)] = ok
            rows = rows[ok] if not ok.all() else rows
            if not len(rows):
                continue
            if first is None:
                first = rows[0].copy()
            same = same and bool((rows == first).all())
            total += rows.sum(axis=0, dtype=np.float64)
            if raw is None:
                gram += rows.T @ rows  # float32 products of one block, summed in float64 across blocks
            else:
                raw[kept:kept + len(rows)] = rows
            length = np.linalg.norm(rows, axis=1)
            scaled = rows / np.where(length > 0, length, 1)[:, None]
            if on_disk is None:
                unit[kept:kept + len(rows)] = scaled
            else:
                scaled.astype(np.float16).tofile(unit)
            kept += len(rows)
    except BaseException:  # a stop or a failure while reading: no file is left behind
        if on_disk is not None:
            unit.close()
            on_disk.unlink(missing_ok=True)
        raise
    if on_disk is not None:
        unit.close()
        unit = RowsOnDisk(on_disk, kept, d)
    if unit is None:  # no row at all
        unit = np.zeros((0, 0), np.float32)
        total = np.zeros(0)
        gram = np.zeros((0, 0))
    return Features(unit if on_disk else unit[:kept], total, gram, same, path, np.asarray(indices)[finite],
                    None if raw is None else raw[:kept]), finite


def project(features: Features, mean: np.ndarray, basis: np.ndarray, *, block: int = BLOCK,
            progress=None) -> np.ndarray:
    """Each poster's PCA point, ``(row - mean) @ basis.T``, from its float32 row in the file: a second pass
    (``progress(done, n)`` after each block)."""
    out = np.empty((features.n, basis.shape[0]), np.float32)
    for start, rows in _told(store.iter_rows(features.path, features.rows, block), features.n, progress):
        out[start:start + len(rows)] = (rows - mean) @ basis.T
    return out


def _told(blocks, n: int, progress):
    """``blocks`` (``(start, rows)`` each) as they are, calling ``progress(start + len(rows), n)`` once the
    loop over them is done with each one (a block skipped with ``continue`` too)."""
    for start, rows in blocks:
        yield start, rows
        if progress is not None:
            progress(start + len(rows), n)
