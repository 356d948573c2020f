"""The map's table (data.json format 3, posters_cnn/contracts/maptable.py): which tile holds each poster,
the golden fixture read back, and the files a doctored or broken table gets a one-line error for."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from posters_cnn.contracts import geometry, maptable

FIXTURE = Path(__file__).with_name("fixtures") / "table"
OLD_FIXTURE = FIXTURE.with_name("table-titles-in-rows")  # format 3 as written until the titles left the rows
SEARCH_KEYS = FIXTURE.with_name("search_keys.json")


def fixture_copy(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "map")
    return tmp_path / "map" / "data.json"


@pytest.mark.parametrize("fixture", [FIXTURE, OLD_FIXTURE])
def test_the_fixture_reads_back_into_format_2s_columns(fixture):
    """Today's table, and one written before the titles had files of their own (they were in the rows')."""
    meta, columns = maptable.read_columns(fixture / "data.json")
    assert columns == json.loads((FIXTURE / "columns.json").read_text())
    assert meta["table"]["rows"] == len(columns["id"])
    assert ("titles" in meta["table"]) == (fixture == FIXTURE)


def test_the_writer_still_writes_the_fixture(tmp_path):
    """The fixture is what today's writer writes: the same files, each with the same table."""
    data = json.loads((FIXTURE / "data.json").read_text())
    meta, columns = data["meta"], json.loads((FIXTURE / "columns.json").read_text())
    about = maptable.write(tmp_path / "table", columns, meta, capacity=meta["table"]["capacity"],
                           search_rows=meta["table"]["search_rows"])
    assert maptable.relocate(about, f"{meta['run']}/table") == meta["table"]
    for z, x, y, _ in about["tiles"]:
        for template in (maptable.TEMPLATE, maptable.NEAR_TEMPLATE, maptable.TITLES_TEMPLATE):
            rel = geometry.tile_url(template, z, x, y)
            ours = pa.ipc.open_file((tmp_path / "table" / rel).read_bytes()).read_all()
            theirs = pa.ipc.open_file((FIXTURE / meta["run"] / "table" / rel).read_bytes()).read_all()
            assert ours.equals(theirs, check_metadata=True), rel
    shards = sorted((FIXTURE / meta["run"] / "table" / "search").iterdir())
    assert [p.name for p in shards] == ["0.txt", "1.txt", "2.txt"]
    for shard in shards:
        assert (tmp_path / "table" / "search" / shard.name).read_bytes() == shard.read_bytes()


def test_the_search_shards_hold_each_titles_key_in_the_maps_order():
    meta, columns = maptable.read_columns(FIXTURE / "data.json")
    folder = FIXTURE / meta["table"]["search"].rsplit("/", 1)[0]
    texts = [(folder / f"{k}.txt").read_text(encoding="ascii") for k in range(3)]
    text = "".join(texts)
    keys = text.split("\n")
    assert keys.pop() == ""  # each key ends with a newline
    assert keys == [maptable.search_key(title) for title in columns["title"]]
    assert keys[3] == "" and keys[0] == "poster 0 ete"  # a null title has an empty key
    assert len(texts[2].splitlines()) == 3  # 23 posters in shards of 10


def test_search_keys_are_the_pages():
    """The golden cases the page's normalizeTitle is also held to (tests/js/logic.test.js): NFKD, accents
    gone, lower case, a space for each run of anything else."""
    for case in json.loads(SEARCH_KEYS.read_text(encoding="utf-8"))["cases"]:
        assert maptable.search_key(case["title"]) == case["key"], case
        assert set(case["key"]) <= set("abcdefghijklmnopqrstuvwxyz0123456789 ")


def test_pyarrow_dataset_reads_the_whole_table_in_one_step():
    """The README's step, without our code: every poster once, with its columns and its similar posters."""
    folder = FIXTURE / "assets/maps/data/run-fixture/table"
    table = ds.dataset(folder / "rows", format="arrow").to_table().sort_by("index")
    for part in ("titles", "near"):
        extra = ds.dataset(folder / part, format="arrow").to_table().sort_by("index")
        for name in extra.column_names[1:]:
            table = table.append_column(name, extra[name])
    columns = json.loads((FIXTURE / "columns.json").read_text())
    assert table.column("id").to_pylist() == columns["id"]
    assert table.column("index").to_pylist() == list(range(len(columns["id"])))
    assert table.column("neighbors").to_pylist()[1] == columns["neighbors"][3:6]
    assert table.column("title").to_pylist() == columns["title"]


@pytest.mark.parametrize("capacity", [1, 3, 50, 10_000])
def test_every_poster_is_in_one_tile_that_holds_its_centre(capacity):
    rng = np.random.default_rng(capacity)
    x = np.concatenate([rng.normal(0, 0.3, 400).clip(-1, 1), np.full(60, 0.25), [-1.0, 1.0, 1.0]])
    y = np.concatenate([rng.normal(0, 0.1, 400).clip(-1, 1), np.full(60, -0.5), [1.0, -1.0, 1.0]])
    origin, span = geometry.pyramid_frame(geometry.slot_size(len(x)))
    tiles = maptable.tiles_for(x, y, origin, span, capacity)
    rows = np.concatenate([t[3] for t in tiles])
    assert sorted(rows.tolist()) == list(range(len(x)))  # each poster once
    u, v = geometry.to_unit(x, y)
    for z, tx, ty, inside in tiles:
        x0, y0, size = geometry.tile_rect(z, tx, ty, origin, span)
        assert np.all((u[inside] >= x0) & (u[inside] < x0 + size) & (v[inside] >= y0) & (v[inside] < y0 + size))
        assert len(inside) <= capacity or z == geometry.MAX_LEVEL  # only a pile at one point is past it
        assert np.all(np.diff(inside) > 0)
    keys = {(z, tx, ty) for z, tx, ty, _ in tiles}
    for z, tx, ty, _ in tiles:  # no tile is written beside one of its ancestors
        assert not any((z - d, tx >> d, ty >> d) in keys for d in range(1, z + 1))


def doctor(path, change):
    data = json.loads(path.read_text())
    change(data["meta"]["table"])
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("how, said", [
    (lambda t: t["tiles"].pop(), "once"),
    (lambda t: t["tiles"].__setitem__(0, [9, 9, 9, 1]), "cannot read"),
    (lambda t: t["tiles"][0].__setitem__(3, 99), "rows"),
    (lambda t: t.__setitem__("path", "../../etc/{z}/{x}-{y}.arrow"), "not a table's description"),
    (lambda t: t.__setitem__("rows", 24), "once"),
    (lambda t: t.pop("tiles"), "not a table's description"),
])
def test_a_doctored_table_description_is_one_clear_error(tmp_path, how, said):
    path = fixture_copy(tmp_path)
    doctor(path, how)
    with pytest.raises(maptable.BadTable, match=said):
        maptable.read_columns(path)


def test_near_files_that_do_not_match_their_rows_are_one_clear_error(tmp_path):
    path = fixture_copy(tmp_path)
    near = sorted((path.parent / "assets").rglob("near/*/*.arrow"))
    a, b = near[0].read_bytes(), near[1].read_bytes()
    near[0].write_bytes(b), near[1].write_bytes(a)  # each tile's neighbours in the other's file
    with pytest.raises(maptable.BadTable, match="rows|near files"):
        maptable.read_columns(path)


def test_a_damaged_or_missing_table_file_is_one_clear_error(tmp_path):
    path = fixture_copy(tmp_path)
    files = sorted((path.parent / "assets").rglob("*.arrow"))
    files[0].write_bytes(files[0].read_bytes()[:100])
    with pytest.raises(maptable.BadTable, match="cannot read the map's table file"):
        maptable.read_columns(path)
    files[0].unlink()
    with pytest.raises(maptable.BadTable, match="cannot read the map's table file"):
        maptable.read_columns(path)
