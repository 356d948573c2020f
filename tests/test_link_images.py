"""Stage 3's images under the map's assets: hard links to the scraped files, a batch of them to a task."""

from __future__ import annotations

import logging
import os
import shutil

from mapdata import make_mapdata
from posters_cnn.contracts.manifest import load_ok_records
from posters_cnn.fsutil import link_or_copy
from posters_cnn.mapping import stage


def _rows(folder, n):
    """The manifest's rows of n posters (``make_mapdata``: each with an image and a thumbnail file of its own)."""
    manifest, _, _ = make_mapdata(folder, n_per_cluster=n, clusters=1, dim=8)
    return load_ok_records(manifest)


def test_every_image_and_thumbnail_is_linked_over_several_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(stage, "LINK_BATCH", 4)  # 11 posters: three batches a kind, the last one short
    rows = _rows(tmp_path / "scrape", 11)
    assets = tmp_path / "map" / "assets"
    stage.link_images(rows, assets, 2)
    for row in rows:
        for kind in ("image", "thumb"):
            linked = tmp_path / "map" / stage.asset_path(row, kind)
            assert os.path.samefile(linked, row[f"{kind}_abspath"]), linked  # a hard link, not a copy
    assert sum(1 for _ in assets.rglob("*.jpg")) == 22
    stage.link_images(rows, assets, 2)  # a second run over the links it made: nothing to do, nothing fails
    assert sum(1 for _ in assets.rglob("*.jpg")) == 22


def test_a_missing_image_is_logged_and_the_rest_of_its_batch_linked(tmp_path, caplog):
    rows = _rows(tmp_path / "scrape", 6)
    os.unlink(rows[2]["image_abspath"])
    with caplog.at_level(logging.WARNING, logger="posters_cnn.mapping.stage"):
        stage.link_images(rows, tmp_path / "map" / "assets", 1)
    assert any(rows[2].image_path in r.getMessage() for r in caplog.records)
    made = {p.relative_to(tmp_path / "map" / "assets").as_posix() for p in (tmp_path / "map" / "assets").rglob("*.jpg")}
    assert made == {r.image_path for i, r in enumerate(rows) if i != 2} | {r.thumb_path for r in rows}


def test_a_symbolic_link_is_followed_so_the_map_holds_the_file_itself(tmp_path):
    real = tmp_path / "scans" / "real.jpg"
    real.parent.mkdir()
    real.write_bytes(b"the poster")
    alias = tmp_path / "scans" / "alias.jpg"
    alias.symlink_to("real.jpg")  # relative: a link to it would dangle anywhere else
    dst = tmp_path / "map" / "assets" / "posters" / "a.jpg"
    link_or_copy(alias, dst)
    assert not dst.is_symlink() and os.path.samefile(dst, real)
    moved = tmp_path / "elsewhere"
    shutil.move(tmp_path / "map", moved)  # the map folder copied to a host: its images still read
    assert (moved / "assets" / "posters" / "a.jpg").read_bytes() == b"the poster"


def test_an_existing_file_at_the_destination_is_replaced_by_the_link(tmp_path):
    src = tmp_path / "a.jpg"
    src.write_bytes(b"new")
    dst = tmp_path / "assets" / "a.jpg"
    dst.parent.mkdir()
    dst.write_bytes(b"an older map's image")
    link_or_copy(src, dst)
    assert os.path.samefile(src, dst) and dst.read_bytes() == b"new"
