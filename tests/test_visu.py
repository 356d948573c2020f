"""Stage 3 on synthetic clustered features in real HDF5 files."""

import json
import math
import sys

import jsonschema
import numpy as np
import pytest
from PIL import Image

from mapdata import make_mapdata, points_of, tile_files, read_map
from posters_cnn.contracts.manifest import read_records, write_manifest
from posters_cnn.contracts.store import read_features
from posters_cnn.mapping import layout, similarity, stage as visu

import get_data_visu


def run(*args):
    return get_data_visu.main([*map(str, args)])


@pytest.fixture(scope="module")
def mapped(tmp_path_factory):
    folder = tmp_path_factory.mktemp("map")
    manifest, feats, cluster_of = make_mapdata(folder, nan_rows=1)
    out = folder / "web" / "data.json"
    assert run("-i", feats, "--posters", manifest, "-o", out, "--grid", "--neighbors", 5, "--pairs", 10) == 0
    return folder, out, read_map(out), cluster_of


def test_data_json_validates_and_has_every_poster(mapped):
    folder, out, data, cluster_of = mapped
    written = json.loads(out.read_text())
    assert written["meta"]["format"] == 3 and "columns" not in written  # the rows are in the table's files
    jsonschema.validate(written, visu.load_schema())
    jsonschema.validate({"meta": {**data["meta"], "format": 2}, "columns": data["columns"]}, visu.load_schema())
    assert len(points_of(data)) == len(cluster_of) - 1  # the NaN row is dropped
    for point in points_of(data):
        assert math.isfinite(point["x"]) and math.isfinite(point["y"])
    assert data["meta"]["features"]["random_weights"] is True
    assert 0 < data["meta"]["trustworthiness"] <= 1
    # Each step's peak memory so far: the steps the timings list, in the same order, never falling.
    peaks = data["meta"]["peak_mib"]
    assert list(peaks) == list(data["meta"]["timings"]) and "tsne" in peaks
    assert 0 < peaks["pca"] and list(peaks.values()) == sorted(peaks.values())


def test_peak_memory_is_left_out_where_the_system_does_not_say(monkeypatch):
    from posters_cnn.mapping import stage

    assert stage.peak_mib() > 0
    monkeypatch.setitem(sys.modules, "resource", None)  # as on Windows: no resource module
    assert stage.peak_mib() is None
    timer = stage._Timer()
    with timer("step"):
        pass
    assert "step" in timer.timings and timer.peaks == {}


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class Bar:
    def __init__(self):
        self.said = []

    def set_postfix_str(self, text):
        self.said.append(text)

    def update(self, steps):
        pass


def test_a_long_step_says_how_far_it_is_and_how_long_it_has_left(caplog):
    clock, bar = Clock(), Bar()
    timer = visu._Timer(lambda steps: bar, clock=clock)
    timer.plan(2)
    caplog.set_level("INFO", logger=visu.log.name)
    with timer("similarity") as step:
        for done in range(50, 1001, 50):  # 50 posters every 10 s
            clock.now += 10
            step.report(done, 1000)
    # The bar: the share and, from the second report on, the time left at the rate so far (5 posters a second).
    assert bar.said[:3] == ["similarity", "similarity 5%", "similarity 10%, about 3 min left"]
    assert "similarity 50%, about 2 min left" in bar.said and "similarity 90%, under a minute left" in bar.said
    # The log: once the step has run a minute (PROGRESS_LOG_AFTER_S), a line at each tenth, none at the end.
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("similarity: ")]
    assert lines[0] == "similarity: 300 of 1,000 done (30%, about 2 min left)"
    assert [line.split("(")[1].split("%")[0] for line in lines[:-1]] == ["30", "40", "50", "60", "70", "80", "90"]
    assert lines[-1].startswith("similarity: 200.00s")  # the step's own line, as before

    # A step that takes up part-way (a stopped search) is timed from its first report, and a short one is quiet.
    caplog.clear()
    with timer("tiles") as step:
        step.report(600, 1000)
        clock.now += 30
        step.report(700, 1000)
    assert bar.said[-2] == "tiles 70%, about 2 min left"  # 300 more at 100 per 30 s: 90 s
    assert not [r for r in caplog.records if "done (" in r.getMessage()]
    # A step that logs how far it is in its own words (the t-SNE) has it on the bar only.
    with timer("tsne") as step:
        clock.now += 120
        step.report(300, 600, say=False)
    assert bar.said[-2] == "tsne 50%" and not [r for r in caplog.records if "done (" in r.getMessage()]


@pytest.mark.parametrize("seconds, said", [(0, "under a minute"), (29, "under a minute"), (90, "about 2 min"),
                                           (3599, "about 1 h 00 min"), (3900, "about 1 h 05 min"),
                                           (36000, "about 10 h 00 min")])
def test_the_time_left_is_said_as_a_person_reads_it(seconds, said):
    assert visu.time_left(seconds) == said


def test_every_path_resolves_from_the_json_folder(mapped):
    folder, out, data, _ = mapped
    base = out.parent
    for point in points_of(data):
        for key in ("thumb", "image"):
            assert (base / point[key]).is_file(), point[key]
    tiles = tile_files(data)
    assert tiles and all((base / rel).is_file() for rel in tiles)
    written = {p.relative_to(base).as_posix() for p in (base / data["meta"]["run"] / "tiles").rglob("*.jpg")}
    assert written == set(tiles)  # no tile written that the page would not know of
    pairs = json.loads((base / data["meta"]["pairs"]["file"]).read_text())
    for pair in pairs["pairs"]:
        assert (base / pair["image"]).is_file()


def test_tiles_show_every_poster_where_the_page_places_it(mapped):
    """Each poster's centre, on the deepest level, has its colour (the cluster's), not the background."""
    from mapdata import COLOURS
    _, out, data, cluster_of = mapped
    pyramid = data["meta"]["tiles"]["tsne"]
    z = pyramid["levels"] - 1
    scale = 256 * 2 ** z / pyramid["span"]
    tiles = {}
    for p in points_of(data):
        u, v = (p["x"] + 1) / 2, (1 - p["y"]) / 2
        px, py = (u - pyramid["origin"]) * scale, (v - pyramid["origin"]) * scale
        # a point near the top-left corner of the poster: the mapdata images are coloured there
        h = pyramid["slot"] * scale
        w = h * p["aspect"] if p["aspect"] < 1 else h
        px, py = px - w / 2 + 3, py - (h if p["aspect"] < 1 else h / p["aspect"]) / 2 + 3
        tx, ty = int(px // 256), int(py // 256)
        key = (tx, ty)
        if key not in tiles:
            tiles[key] = Image.open(out.parent / pyramid["path"].format(z=z, x=tx, y=ty)).convert("RGB")
        colour = tiles[key].getpixel((int(px - tx * 256), int(py - ty * 256)))
        assert colour != (17, 17, 17)
    assert len(tiles) >= 1
    assert 128 <= pyramid["slot"] * scale <= 256  # posters 128-256 px tall at the deepest level (slot)


def test_data_json_is_compact_columns(mapped):
    _, out, data, _ = mapped
    cols = data["columns"]
    n = len(cols["id"])
    assert all(len(cols[name]) == n for name in ("title", "year", "version", "x", "y", "aspect"))
    assert len(cols["neighbors"]) == n * data["meta"]["neighbors"]
    assert all(isinstance(j, int) and 0 <= j < n for j in cols["neighbors"])
    assert "thumb" not in cols and "image" not in cols  # every path follows the templates
    assert data["meta"]["paths"]["page"] == "http://www.impawards.com/{id}.html"


def test_neighbours_come_from_the_same_cluster(mapped):
    _, _, data, cluster_of = mapped
    listed = [(p["id"], n) for p in points_of(data) for n in p["neighbors"]]
    same = sum(cluster_of[a] == cluster_of[b] for a, b in listed)
    assert same / len(listed) >= 0.95
    assert all(p["id"] not in p["neighbors"] for p in points_of(data))


def test_map_neighbourhoods_keep_clusters(mapped):
    _, _, data, cluster_of = mapped
    xy = np.array([[p["x"], p["y"]] for p in points_of(data)])
    ids = [p["id"] for p in points_of(data)]
    d = ((xy[:, None] - xy[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    near = np.argsort(d, axis=1)[:, :5]
    same = np.mean([cluster_of[ids[i]] == cluster_of[ids[j]] for i in range(len(ids)) for j in near[i]])
    assert same >= 0.9


def test_pairs_are_sorted_and_never_versions_of_one_movie(mapped):
    _, out, data, _ = mapped
    pairs = json.loads((out.parent / "pairs.json").read_text())["pairs"]
    assert len(pairs) == 10
    sims = [p["similarity"] for p in pairs]
    assert sims == sorted(sims, reverse=True)
    ids = {p["id"] for p in points_of(data)}
    versions = [i for i in ids if i.endswith("_ver2") and i[:-5] in ids]
    assert versions  # the data has versions of one movie, nearly identical: the closest pairs if not excluded
    for p in pairs:
        assert p["a"].replace("_ver2", "") != p["b"].replace("_ver2", "")


def test_grid_puts_each_poster_in_its_own_cell(mapped):
    _, _, data, _ = mapped
    cells = {(round(p["gx"], 4), round(p["gy"], 4)) for p in points_of(data)}
    assert len(cells) == len(points_of(data))


def test_same_seed_same_map(tmp_path):
    manifest, feats, _ = make_mapdata(tmp_path, n_per_cluster=8)
    for name in ("a.json", "b.json"):
        assert run("-i", feats, "-o", tmp_path / name, "--seed", 3, "--no-pair-images") == 0
    a, b = (points_of(read_map(tmp_path / n)) for n in ("a.json", "b.json"))
    assert [(p["x"], p["y"]) for p in a] == [(p["x"], p["y"]) for p in b]


def test_sample_one_per_movie_and_original_aliases(tmp_path):
    manifest, feats, cluster_of = make_mapdata(tmp_path, n_per_cluster=12)
    out = tmp_path / "data.json"
    assert run("--input_file", feats, "--output_file", out, "--n_sample", 10, "--pca_components", 5,
               "--n_jobs", 1, "-t", "sklearn", "--no-pair-images") == 0
    data = read_map(out)
    assert len(points_of(data)) == 10 and data["meta"]["tsne"]["backend"] == "sklearn"
    movies = {pid.replace("_ver2", "") for pid in cluster_of}
    assert len(movies) < len(cluster_of)  # some movies have two versions
    assert run("-i", feats, "-o", out, "--n-sample", 0, "--one-per-movie", "--no-pair-images") == 0
    ids = [p["id"] for p in points_of(read_map(out))]
    assert sorted(ids) == sorted(movies)  # one per movie, the lowest version


def test_the_posters_left_out_and_why_are_in_the_map_and_its_last_lines(tmp_path, capsys):
    manifest, feats, cluster_of = make_mapdata(tmp_path, n_per_cluster=8, nan_rows=2)
    records = read_records(manifest)
    gone = sorted(records)[5]  # a poster the manifest no longer lists as ok
    write_manifest(manifest, [r for pid, r in records.items() if pid != gone])
    ids = read_features(feats)[0]
    out = tmp_path / "web" / "data.json"
    assert run("-i", feats, "-o", out, "--no-pair-images", "-q") == 0
    meta = read_map(out)["meta"]
    assert meta["selection"]["left_out"] == {
        "no ok row in the manifest": {"count": 1, "ids": [gone]},
        "features not finite (NaN or infinite)": {"count": 2, "ids": [ids[0], ids[7]]},  # make_mapdata's NaN rows
    }
    assert meta["count"] == len(cluster_of) - 3
    last = capsys.readouterr().out.splitlines()
    assert last[1] == (f"left out 3 posters (no ok row in the manifest 1; features not finite (NaN or infinite) 2): "
                       f"their ids are in {out}'s meta.selection.left_out")
    # At most LEFT_OUT_IDS ids a reason: the count says the rest.
    many = visu.left_out(visu.unlisted([f"x/{i}" for i in range(50)], {}), [])
    assert many == {"no ok row in the manifest": {"count": 50, "ids": [f"x/{i}" for i in range(visu.LEFT_OUT_IDS)]}}
    assert visu.left_out(visu.unlisted(["a/1", "a/1"], {"a/1": {}}), []) == {}  # listed twice, mapped once


def test_perplexity_and_pca_are_adjusted_with_a_warning(tmp_path, capsys):
    manifest, feats, _ = make_mapdata(tmp_path, n_per_cluster=3, clusters=3)
    assert run("-i", feats, "-o", tmp_path / "d.json", "--perplexity", 50, "--pca-components", 500,
               "--no-pair-images") == 0
    meta = read_map(tmp_path / "d.json")["meta"]
    assert meta["tsne"]["perplexity"] < 50 and meta["pca"]["components"] <= 9
    err = capsys.readouterr().err
    assert "too large" in err and "--pca-components" in err


def test_usage_errors_exit_2_in_one_line(tmp_path, capsys):
    manifest, feats, _ = make_mapdata(tmp_path, n_per_cluster=2, clusters=2)
    (tmp_path / "text.h5").write_text("hello")
    (tmp_path / "other.csv").write_text("poster_id,title,year,version,image_path,thumb_path,status\n"
                                        "1/x,x,1,1,a,b,ok\n")
    cases = [
        (["-i", tmp_path / "nope.h5"], "not found"),
        (["-i", tmp_path / "text.h5"], "not a readable HDF5"),
        (["-i", feats, "--posters", tmp_path / "other.csv"], "does not match"),
        (["-i", feats], "at least 5"),
        (["-i", feats, "-t", "multicore"], "cmake"),
    ]
    for args, message in cases:
        capsys.readouterr()
        assert run(*args, "-o", tmp_path / "out.json") == 2, args
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, (args, err)


def test_similarity_is_exact_against_brute_force():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 16)).astype(np.float32)
    groups = np.arange(50) // 2  # pairs of "versions"
    idx, sims, pairs = similarity.neighbours_and_pairs(x, k=4, n_pairs=15, groups=groups, chunk=7)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    full = unit @ unit.T
    np.fill_diagonal(full, -np.inf)
    assert np.array_equal(idx, np.argsort(-full, axis=1)[:, :4])
    want = sorted(((full[i, j], i, j) for i in range(50) for j in range(i + 1, 50) if groups[i] != groups[j]),
                  reverse=True)[:15]
    assert [(i, j) for _, i, j in pairs] == [(i, j) for _, i, j in want]


def test_grid_fallback_for_many_points_has_no_overlap(monkeypatch):
    monkeypatch.setattr(layout, "GRID_EXACT_MAX", 10)
    coords = np.random.default_rng(0).normal(size=(200, 2))
    placed, info = layout.grid(coords)
    assert info["method"] == "row-sort"
    assert len({(round(a, 6), round(b, 6)) for a, b in placed}) == 200


def test_candidate_search_matches_exact_on_clustered_data(monkeypatch):
    rng = np.random.default_rng(2)
    centres = rng.normal(size=(6, 256)) * 3
    x = np.maximum(centres[rng.integers(0, 6, 400)] + rng.normal(size=(400, 256)), 0).astype(np.float32)
    groups = np.arange(400) // 2
    exact_idx, exact_sim, exact_pairs = similarity.neighbours_and_pairs(x, k=5, n_pairs=20, groups=groups)
    monkeypatch.setattr(similarity, "EXACT_MAX", 10)
    idx, sims, pairs = similarity.neighbours_and_pairs(x, k=5, n_pairs=20, groups=groups, chunk=64)
    assert np.mean(idx == exact_idx) > 0.95  # isotropic clusters: neighbours set apart by noise alone
    assert np.allclose(sims[idx == exact_idx], exact_sim[idx == exact_idx], atol=1e-5)
    assert [(i, j) for _, i, j in pairs] == [(i, j) for _, i, j in exact_pairs]
    # The recall stage 3 reports: the share of true neighbours listed, on a sample (here every poster).
    assert similarity.recall(x, exact_idx)["recall"] == 1.0
    assert similarity.recall(x, idx)["recall"] == pytest.approx(
        np.mean([len(set(a) & set(b)) / 5 for a, b in zip(idx.tolist(), exact_idx.tolist())]), abs=1e-4)
    wrong = np.roll(exact_idx, 1, axis=0)  # another poster's neighbours
    assert similarity.recall(x, wrong)["recall"] < 0.5
    assert similarity.recall(x, idx, sample=50)["sample"] == 50


def test_the_map_says_how_well_its_approximate_search_found_the_similar_posters(tmp_path, monkeypatch):
    manifest, feats, _ = make_mapdata(tmp_path, n_per_cluster=20, clusters=3)
    out = tmp_path / "exact" / "data.json"
    assert run("-i", feats, "-o", out, "-q") == 0
    assert read_map(out)["meta"]["similarity_recall"] is None  # every pair compared
    monkeypatch.setattr(similarity, "EXACT_MAX", 40)
    out = tmp_path / "approx" / "data.json"
    assert run("-i", feats, "-o", out, "-q") == 0
    meta = read_map(out)["meta"]
    assert meta["similarity_search"].startswith("32 candidates by exact cosine from the nearest lists of an inverted")
    assert f"; {similarity.PROBES_FIRST} of 8 lists probed" in meta["similarity_search"]  # 60 clustered posters: easy
    assert meta["similarity_recall"]["k"] == 8 and meta["similarity_recall"]["sample"] == 60
    assert 0.5 < meta["similarity_recall"]["recall"] <= 1.0


def files_named_by(folder, data_json):
    data = read_map(folder / data_json)
    named = [data_json, data["meta"]["pairs"]["file"], *tile_files(data)]
    named += [p[k] for p in points_of(data) for k in ("thumb", "image")]
    pairs = json.loads((folder / data["meta"]["pairs"]["file"]).read_text())["pairs"]
    return named + [p["image"] for p in pairs if p["image"]]


def test_maps_sharing_a_folder_keep_each_others_files(tmp_path):
    manifest, feats, _ = make_mapdata(tmp_path, n_per_cluster=12)
    web = tmp_path / "web"
    maps = [("data.json", 30), ("data-30k.json", 36), ("mine.json", 20), ("data.json", 12)]
    written = {}
    for name, n in maps:
        assert run("-i", feats, "-o", web / name, "--n-sample", n, "--pairs", 5, "-q") == 0
        written[name] = files_named_by(web, name)
        for other, files in written.items():
            missing = [f for f in files if not (web / f).is_file()]
            assert not missing, (name, other, missing[:5])


@pytest.mark.parametrize("name", ["pairs.json", "pairs-30k.json", "a-pairs.json", "my map.json", "a#b.json"])
def test_map_names_that_would_clash_or_break_urls_are_refused(tmp_path, capsys, name):
    _, feats, _ = make_mapdata(tmp_path, n_per_cluster=3, clusters=2)
    assert run("-i", feats, "-o", tmp_path / name) == 2
    assert "-o" in capsys.readouterr().err


def test_a_second_run_on_the_same_map_stops_at_once(tmp_path, capsys):
    import os

    from posters_cnn.fsutil import OutputLock
    _, feats, _ = make_mapdata(tmp_path, n_per_cluster=3, clusters=2)
    with OutputLock(tmp_path / "web" / "data.json"):
        assert run("-i", feats, "-o", tmp_path / "web" / "data.json") == 1
    err = capsys.readouterr().err.strip()
    assert f"PID {os.getpid()}" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "web" / "data.json").exists()


def test_a_killed_runs_temporaries_are_removed_and_nothing_else(tmp_path):
    _, feats, _ = make_mapdata(tmp_path, n_per_cluster=4, clusters=2)
    web = tmp_path / "web"
    stale = [web / ".data.json.abc.part", web / ".pairs.json.x.part", web / "assets/maps/data/tiles/tsne/0/.0-0.jpg.q.part"]
    kept = [web / ".other.json.abc.part", web / "assets/maps/other/tiles/tsne/0/.0-0.jpg.q.part", web / "notes.txt"]
    for path in stale + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    assert run("-i", feats, "-o", web / "data.json", "-q") == 0
    assert not [p for p in stale if p.exists()]
    assert all(p.exists() for p in kept)


def test_a_map_written_outside_web_gets_the_page_and_the_command_to_serve_it(tmp_path, capsys):
    _, feats, _ = make_mapdata(tmp_path, n_per_cluster=4, clusters=2)
    out = tmp_path / "elsewhere" / "mine.json"
    assert run("-i", feats, "-o", out, "-q") == 0
    for name in ("index.html", "app.js", "renderer.js", "logic.js", "style.css"):
        assert (out.parent / name).read_bytes() == (visu.WEB_DIR / name).read_bytes()
    for name in visu.VENDOR_FILES:
        if (visu.WEB_DIR / "vendor" / name).exists():
            assert (out.parent / "vendor" / name).read_bytes() == (visu.WEB_DIR / "vendor" / name).read_bytes()
    stdout = capsys.readouterr().out
    assert f"--directory {out.parent.resolve()}" in stdout and "index.html?mine.json" in stdout
