"""Stage 1's checkpoints: the rows finished since posters.csv was written go to its journal, whatever the
manifest's size, and a stopped run's journal is read by the next run and by the later stages."""

from __future__ import annotations

import json
import logging

import pytest
from PIL import Image

from posters_cnn.contracts import manifest as manifest_module
from posters_cnn.contracts.manifest import (
    COLUMNS, Journal, PosterRecord, journal_path, load_ok_records, read_records, write_manifest,
)
from posters_cnn.scrape import stage as scrape

import get_posters


def run_cli(*args):
    return get_posters.main([*map(str, args), "--no-progress", "-q"])


def _record(pid, status="ok", **extra):
    year, name = pid.split("/")
    return PosterRecord(pid, name.title(), int(year), 1, image_path=f"posters/{pid}.jpg",
                        thumb_path=f"thumbs/{pid}.jpg", width=60, height=90, status=status, **extra)


def test_a_run_that_dies_before_writing_the_manifest_keeps_what_it_checkpointed(site, server, tmp_path, monkeypatch):
    monkeypatch.setattr(scrape, "CHECKPOINT_EVERY_S", 0.0)  # a checkpoint after every poster

    def full_disk(path, records):
        raise OSError(28, "No space left on device", str(path))

    # posters.csv cannot be written at all: a checkpoint that rewrote it would fail at the first poster.
    monkeypatch.setattr(manifest_module, "write_manifest", full_disk)
    base = ["--base-url", server.url, "--range", "1995-1996", "--out-dir", tmp_path, "--retries", 1, "--timeout", 5]
    assert run_cli(*base) == 1
    assert not (tmp_path / "posters.csv").exists()
    kept = read_records(tmp_path / "posters.csv")  # posters.csv with its journal, as the next run reads it
    assert set(site.good) <= {pid for pid, r in kept.items() if r.status == "ok"}
    # Stages 2 and 3 read the journal too: the posters on disk are not lost to them.
    assert {row["poster_id"] for row in load_ok_records(tmp_path / "posters.csv")} >= set(site.good)

    monkeypatch.setattr(manifest_module, "write_manifest", write_manifest)
    server.reset()
    assert run_cli(*base) == 0
    # Nothing the journal holds is asked for again: neither what is on disk nor what failed for good.
    settled = [pid for pid, r in kept.items() if r.status == "ok" or r.error_kind not in scrape.TRANSIENT_KINDS]
    assert len(settled) > len(site.good)  # some failed for good (404, a bad file)
    images = {f"/{pid.split('/')[0]}/posters/{pid.split('/')[1]}.jpg" for pid in settled}
    assert not images & set(server.image_requests())
    assert not journal_path(tmp_path / "posters.csv").exists()  # posters.csv holds every row now
    written = read_records(tmp_path / "posters.csv")
    assert {pid for pid, r in written.items() if r.status == "ok"} >= set(site.good)


def test_the_journal_over_the_manifest(tmp_path, caplog):
    manifest = tmp_path / "posters.csv"
    write_manifest(manifest, [_record("1995/a"), _record("1995/b", status="failed"), _record("1995/c")])
    journal = Journal(manifest)
    journal.append([_record("1995/b"), _record("1996/d")])
    journal.close()
    with open(journal_path(manifest), "a", encoding="utf-8") as fh:
        fh.write("not a row\n")
        fh.write(json.dumps(["1996/x"] + [""] * (len(COLUMNS) - 1)) + "\n")  # a row of the right shape
        fh.write(json.dumps([1, 2, 3]) + "\n")  # not a row
        evil = [getattr(_record("1996/evil"), c) for c in COLUMNS]
        evil[COLUMNS.index("image_path")] = "../../outside.jpg"
        fh.write(json.dumps(evil) + "\n")
        fh.write(json.dumps([getattr(_record("1996/torn"), c) for c in COLUMNS])[:40])  # cut short by a kill
    with caplog.at_level(logging.WARNING):
        records = read_records(manifest)
    # A later row replaces a poster's earlier one in place; new posters come after; the torn line is not read.
    assert list(records) == ["1995/a", "1995/b", "1995/c", "1996/d", "1996/x", "1996/evil"]
    assert records["1995/b"].status == "ok"
    assert "2 line(s) are not rows" in caplog.text  # said once, with the count; the torn last line is not
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        ok = [row["poster_id"] for row in load_ok_records(manifest)]
    assert ok == ["1995/a", "1995/b", "1995/c", "1996/d"]  # x has no status; evil's path leaves the folder
    assert "1996/evil" in caplog.text

    # The next run appends on a line of its own, after the torn one.
    journal = Journal(manifest)
    journal.append([_record("1996/e")])
    journal.close()
    assert "1996/e" in read_records(manifest)


def test_an_ok_row_reads_as_the_manifest_says(tmp_path):
    """What stages 2 and 3 read of a row: its columns by name, year and version as ints, and its two paths
    joined to the manifest's folder."""
    manifest = tmp_path / "m" / "posters.csv"
    manifest.parent.mkdir()
    first = _record("1995/a")
    first.year, first.version, first.width, first.folder = None, 3, 500, "scans/box 1"
    write_manifest(manifest, [first, _record("1996/b")])
    row, other = load_ok_records(manifest)
    root = manifest.parent.resolve()
    assert row["image_abspath"] == str(root / first.image_path) and row.get("thumb_abspath") == str(
        root / first.thumb_path)
    assert (row["year"], row["version"], row["width"], row["folder"], row["title"]) == \
        (None, 3, "500", "scans/box 1", first.title)
    assert other["year"] == 1996 and other["version"] == 1 and other.get("height") == "90" and other["error"] == ""
    assert row.get("no such column", "x") == "x"
    with pytest.raises(KeyError):
        row["no such column"]
    assert row.as_dict()["thumb_abspath"] == row["thumb_abspath"]


def test_a_folder_with_only_a_journal_is_read(tmp_path):
    """The first run of a folder, stopped before it wrote posters.csv."""
    manifest = tmp_path / "posters.csv"
    journal = Journal(manifest)
    journal.append([_record("1995/a"), _record("1995/b", status="failed")])
    journal.close()
    assert list(read_records(manifest)) == ["1995/a", "1995/b"]
    assert [row["poster_id"] for row in load_ok_records(manifest)] == ["1995/a"]


def test_a_stopped_from_dir_run_decodes_nothing_twice(tmp_path, monkeypatch):
    src = tmp_path / "mine" / "2001"
    src.mkdir(parents=True)
    for k in range(12):
        Image.new("RGB", (40 + k, 60), (20 * k, 80, 160)).save(src / f"poster_{k:02d}.jpg")
    out = tmp_path / "out"
    monkeypatch.setattr(scrape, "CHECKPOINT_EVERY_S", 0.0)
    decoded = []
    real_load = scrape.images.load

    def load(path, **kwargs):
        decoded.append(path)
        if len(decoded) == 5:
            raise KeyboardInterrupt  # Ctrl-C while the fifth image is read
        return real_load(path, **kwargs)

    monkeypatch.setattr(scrape.images, "load", load)
    with pytest.raises(KeyboardInterrupt):
        scrape.index_folder(tmp_path / "mine", out, jobs=1, progress=False)
    saved = {pid for pid, r in read_records(out / "posters.csv").items() if r.status == "ok"}
    assert len(saved) == 4 and not journal_path(out / "posters.csv").exists()

    decoded.clear()
    monkeypatch.setattr(scrape.images, "load", lambda path, **kwargs: decoded.append(path) or real_load(path, **kwargs))
    scrape.index_folder(tmp_path / "mine", out, jobs=1, progress=False)
    assert len(decoded) == 12 - len(saved)  # the saved posters' images are not read again
    rows = read_records(out / "posters.csv")
    assert len(rows) == 12 and all(r.status == "ok" and r.width and r.height for r in rows.values())
    assert {r.width for r in rows.values()} == set(range(40, 52))
