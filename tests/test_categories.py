"""Categories: a folder's sub-folders, the poster's version and a --metadata CSV become columns of the map
that the page colours by, filters by and shows; the rules that make a column a category hold for any
collection, not one we tuned on."""

from __future__ import annotations

import io
import json
import random

import jsonschema
import numpy as np
import pytest
from PIL import Image

from mapdata import make_mapdata, read_map
from posters_cnn.cli import UsageError
from posters_cnn.contracts.manifest import COLUMNS, journal_path, load_ok_records, read_records, write_manifest
from posters_cnn.mapping import categories
from posters_cnn.mapping import stage as visu

import get_data_visu
import get_posters


def rows_of(n, **columns):
    """n manifest rows, poster_id "g/pI", with the given columns (lists of n values)."""
    rows = [{"poster_id": f"g/p{i}", "version": 1, "folder": "", "image_url": f"file:///src/p{i}.jpg"}
            for i in range(n)]
    for name, values in columns.items():
        for row, value in zip(rows, values):
            row[name] = value
    return rows


def metadata_file(tmp_path, text, name="about.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return categories.read_metadata(path)


def by_name(found):
    return {category.name: category for category in found}


def test_a_few_values_are_kept_all_in_order_of_size_and_a_missing_one_is_none(tmp_path):
    texts = ["Horror"] * 5 + ["Comedy"] * 3 + [""] * 2
    found, _ = categories.categories(rows_of(10, folder=texts))
    folder = by_name(found)["folder"]
    assert folder.values == ["Horror", "Comedy"]
    assert [folder.values[c] if c >= 0 else None for c in folder.codes] == [t or None for t in texts]
    assert folder.describe()["sizes"] == [5, 3] and folder.describe()["none"] == 2


@pytest.mark.parametrize("distinct", [21, 37, 400])
def test_many_values_keep_the_commonest_and_count_the_rest_as_other(tmp_path, distinct):
    rng = random.Random(distinct)
    # a long tail: 19 values held by 50 - v posters each, every other by one, so the commonest hold most
    texts = [f"studio {v:03d}" for v in range(distinct) for _ in range(50 - v if v < 19 else 1)]
    rng.shuffle(texts)
    table = "file,studio\n" + "".join(f"p{i}.jpg,{t}\n" for i, t in enumerate(texts))
    found, report = categories.categories(rows_of(len(texts)), metadata_file(tmp_path, table))
    studio = by_name(found)["studio"]
    assert len(studio.values) == categories.MAX_VALUES and studio.values[-1] == categories.OTHER
    assert studio.values[0] == "studio 000" and studio.others == distinct - (categories.MAX_VALUES - 1)
    kept = set(studio.values[:-1])
    for text, code in zip(texts, studio.codes):
        assert studio.values[code] == (text if text in kept else categories.OTHER)
    assert "left_out" not in report


def test_a_column_of_ids_or_free_text_is_left_out_and_said_so(tmp_path):
    table = "poster_id,blurb,rating,genre\n" + "".join(
        f"g/p{i},a film about {i} things,{i * 0.37:.2f},{'drama' if i % 3 else 'war'}\n" for i in range(60))
    found, report = categories.categories(rows_of(60), metadata_file(tmp_path, table))
    assert list(by_name(found)) == ["genre"]
    assert set(report["left_out"]) == {"blurb", "rating"}
    assert "not a grouping" in report["left_out"]["blurb"]
    assert report["matched"] == 60 and report["key"] == "poster_id"


def test_a_column_with_one_value_for_every_poster_is_left_out_but_one_value_and_none_is_kept(tmp_path):
    table = "file,country,award\n" + "".join(f"p{i}.jpg,France,{'Palme' if i < 3 else ''}\n" for i in range(10))
    found, report = categories.categories(rows_of(10), metadata_file(tmp_path, table))
    assert list(by_name(found)) == ["award"] and by_name(found)["award"].describe()["none"] == 7
    assert report["left_out"] == {"country": "every poster has the same value"}


def test_whole_numbers_are_listed_in_numeric_order():
    found, _ = categories.categories(rows_of(6, version=[10, 2, 2, 1, 1, 1]))
    assert by_name(found)["version"].values == ["1", "2", "10"]


def test_a_map_of_one_version_and_one_folder_has_no_category():
    found, report = categories.categories(rows_of(5, folder=["a"] * 5))
    assert found == [] and report == {}


def test_metadata_joins_on_the_file_name_with_or_without_extension_or_its_path_under_the_folder(tmp_path):
    rows = rows_of(4, folder=["Été", "Été", "x", ""])
    rows[1]["image_url"] = "file:///src/%C3%89t%C3%A9/Aff%20iche.png"  # as Path.as_uri writes "Été/Aff iche.png"
    table = "File,genre\np0.jpg,horror\nAff iche,comedy\nx/p2.jpg,horror\np9.jpg,war\n"
    found, report = categories.categories(rows, metadata_file(tmp_path, table))
    genre = by_name(found)["genre"]
    assert [genre.values[c] if c >= 0 else None for c in genre.codes] == ["horror", "comedy", "horror", None]
    assert report == {"file": "about.csv", "key": "file", "rows": 4, "matched": 3}
    assert by_name(found)["folder"].values == ["Été", "x"]


def test_a_metadata_column_named_as_one_of_ours_is_told_apart(tmp_path):
    table = "poster_id,folder\n" + "".join(f"g/p{i},{'a' if i % 2 else 'b'}\n" for i in range(6))
    found, _ = categories.categories(rows_of(6, folder=["x", "y"] * 3), metadata_file(tmp_path, table))
    assert [category.name for category in found] == ["folder", "folder (metadata)"]


@pytest.mark.parametrize("content, says", [
    (b"", "empty"),
    (b"title,genre\nA,horror\n", "no poster_id or file column"),
    (b"file,genre,genre\na.jpg,x,y\n", "named twice"),
    ("file,genre\nété.jpg,x\n".encode("latin-1"), "UTF-8"),
    (b"file," + b"g" * 50 + b"\na.jpg,x\n", "longer than"),
])
def test_a_metadata_file_that_cannot_be_used_is_one_line_before_any_work(tmp_path, capsys, content, says):
    (tmp_path / "bad.csv").write_bytes(content)
    with pytest.raises(UsageError, match=says):
        categories.read_metadata(tmp_path / "bad.csv")
    manifest, feats, _ = make_mapdata(tmp_path / "data", n_per_cluster=4, clusters=2, dim=16)
    out = tmp_path / "web" / "data.json"
    assert get_data_visu.main(["-i", str(feats), "--posters", str(manifest), "-o", str(out), "--metadata",
                               str(tmp_path / "bad.csv"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0] and "Traceback" not in err[0]
    assert not out.exists()


@pytest.mark.parametrize("name", ["missing.csv", "a-folder"])
def test_a_metadata_path_that_is_no_file_is_one_line(tmp_path, name):
    (tmp_path / "a-folder").mkdir()
    with pytest.raises(UsageError, match="--metadata"):
        categories.read_metadata(tmp_path / name)


def _png(colour, size=(40, 60)):
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def test_from_dir_records_each_images_folder_under_the_one_indexed(tmp_path):
    src = tmp_path / "mine"
    for rel in ("Horreur/Été/a.png", "Comédie/b.png", "c.png", "1984/Blade_Runner.png"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(_png("red"))
    assert get_posters.main(["--from-dir", str(src), "--out-dir", str(tmp_path / "out"), "--no-progress",
                             "-q"]) == 0
    folders = {row["title"]: row["folder"] for row in load_ok_records(tmp_path / "out" / "posters.csv")}
    assert folders == {"A": "Horreur/Été", "B": "Comédie", "C": "", "Blade Runner": "1984"}


def test_a_journal_line_written_before_the_folder_column_is_still_read(tmp_path):
    manifest = tmp_path / "posters.csv"
    write_manifest(manifest, [])
    old = ["1999/x", "X", 1999, 1, "", "", "posters/1999/x.jpg", "thumbs/1999/x.jpg", 10, 20, "ok", "", "", "",
           ""]
    assert len(old) == len(COLUMNS) - len(("folder",))
    journal_path(manifest).write_text(json.dumps(old) + "\n", encoding="utf-8")
    record = read_records(manifest)["1999/x"]
    assert (record.status, record.folder) == ("ok", "")


@pytest.fixture
def mapped(tmp_path):
    manifest, feats, cluster_of = make_mapdata(tmp_path, n_per_cluster=8, clusters=3, dim=32)
    ids = list(cluster_of)
    table = tmp_path / "about.csv"
    # the file's own order and case, a BOM and CRLF as a spreadsheet saves them; one poster has no row
    table.write_bytes(("\ufeffPoster_ID,Genre,Note\r\n" + "".join(
        f"{pid},{['Horreur', 'Comédie', 'Drame'][cluster_of[pid]]},n{k}\r\n" for k, pid in enumerate(ids[1:])))
        .encode("utf-8"))
    out = tmp_path / "web" / "data.json"
    visu.make_map(feats, manifest, out, neighbors=4, pairs=5, pair_images=False, metadata=table)
    return manifest, feats, cluster_of, table, out


def test_the_map_carries_its_categories_as_codes_into_their_values(mapped):
    manifest, feats, cluster_of, table, out = mapped
    data = read_map(out)
    jsonschema.validate(data, visu.load_schema())
    meta, columns = data["meta"], data["columns"]
    assert [c["name"] for c in meta["categories"]] == ["version", "Genre"]
    genre = meta["categories"][1]
    codes = columns["categories"][1]
    shown = [genre["values"][c] if c >= 0 else None for c in codes]
    expected = {pid: ['Horreur', 'Comédie', 'Drame'][c] for pid, c in cluster_of.items()}
    expected[list(cluster_of)[0]] = None
    assert shown == [expected[pid] for pid in columns["id"]]
    assert meta["metadata"]["matched"] == len(cluster_of) - 1 and "Note" in meta["metadata"]["left_out"]
    version = meta["categories"][0]
    assert [int(version["values"][c]) for c in columns["categories"][0]] == columns["version"]
    assert "original" not in columns  # scraped posters: their page says where they came from


def test_an_update_with_no_new_poster_reads_the_categories_again_and_moves_nothing(mapped, capsys):
    manifest, feats, cluster_of, table, out = mapped
    before = read_map(out)
    table.write_text("file,Genre\n" + "".join(f"{pid.split('/')[1]},{'A' if c else 'B'}\n"
                                             for pid, c in cluster_of.items()), encoding="utf-8")
    assert get_data_visu.main(["-i", str(feats), "--posters", str(manifest), "-o", str(out), "--update",
                               "--metadata", str(table), "--no-progress"]) == 0
    assert "categories were read again" in capsys.readouterr().out
    after = read_map(out)
    jsonschema.validate(after, visu.load_schema())
    genre = after["meta"]["categories"][1]
    assert genre["values"] == ["A", "B"] and genre["none"] == 0
    for key in ("x", "y", "neighbors", "cluster"):
        assert after["columns"][key] == before["columns"][key]
    assert after["meta"]["run"] == before["meta"]["run"]
    # without --metadata the columns leave, and the log says how to keep them
    assert get_data_visu.main(["-i", str(feats), "--posters", str(manifest), "-o", str(out), "--update",
                               "--no-progress"]) == 0
    assert "pass --metadata again" in capsys.readouterr().err
    assert [c["name"] for c in read_map(out)["meta"]["categories"]] == ["version"]


def test_an_update_that_adds_posters_gives_them_their_categories(tmp_path):
    manifest, feats, cluster_of = make_mapdata(tmp_path, n_per_cluster=12, clusters=3, dim=32)
    ids = list(cluster_of)
    records = read_records(manifest)
    from posters_cnn.contracts.store import FeatureWriter, read_features

    all_ids, features, attrs = read_features(feats)
    first = 30
    writer = FeatureWriter(tmp_path / "first.h5", features.shape[1], attrs)
    writer.append(all_ids[:first], features[:first])
    writer.close()
    table = tmp_path / "about.csv"
    table.write_text("poster_id,Genre\n" + "".join(f"{pid},{'AB'[cluster_of[pid] % 2]}\n" for pid in ids),
                     encoding="utf-8")
    out = tmp_path / "web" / "data.json"
    visu.make_map(tmp_path / "first.h5", manifest, out, neighbors=4, pairs=5, pair_images=False, metadata=table)
    assert get_data_visu.main(["-i", str(feats), "--posters", str(manifest), "-o", str(out), "--update",
                               "--metadata", str(table), "--force", "--no-progress", "-q"]) == 0
    data = read_map(out)
    genre = next(c for c in data["meta"]["categories"] if c["name"] == "Genre")
    codes = data["columns"]["categories"][data["meta"]["categories"].index(genre)]
    assert len(data["columns"]["id"]) == len(ids) > first
    assert [genre["values"][c] for c in codes] == ["AB"[cluster_of[pid] % 2] for pid in data["columns"]["id"]]
    assert records  # the manifest was not touched


def test_a_from_dir_map_names_each_posters_original_file(tmp_path):
    src = tmp_path / "mine"
    rng = np.random.default_rng(0)
    for k in range(12):
        rel = f"{'Horreur' if k % 2 else 'Comédie'}/affiche {k}.png"
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(_png(tuple(int(v) for v in rng.integers(0, 255, 3))))
    data_dir = tmp_path / "data"
    assert get_posters.main(["--from-dir", str(src), "--out-dir", str(data_dir), "--no-progress", "-q"]) == 0
    ids = [row["poster_id"] for row in load_ok_records(data_dir / "posters.csv")]
    from posters_cnn.contracts.store import FeatureWriter

    writer = FeatureWriter(data_dir / "features.h5", 16, {"model": "m", "layer": "fc2", "weights": "random(seed=0)"})
    writer.append(ids, np.abs(rng.normal(0, 1, (len(ids), 16))).astype(np.float32))
    writer.close()
    out = tmp_path / "web" / "data.json"
    visu.make_map(data_dir / "features.h5", data_dir / "posters.csv", out, neighbors=3, pairs=2, pair_images=False,
                  clusters=False)
    data = read_map(out)
    jsonschema.validate(data, visu.load_schema())
    from pathlib import Path

    for i, original in enumerate(data["columns"]["original"]):
        assert Path(original).parent.parent == src.resolve()
        image = (data["columns"].get("image") or [None] * len(data["columns"]["id"]))[i] or \
            data["meta"]["paths"]["image"].replace("{id}", data["columns"]["id"][i])
        assert Path(original).read_bytes() == (out.parent / image).read_bytes()
    folder = data["meta"]["categories"][0]
    assert folder["name"] == "folder" and sorted(folder["values"]) == ["Comédie", "Horreur"]
    assert data["columns"]["height"] == [60] * len(ids)  # the full image's, for the page's deepest zooms
    named = {original.split("/")[-2] for original in data["columns"]["original"]}
    assert named == {"Comédie", "Horreur"}


def test_an_update_gives_a_map_made_before_heights_its_heights_without_moving_it(mapped, capsys):
    manifest, feats, cluster_of, table, out = mapped
    data = read_map(out)
    heights = data["columns"].pop("height")
    out.write_text(json.dumps(data))  # as a map made before stage 3 wrote heights
    assert get_data_visu.main(["-i", str(feats), "--posters", str(manifest), "-o", str(out), "--update",
                               "--metadata", str(table), "--no-progress"]) == 0
    after = read_map(out)
    assert after["columns"]["height"] == heights and after["columns"]["x"] == data["columns"]["x"]
    made = out.read_text()
    assert get_data_visu.main(["-i", str(feats), "--posters", str(manifest), "-o", str(out), "--update",
                               "--metadata", str(table), "--no-progress"]) == 0
    assert out.read_text() == made  # nothing changed since: nothing written
    assert "the map is up to date" in capsys.readouterr().out
