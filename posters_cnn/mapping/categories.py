"""Categories: metadata beyond the year that the page colours by, filters by and shows.

A category is a column of text values, one per poster or none. Where they come from, in this order:

* ``folder``: the folder a ``--from-dir`` image was in, relative to that folder (posters.csv's
  ``folder`` column);
* ``version``: the poster's version of its movie (impawards' ``_verN``), when posters differ in it;
* every column of a ``--metadata`` CSV but its key. The key is its ``poster_id`` column, else its
  ``file`` column: an image's file name, with or without its extension, or its path under the
  ``--from-dir`` folder.

The year and the decade need no category: the page has the year filter and colours by decade.

The rules, the same for every collection:

* A value is the text of the cell with spaces trimmed; an empty cell, or no row for the poster,
  is no value.
* A column with at most :data:`MAX_VALUES` values keeps them all. One with more keeps its
  ``MAX_VALUES - 1`` commonest values and counts the rest as one value, "other", so that the legend
  stays a list a person can read and the colours stay apart.
* A column is left out, and the log and ``meta.metadata`` say why, when every poster has the same
  value (nothing to tell apart), when most posters with a value have one that no other poster has,
  or when its commonest values hold less than half the posters that have one (an id, a title, a
  free-text description or a measurement: no grouping to show).
* Values are listed commonest first, or in numeric order when every value is a whole number.
"""

from __future__ import annotations

import collections
import csv
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

import numpy as np

from ..cli import UsageError

log = logging.getLogger(__name__)

MAX_VALUES = 20
OTHER = "other"
KEY_COLUMNS = ("poster_id", "file")
MAX_NAME = 40  # a category's name is shown in a menu and a legend's heading


@dataclass
class Category:
    name: str
    source: str                     # "folder", "version" or "metadata"
    values: list[str]               # the legend's entries; code c is values[c]
    codes: np.ndarray               # int16 per poster: an index into values, -1 for none
    others: int = 0                 # how many values "other" stands for (0: no "other")

    def describe(self) -> dict:
        sizes = np.bincount(self.codes[self.codes >= 0], minlength=len(self.values)).tolist()
        return {"name": self.name, "source": self.source, "values": self.values, "sizes": sizes,
                "none": int((self.codes < 0).sum()), "others": self.others}


@dataclass
class Metadata:
    """A ``--metadata`` CSV: its file, its key column and, per key, the row's values of the other columns."""
    path: Path
    key: str
    columns: list[str]
    rows: dict[str, list[str]] = field(default_factory=dict)


def read_metadata(path: str | os.PathLike) -> Metadata:
    """Read a ``--metadata`` CSV (UTF-8, a byte-order mark and CRLF welcome); UsageError in one line if it
    cannot be used, before any work is done."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if not header:
                raise UsageError(f"--metadata {path}: the file is empty; its first line names the columns, one "
                                 f"of them poster_id or file")
            names = [name.strip() for name in header]
            lowered = [name.lower() for name in names]
            key = next((k for k in KEY_COLUMNS if k in lowered), None)
            if key is None:
                raise UsageError(f"--metadata {path}: no poster_id or file column (its columns: "
                                 f"{', '.join(names[:8]) or 'none'}); name the column that says which poster a "
                                 f"row is about poster_id or file")
            k = lowered.index(key)
            others = [i for i, name in enumerate(names) if i != k and name]
            seen = collections.Counter(names[i] for i in others)
            twice = sorted(name for name, count in seen.items() if count > 1)
            if twice:
                raise UsageError(f"--metadata {path}: the column {twice[0]!r} is named twice")
            long = [names[i] for i in others if len(names[i]) > MAX_NAME]
            if long:
                raise UsageError(f"--metadata {path}: the column name {long[0][:MAX_NAME]!r}… is longer than "
                                 f"{MAX_NAME} characters")
            meta = Metadata(path, key, [names[i] for i in others])
            repeated = 0
            for row in reader:
                if k >= len(row) or not row[k].strip():
                    continue
                value = row[k].strip()
                if value in meta.rows:
                    repeated += 1
                    continue
                meta.rows[value] = [row[i].strip() if i < len(row) else "" for i in others]
    except FileNotFoundError:
        raise UsageError(f"--metadata: no such file: {path}") from None
    except IsADirectoryError:
        raise UsageError(f"--metadata: {path} is a folder; give a CSV file") from None
    except UnicodeDecodeError:
        raise UsageError(f"--metadata {path}: not a CSV file in UTF-8 (save it from the spreadsheet as "
                         f"\"CSV UTF-8\")") from None
    except csv.Error as exc:
        raise UsageError(f"--metadata {path}: cannot read it as CSV ({exc})") from None
    except OSError as exc:
        raise UsageError(f"--metadata {path}: cannot read it: {exc.strerror or exc}") from None
    if repeated:
        log.warning("--metadata %s: %d row(s) name a %s that an earlier row names; the first row is used",
                    path, repeated, key)
    return meta


def _file_keys(row: dict) -> list[str]:
    """The keys a ``file`` column can give a poster: its original file's name, that name without its
    extension, and its path under the ``--from-dir`` folder."""
    url = row.get("image_url") or ""
    name = PurePosixPath(unquote(urlsplit(url).path)).name if url else ""
    if not name:
        name = PurePosixPath(row.get("image_path") or "").name
    if not name:
        return []
    keys = [name, PurePosixPath(name).stem]
    folder = (row.get("folder") or "").strip("/")
    if folder:
        keys.append(f"{folder}/{name}")
    return keys


def _category(name: str, source: str, texts: list[str]) -> tuple[Category | None, str | None]:
    """The category of one column of values ("" for none), or None and why it is left out."""
    counts = collections.Counter(text for text in texts if text)
    given = sum(counts.values())
    if not given:
        return None, "no poster has a value"
    if len(counts) == 1 and given == len(texts):
        return None, "every poster has the same value"
    alone = sum(1 for count in counts.values() if count == 1)
    if alone * 2 > given:
        return None, f"most posters with a value have one no other poster has ({alone} of {given}): not a grouping"
    ranked = sorted(counts, key=lambda text: (-counts[text], text))
    kept = ranked if len(ranked) <= MAX_VALUES else ranked[:MAX_VALUES - 1]
    if len(kept) < len(ranked) and sum(counts[text] for text in kept) * 2 < given:
        return None, (f"{len(ranked)} different values, the {len(kept)} commonest held less than half the "
                      f"posters: not a grouping")
    if all(re.fullmatch(r"-?\d{1,9}", text) for text in kept):
        kept = sorted(kept, key=int)
    others = len(ranked) - len(kept)
    values = kept + ([OTHER] if others else [])
    code_of = {text: c for c, text in enumerate(kept)}
    other_code = len(kept) if others else -1
    codes = np.fromiter((code_of.get(text, other_code) if text else -1 for text in texts), np.int16, len(texts))
    return Category(name, source, values, codes, others), None


def categories(rows: list[dict], metadata: Metadata | None = None) -> tuple[list[Category], dict]:
    """The map's categories for posters ``rows`` (the manifest's, in the map's order), and what
    ``meta.metadata`` says about them: the file joined, how many posters it matched, and each column left
    out with its reason."""
    found: list[Category] = []
    left_out: dict[str, str] = {}
    names: set[str] = set()

    def add(name: str, source: str, texts: list[str], quiet: bool = False) -> None:
        if name in names:  # a metadata column named as one of ours: ours stays, theirs is told apart
            name = f"{name} ({source})"
        category, why = _category(name, source, texts)
        if category is None:
            if not quiet:
                left_out[name] = why
                log.warning("category %r left out: %s", name, why)
            return
        names.add(name)
        found.append(category)

    add("folder", "folder", [(row.get("folder") or "").strip("/") for row in rows], quiet=True)
    add("version", "version", [str(row.get("version") or 1) for row in rows], quiet=True)
    report: dict = {}
    if metadata is not None:
        matched = []
        for row in rows:
            if metadata.key == "poster_id":
                values = metadata.rows.get(row["poster_id"])
            else:
                values = next((metadata.rows[key] for key in _file_keys(row) if key in metadata.rows), None)
            matched.append(values)
        hits = sum(values is not None for values in matched)
        report = {"file": metadata.path.name, "key": metadata.key, "rows": len(metadata.rows), "matched": hits}
        if not hits:
            log.warning("--metadata %s: none of its %d rows names a poster of the map (by %s); is it the "
                        "right file?", metadata.path, len(metadata.rows), metadata.key)
        elif hits < len(rows):
            log.info("--metadata %s: %d of the map's %d posters have a row", metadata.path, hits, len(rows))
        for c, name in enumerate(metadata.columns):
            add(name, "metadata", [values[c] if values is not None else "" for values in matched])
    if left_out:
        report["left_out"] = left_out
    return found, report
