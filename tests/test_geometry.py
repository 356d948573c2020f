"""The map's geometry (posters_cnn.contracts.geometry) against the golden fixture that web/geometry.js is
checked against too (tests/js/geometry.test.js), and stage 3's tiles against the geometry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from posters_cnn.contracts import geometry as g

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "geometry.json").read_text())
MAP = FIXTURE["map"]


def test_frames_and_slots():
    for case in FIXTURE["frames"]:
        u, v = g.to_unit(*case["data"])
        assert [float(u), float(v)] == case["unit"]
        x, y = g.to_data(u, v)
        assert [float(x), float(y)] == pytest.approx(case["data"], abs=1e-12)
    for case in FIXTURE["slot_size"]:
        assert g.slot_size(case["n"]) == case["slot"]
    for case in FIXTURE["grid_slot"]:
        assert g.grid_slot(case["side"]) == case["slot"]
    # Stated, not only recorded: n slots of the t-SNE map cover 0.92^2 = 85% of the unit square.
    assert 1000 * g.slot_size(1000) ** 2 == pytest.approx(0.92 ** 2)


def test_boxes_and_pyramid():
    u, v = g.to_unit(MAP["x"], MAP["y"])
    boxes = g.poster_boxes(u, v, MAP["aspect"], MAP["slot"])
    assert boxes.tolist() == MAP["boxes"]
    assert g.pyramid_frame(MAP["slot"]) == (MAP["origin"], MAP["span"])
    assert g.deepest_level(MAP["slot"], 128, MAP["span"]) + 1 == MAP["levels"]
    # A tall poster fills its slot's height, a wide one its width.
    assert g.poster_boxes(0.5, 0.5, 0.5, 0.2).tolist() == pytest.approx([0.45, 0.4, 0.55, 0.6])
    assert g.poster_boxes(0.5, 0.5, 2.0, 0.2).tolist() == pytest.approx([0.4, 0.45, 0.6, 0.55])
    for case in FIXTURE["deepest_level"]:
        assert g.deepest_level(case["slot"], case["min_poster"], case["span"]) == case["level"]
    for case in FIXTURE["deepest_composed_level"]:
        assert g.deepest_composed_level(case["levels"], case["slot"], case["span"], case["thumb_size"]) == case["level"]


def test_levels_and_tiles():
    origin, span = MAP["origin"], MAP["span"]
    for case in FIXTURE["level_for"]:
        assert g.level_for(case["px_per_unit"], case["span"], case["max_level"]) == case["level"], case
    for case in FIXTURE["tile_rect"]:
        assert list(g.tile_rect(case["z"], case["x"], case["y"], origin, span)) == case["rect"]
    for case in FIXTURE["tile_range"]:
        assert g.tile_range(case["view"], case["z"], origin, span) == case["range"]
    for z, ranges in FIXTURE["tiles_of_boxes"].items():
        assert g.tiles_of_boxes(MAP["boxes"], int(z), origin, span).tolist() == ranges
    for case in FIXTURE["edge_boxes"]:
        assert g.tiles_of_boxes([case["box"]], case["z"], case["origin"], case["span"])[0].tolist() == case["tiles"]
    assert FIXTURE["edge_boxes"][0]["tiles"] == [1, 1, 1, 1]  # edges on tile edges: one tile, not four
    for case in FIXTURE["posters_in_tile"]:
        got = g.posters_in_tile(MAP["boxes"], case["z"], case["x"], case["y"], origin, span).tolist()
        assert got == case["posters"], case
    for case in FIXTURE["present"]:
        assert g.is_present(MAP["present"], case["z"], case["x"], case["y"]) == case["present"], case
    for case in FIXTURE["tile_url"]:
        assert g.tile_url(case["template"], case["z"], case["x"], case["y"]) == case["url"]


def test_picking():
    for case in FIXTURE["pick"]:
        assert g.pick(MAP["boxes"], *case["point"]) == case["poster"], case
    # Where two posters overlap, the later one is on top (stage 3 draws in index order).
    overlap = [[0, 0, 2, 2], [1, 1, 3, 3]]
    assert g.pick(overlap, 1.5, 1.5) == 1 and g.pick(overlap, 0.5, 0.5) == 0 and g.pick(overlap, 2, 2) == 1
    assert g.pick(overlap, 3.01, 3) == -1


def test_stage_3_writes_exactly_the_tiles_the_geometry_names(tmp_path):
    """build_pyramid's files and `present` bitsets are the tiles the contract puts the posters in."""
    from PIL import Image

    from posters_cnn.mapping.tiles import build_pyramid

    rng = np.random.default_rng(3)
    n = 60
    thumb = tmp_path / "t.jpg"
    Image.new("RGB", (60, 90), (200, 40, 40)).save(thumb)
    u, v = g.to_unit(rng.uniform(-1, 1, n), rng.uniform(-1, 1, n))
    slot = g.slot_size(n)
    boxes = g.poster_boxes(u, v, np.full(n, 60 / 90), slot)
    pyramid = build_pyramid([str(thumb)] * n, boxes, tmp_path / "tiles", slot=slot, jobs=1)
    assert (pyramid.origin, pyramid.span) == g.pyramid_frame(slot)
    written = {p.relative_to(tmp_path / "tiles").as_posix() for p in (tmp_path / "tiles").rglob("*.jpg")}
    expected = set()
    for z in range(pyramid.levels):
        for tx0, ty0, tx1, ty1 in g.tiles_of_boxes(boxes, z, pyramid.origin, pyramid.span):
            expected |= {f"{z}/{x}-{y}.jpg" for x in range(tx0, tx1 + 1) for y in range(ty0, ty1 + 1)}
    assert written == expected and pyramid.files == len(expected)
    for z in range(pyramid.levels):
        for x in range(1 << z):
            for y in range(1 << z):
                assert g.is_present(pyramid.present, z, x, y) == (f"{z}/{x}-{y}.jpg" in expected)


def test_every_tile_above_the_blocks_is_its_four_children_halved(tmp_path):
    """The levels above the 8 x 8-tile blocks are drawn from the blocks' last tiles, parent by parent: each
    is its children's pixels halved (within JPEG's error), with the background where a child is absent."""
    from PIL import Image

    from posters_cnn.mapping.tiles import BACKGROUND, BLOCK_TILES, build_pyramid

    rng = np.random.default_rng(5)
    n = 40
    thumbs = []
    for i in range(n):
        thumbs.append(str(tmp_path / f"t{i}.jpg"))
        Image.new("RGB", (60, 90), tuple(int(c) for c in rng.integers(0, 256, 3))).save(thumbs[-1])
    # Clustered in two corners, so that whole quadrants of blocks are empty.
    centres = np.array([[-0.7, -0.7], [0.6, 0.5]])[rng.integers(0, 2, n)]
    u, v = g.to_unit(*(centres + rng.normal(0, 0.15, (n, 2))).T)
    slot = g.slot_size(n)
    boxes = g.poster_boxes(u, v, np.full(n, 60 / 90), slot)
    pyramid = build_pyramid(thumbs, boxes, tmp_path / "tiles", slot=slot, jobs=2, min_poster=1024)
    top_level = pyramid.levels - 1 - int(np.log2(BLOCK_TILES))
    assert top_level >= 3  # several levels climbed from the blocks

    def tile(z, x, y):
        path = tmp_path / "tiles" / str(z) / f"{x}-{y}.jpg"
        if not path.exists():
            return np.broadcast_to(np.array(BACKGROUND, float), (g.TILE, g.TILE, 3))
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), float)

    checked = 0
    for z in range(top_level):
        for x in range(1 << z):
            for y in range(1 << z):
                if not g.is_present(pyramid.present, z, x, y):
                    continue
                children = np.block([[[tile(z + 1, 2 * x + dx, 2 * y + dy)] for dx in (0, 1)] for dy in (0, 1)])
                children = children.reshape(2 * g.TILE, 2 * g.TILE, 3)
                halved = children.reshape(g.TILE, 2, g.TILE, 2, 3).mean(axis=(1, 3))
                assert np.abs(tile(z, x, y) - halved).mean() < 3, (z, x, y)
                checked += 1
    assert checked >= 2 * top_level


def test_a_pyramid_built_again_in_its_folder_keeps_only_its_own_tiles(tmp_path):
    from PIL import Image

    from posters_cnn.mapping.tiles import build_pyramid

    thumb = tmp_path / "t.jpg"
    Image.new("RGB", (60, 90), (40, 200, 40)).save(thumb)
    n = 30
    u, v = g.to_unit(np.linspace(-0.9, 0.9, n), np.linspace(-0.9, 0.9, n))
    slot = g.slot_size(n)
    boxes = g.poster_boxes(u, v, np.full(n, 60 / 90), slot)
    out = tmp_path / "tiles"
    first = build_pyramid([str(thumb)] * n, boxes, out, slot=slot, jobs=1)
    stale = [out / "0" / "7-7.jpg", out / str(first.levels) / "0-0.jpg", out / "1" / "x-0.jpg"]
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"an earlier run's tile")
    again = build_pyramid([str(thumb)] * n, boxes, out, slot=slot, jobs=1)
    assert not any(path.exists() for path in stale)
    assert again.files == first.files == len(list(out.rglob("*.jpg")))
