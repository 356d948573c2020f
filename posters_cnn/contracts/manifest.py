"""``posters.csv``: the contract between stage 1 and the later stages.

One row per poster found. Paths are relative to the folder that holds the
manifest. Later stages use only rows whose ``status`` is ``ok``.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..cli import UsageError
from ..fsutil import UnsafePath, contained, write_text_atomic

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

    @property
    def name(self) -> str:
        return self.poster_id.rsplit("/", 1)[-1]


COLUMNS = [f.name for f in fields(PosterRecord)]
REQUIRED_BY_LATER_STAGES = ("poster_id", "title", "year", "version", "image_path", "thumb_path", "status")


def write_manifest(path: str | os.PathLike, records) -> None:
    """Write ``records`` to ``path`` atomically."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        row = asdict(record)
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    write_text_atomic(path, out.getvalue())


def _int_or_none(text: str) -> int | None:
    try:
        return int(float(text))
    except (TypeError, ValueError, OverflowError):  # "", "x", "nan", "inf"
        return None


def _rows(path: Path, required: tuple[str, ...], what_next: str):
    """The rows of the manifest at ``path`` as dicts; UsageError in one line when it cannot be read.

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
            return list(reader)
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not a CSV file in UTF-8 (is it a posters.csv written by get_posters.py?); "
                         f"{what_next}") from None
    except csv.Error as exc:
        raise UsageError(f"cannot read manifest {path} ({exc}); {what_next}") from None
    except OSError as exc:
        raise UsageError(f"cannot read manifest {path}: {exc.strerror or exc}") from None


def read_records(path: str | os.PathLike) -> dict[str, PosterRecord]:
    """Rows of an earlier run, by poster_id, for resuming. A missing file gives {}.

    A file that exists but cannot be read is a UsageError: the run would
    otherwise write a new manifest without the earlier rows.
    """
    path = Path(path)
    if not path.exists():
        return {}
    records: dict[str, PosterRecord] = {}
    for row in _rows(path, ("poster_id",), "It is kept as it is: move it away to start a new one"):
        if not row.get("poster_id"):
            continue
        values = {name: row.get(name) or "" for name in COLUMNS}
        for name in ("year", "width", "height"):
            values[name] = _int_or_none(values[name])
        values["version"] = _int_or_none(values["version"]) or 1
        records.setdefault(values["poster_id"], PosterRecord(**values))
    return records


def load_ok_records(path: str | os.PathLike) -> list[dict]:
    """The manifest's ``ok`` rows as dicts, with ``image_abspath`` and ``thumb_abspath`` added.

    ``year`` is an int or None and ``version`` an int. Raises UsageError with
    one line when the file is missing, unreadable or lacks columns. Needs no
    pandas, so stage 3 starts quicker.
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"manifest not found: {path}")
    root = path.parent.resolve()
    rows, seen = [], set()
    for row in _rows(path, REQUIRED_BY_LATER_STAGES, "Pass the posters.csv that get_posters.py wrote."):
        if row.get("status") != "ok":
            continue
        pid = row["poster_id"]
        try:  # every path the row names stays under the manifest's folder: see fsutil.contained
            contained(root, pid)
            row["image_abspath"] = str(contained(root, row["image_path"]))
            row["thumb_abspath"] = str(contained(root, row["thumb_path"]))
        except UnsafePath as exc:
            log.warning("manifest %s: poster %r left out: %s", path, pid, exc)
            continue
        if pid in seen:
            log.warning("manifest %s: poster %r is listed twice; the first row is used", path, pid)
            continue
        seen.add(pid)
        row["year"] = _int_or_none(row["year"])
        row["version"] = _int_or_none(row["version"]) or 1
        rows.append(row)
    return rows


def load_ok(path: str | os.PathLike):
    """:func:`load_ok_records` as a pandas DataFrame (``year`` as nullable Int64)."""
    import pandas as pd

    frame = pd.DataFrame(load_ok_records(path))
    if frame.empty:
        frame = pd.DataFrame(columns=[*COLUMNS, "image_abspath", "thumb_abspath"])
    frame["year"] = frame["year"].astype("Int64")
    return frame
