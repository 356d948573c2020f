"""``posters.csv``: the contract between stage 1 and the later stages.

One row per poster found. Paths are relative to the folder that holds the
manifest. Later stages use only rows whose ``status`` is ``ok``.

While stage 1 runs, the rows it finishes go to ``posters.csv.journal`` at
each checkpoint (:class:`Journal`), so that a checkpoint costs what it adds,
not the whole manifest; the run that ends writes ``posters.csv`` whole and
removes the journal. Every reader here applies a journal that a stopped run
left over the CSV: a poster's later row replaces its earlier one.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import sys
from dataclasses import dataclass, fields
from pathlib import Path

from ..cli import UsageError
from ..fsutil import UnsafePath, check_relative, write_text_atomic

log = logging.getLogger(__name__)

MANIFEST_NAME = "posters.csv"


@dataclass
class PosterRecord:
    poster_id: str          # "YEAR/NAME", unique
    title: str
    year: int | None
    version: int            # from NAME_verN, 1 when absent
    page_url: str = ""
    image_url: str = ""
    image_path: str = ""    # relative to the manifest's folder
    thumb_path: str = ""    # relative to the manifest's folder
    width: int | None = None
    height: int | None = None
    status: str = "failed"  # "ok" or "failed"
    error: str = ""
    error_kind: str = ""    # machine-readable reason; "transient" ones are retried next run
    xlg_url: str = ""
    xlg_path: str = ""
    folder: str = ""        # --from-dir: the image's folder under the one indexed ("" at its top)

    @property
    def name(self) -> str:
        return self.poster_id.rsplit("/", 1)[-1]


COLUMNS = [f.name for f in fields(PosterRecord)]
# Columns added since the first manifests, last: a row (or a journal's line) without them reads as "".
ADDED_COLUMNS = ("folder",)
REQUIRED_BY_LATER_STAGES = ("poster_id", "title", "year", "version", "image_path", "thumb_path", "status")


def _values(record: PosterRecord) -> list:
    return [getattr(record, name) for name in COLUMNS]


def write_manifest(path: str | os.PathLike, records) -> None:
    """Write ``records`` to ``path`` atomically."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(["" if v is None else v for v in _values(record)] for record in records)
    write_text_atomic(path, out.getvalue())


JOURNAL_SUFFIX = ".journal"


def journal_path(path: str | os.PathLike) -> Path:
    """The journal of the manifest at ``path``: ``posters.csv.journal`` beside it."""
    path = Path(path)
    return path.with_name(path.name + JOURNAL_SUFFIX)


class Journal:
    """The rows a run finished since ``posters.csv`` was last written, appended at each checkpoint.

    One JSON list per line (the values in :data:`COLUMNS` order), flushed and
    synced to disk before :meth:`append` returns. A line a kill cut short is
    ignored when read, and the next run starts on a line of its own. At
    1,000,000 rows rewriting the manifest took 20 s a checkpoint; this takes
    what the rows added since the last one take.
    """

    def __init__(self, manifest: str | os.PathLike):
        self.manifest = Path(manifest)
        self.path = journal_path(manifest)
        self.handle = None

    def append(self, records) -> None:
        lines = "".join(json.dumps(_values(record), ensure_ascii=False) + "\n" for record in records)
        if not lines:
            return
        if self.handle is None:
            self.handle = open(self.path, "a+b")
            if self.handle.tell() > 0:  # after a run that was killed mid-line: start a line of our own
                self.handle.seek(-1, os.SEEK_END)
                if self.handle.read(1) != b"\n":
                    self.handle.write(b"\n")
        self.handle.write(lines.encode("utf-8"))
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None

    def remove(self) -> None:
        """Once ``posters.csv`` holds every row: the journal has nothing more to say."""
        self.close()
        self.path.unlink(missing_ok=True)

    def finish(self, unsaved, rows) -> None:
        """End a run: append ``unsaved`` (the rows no checkpoint holds yet), write ``rows`` as the whole
        ``posters.csv``, then remove the journal. In that order: a run killed between the last two steps
        leaves a journal that agrees with ``posters.csv``, never one with a poster's older row."""
        self.append(unsaved)
        write_manifest(self.manifest, rows)
        self.remove()


def _journal_rows(path: Path) -> list[dict]:
    """The rows of the journal beside the manifest at ``path`` (none when there is none), as the CSV
    reader gives rows: text values, "" for none. Lines that are not a row are left out, and said so."""
    try:
        with open(journal_path(path), "rb") as fh:
            lines = fh.read().split(b"\n")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise UsageError(f"cannot read {journal_path(path)}: {exc.strerror or exc}") from None
    rows, bad = [], 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            values = json.loads(line)
            if not isinstance(values, list) or \
                    not len(COLUMNS) - len(ADDED_COLUMNS) <= len(values) <= len(COLUMNS) or \
                    not all(v is None or isinstance(v, (str, int)) for v in values):
                raise ValueError
        except ValueError:  # not a journal's line, unless it is the last, which a kill can cut short
            bad += number < len(lines)
            continue
        values += [""] * (len(COLUMNS) - len(values))  # a line from before the columns added last
        rows.append({name: "" if v is None else str(v) for name, v in zip(COLUMNS, values)})
    if bad:
        log.warning("%s: %d line(s) are not rows of the manifest and were left out", journal_path(path), bad)
    return rows


def _int_or_none(text: str) -> int | None:
    try:
        return int(float(text))
    except (TypeError, ValueError, OverflowError):  # "", "x", "nan", "inf"
        return None


def _rows(path: Path, required: tuple[str, ...], what_next: str, each=None):
    """The rows of the manifest at ``path`` as dicts (or, with ``each``, each row passed to it as it is
    read, and None returned); UsageError in one line when it cannot be read.

    Read as a spreadsheet may have saved it: a UTF-8 byte-order mark and CRLF
    line ends are fine. A file that is not UTF-8 or lacks ``required`` columns
    is refused whole, never read as empty.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise UsageError(f"cannot read manifest {path}: {exc.strerror or exc}") from None
    if head == b"\x89HDF\r\n\x1a\n":
        raise UsageError(f"{path} is an HDF5 file (a features.h5?), not a posters.csv: pass the posters.csv "
                         f"that get_posters.py wrote (-i data/posters.csv)")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise UsageError(f"manifest {path} lacks column(s) {', '.join(missing)}; is it a posters.csv "
                                 f"written by get_posters.py? {what_next}")
            if each is None:
                return list(reader)
            for row in reader:
                each(row)
            return None
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not a CSV file in UTF-8 (is it a posters.csv written by get_posters.py?); "
                         f"{what_next}") from None
    except csv.Error as exc:
        raise UsageError(f"cannot read manifest {path} ({exc}); {what_next}") from None
    except OSError as exc:
        raise UsageError(f"cannot read manifest {path}: {exc.strerror or exc}") from None


def _rows_with_journal(path: Path, required: tuple[str, ...], what_next: str, each=None):
    """The manifest's rows with its journal applied: a journal's row replaces its poster's row in place,
    or comes after them when the poster is new. A journal alone (the first run of a folder, stopped before
    it wrote posters.csv) counts. None when there is neither file. With ``each``, each row is passed to it
    in turn instead, never all held at once, and True is returned."""
    if not path.exists() and not journal_path(path).is_file():
        return None
    newer = {row["poster_id"]: row for row in _journal_rows(path) if row["poster_id"]}
    rows = []
    take = rows.append if each is None else each
    if path.exists():  # a folder or an unreadable file is refused by _rows, never read as empty
        _rows(path, required, what_next, each=lambda row: take(newer.pop(row.get("poster_id"), None) or row))
    for row in newer.values():
        take(row)
    return rows if each is None else True


def read_records(path: str | os.PathLike) -> dict[str, PosterRecord]:
    """Rows of an earlier run, by poster_id, for resuming, with its journal's (see :class:`Journal`).
    No file gives {}.

    A file that exists but cannot be read is a UsageError: the run would
    otherwise write a new manifest without the earlier rows.
    """
    rows = _rows_with_journal(Path(path), ("poster_id",), "It is kept as it is: move it away to start a new one")
    records: dict[str, PosterRecord] = {}
    for row in rows or ():
        if not row.get("poster_id"):
            continue
        values = {name: row.get(name) or "" for name in COLUMNS}
        for name in ("year", "width", "height"):
            values[name] = _int_or_none(values[name])
        values["version"] = _int_or_none(values["version"]) or 1
        records.setdefault(values["poster_id"], PosterRecord(**values))
    return records


class OkRow:
    """One ``ok`` row of the manifest as the later stages read it, by column name as a dict is read:
    ``row["title"]``, ``row.get("folder")``. ``year`` is an int or None, ``version`` an int, the other
    columns text as in the file; ``image_abspath`` and ``thumb_abspath`` are its paths joined to the
    manifest's folder, made when asked for.

    Slots, not a dict: stage 3 holds every row through all its steps, and at 1,000,000 rows dicts with
    the two paths held 1.6 KB a row (1,551 MiB), these about 1 KB.
    """

    __slots__ = (*COLUMNS, "_root")
    PATHS = ("image_abspath", "thumb_abspath")

    def __init__(self, values: dict, root: str):
        for name in COLUMNS:
            value = values.get(name) or ""
            setattr(self, name, sys.intern(value) if name in _FEW_VALUES else value)
        self.year = _int_or_none(values.get("year"))
        self.version = _int_or_none(values.get("version")) or 1
        self._root = root

    def __getitem__(self, key: str):
        if key == "image_abspath":
            return os.path.join(self._root, self.image_path)
        if key == "thumb_abspath":
            return os.path.join(self._root, self.thumb_path)
        if key in _COLUMN_SET:
            return getattr(self, key)
        raise KeyError(key)

    def get(self, key: str, default=None):
        try:
            return self[key]
        except KeyError:
            return default

    def as_dict(self) -> dict:
        return {name: self[name] for name in (*COLUMNS, *self.PATHS)}

    def __repr__(self) -> str:
        return f"OkRow({self.poster_id!r})"


_COLUMN_SET = frozenset(COLUMNS)
_FEW_VALUES = frozenset(("width", "height", "status", "error", "error_kind", "folder"))  # shared, not one a row


def load_ok_records(path: str | os.PathLike) -> list[OkRow]:
    """The manifest's ``ok`` rows (:class:`OkRow`), each poster once, in the file's order.

    Raises UsageError with one line when the file is missing, unreadable or
    lacks columns. Needs no pandas, so stage 3 starts quicker.
    """
    path = Path(path)
    root = str(path.parent.resolve())
    rows, seen = [], set()

    def take(row: dict) -> None:  # each row as it is read: the file's dicts are never all held at once
        if row.get("status") != "ok":
            return
        pid = row["poster_id"]
        try:  # every path the row names stays under the manifest's folder: see fsutil.contained
            check_relative(pid)
            check_relative(row["image_path"])
            check_relative(row["thumb_path"])
        except UnsafePath as exc:
            log.warning("manifest %s: poster %r left out: %s", path, pid, exc)
            return
        if pid in seen:
            log.warning("manifest %s: poster %r is listed twice; the first row is used", path, pid)
            return
        seen.add(pid)
        rows.append(OkRow(row, root))

    if _rows_with_journal(path, REQUIRED_BY_LATER_STAGES, "Pass the posters.csv that get_posters.py wrote.",
                          each=take) is None:
        raise UsageError(f"manifest not found: {path}")
    return rows


def load_ok(path: str | os.PathLike):
    """:func:`load_ok_records` as a pandas DataFrame (``year`` as nullable Int64)."""
    import pandas as pd

    frame = pd.DataFrame([row.as_dict() for row in load_ok_records(path)])
    if frame.empty:
        frame = pd.DataFrame(columns=[*COLUMNS, "image_abspath", "thumb_abspath"])
    frame["year"] = frame["year"].astype("Int64")
    return frame
