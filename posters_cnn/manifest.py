"""``posters.csv``: the contract between stage 1 and the later stages.

One row per poster found. Paths are relative to the folder that holds the
manifest. Later stages use only rows whose ``status`` is ``ok``.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from .cli import UsageError
from .fsutil import write_text_atomic

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
    except (TypeError, ValueError):
        return None


def read_records(path: str | os.PathLike) -> dict[str, PosterRecord]:
    """Rows of an earlier run, by poster_id, for resuming. A missing file gives {}."""
    path = Path(path)
    if not path.exists():
        return {}
    records: dict[str, PosterRecord] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if not row.get("poster_id"):
                continue
            values = {name: row.get(name) or "" for name in COLUMNS}
            for name in ("year", "width", "height"):
                values[name] = _int_or_none(values[name])
            values["version"] = _int_or_none(values["version"]) or 1
            records[values["poster_id"]] = PosterRecord(**values)
    return records


def load_ok(path: str | os.PathLike):
    """The manifest as a pandas DataFrame of ``ok`` rows with absolute paths added.

    Raises UsageError with one line when the file is missing or lacks columns.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"manifest not found: {path}")
    try:
        frame = pd.read_csv(path, dtype={"poster_id": str, "title": str, "image_path": str,
                                         "thumb_path": str, "status": str}, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read manifest {path}: {exc}") from None
    missing = [c for c in REQUIRED_BY_LATER_STAGES if c not in frame.columns]
    if missing:
        raise UsageError(f"manifest {path} lacks column(s) {', '.join(missing)}; "
                         f"is it a posters.csv written by get_posters.py?")
    frame = frame[frame["status"] == "ok"].copy()
    frame["year"] = pd.to_numeric(frame["year"], errors="coerce").astype("Int64")
    frame["version"] = pd.to_numeric(frame["version"], errors="coerce").fillna(1).astype(int)
    root = path.parent.resolve()
    frame["image_abspath"] = [str(root / p) for p in frame["image_path"]]
    frame["thumb_abspath"] = [str(root / p) for p in frame["thumb_path"]]
    return frame.reset_index(drop=True)
