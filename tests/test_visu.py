"""Stage 3 on synthetic clustered features in real HDF5 files."""

import json
import math

import jsonschema
import numpy as np
import pytest
from PIL import Image

from mapdata import make_mapdata
from posters_cnn import layout, similarity, visu

import get_data_visu


def run(*args):
    return get_data_visu.main([*map(str, args)])


@pytest.fixture(scope="module")
def mapped(tmp_path_factory):
    folder = tmp_path_factory.mktemp("map")
    manifest, feats, cluster_of = make_mapdata(folder, nan_rows=1)
    out = folder / "web" / "data.json"
    assert run("-i", feats, "--posters", manifest, "-o", out, "--grid", "--neighbors", 5, "--pairs", 10) == 0
    return folder, out, json.loads(out.read_text()), cluster_of


def test_data_json_validates_and_has_every_poster(mapped):
    folder, out, data, cluster_of = mapped
    jsonschema.validate(data, visu.load_schema())
    assert len(data["points"]) == len(cluster_of) - 1  # the NaN row is dropped
    for point in data["points"]:
        assert math.isfinite(point["x"]) and math.isfinite(point["y"])
    assert data["meta"]["features"]["random_weights"] is True
    assert 0 < data["meta"]["trustworthiness"] <= 1


def test_every_path_resolves_from_the_json_folder(mapped):
    folder, out, data, _ = mapped
    base = out.parent
    for point in data["points"]:
        for key in ("thumb", "image"):
            assert (base / point[key]).is_file(), point[key]
    for rel in data["meta"]["atlas"]["files"]:
        assert (base / rel).is_file()
    pairs = json.loads((base / data["meta"]["pairs"]["file"]).read_text())
    for pair in pairs["pairs"]:
        assert (base / pair["image"]).is_file()


def test_atlas_sprites_lie_inside_their_sheet(mapped):
    _, out, data, _ = mapped
    sizes = [Image.open(out.parent / f).size for f in data["meta"]["atlas"]["files"]]
    for p in data["points"]:
        w, h = sizes[p["atlas"]]
        assert p["ax"] + p["aw"] <= w and p["ay"] + p["ah"] <= h
        assert max(p["aw"], p["ah"]) <= data["meta"]["atlas"]["cell"]


def test_neighbours_come_from_the_same_cluster(mapped):
    _, _, data, cluster_of = mapped
    listed = [(p["id"], n) for p in data["points"] for n in p["neighbors"]]
    same = sum(cluster_of[a] == cluster_of[b] for a, b in listed)
    assert same / len(listed) >= 0.95
    assert all(p["id"] not in p["neighbors"] for p in data["points"])


def test_map_neighbourhoods_keep_clusters(mapped):
    _, _, data, cluster_of = mapped
    xy = np.array([[p["x"], p["y"]] for p in data["points"]])
    ids = [p["id"] for p in data["points"]]
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
    ids = {p["id"] for p in data["points"]}
    versions = [i for i in ids if i.endswith("_ver2") and i[:-5] in ids]
    assert versions  # the data has versions of one movie, nearly identical: the closest pairs if not excluded
    for p in pairs:
        assert p["a"].replace("_ver2", "") != p["b"].replace("_ver2", "")


def test_grid_puts_each_poster_in_its_own_cell(mapped):
    _, _, data, _ = mapped
    cells = {(round(p["gx"], 4), round(p["gy"], 4)) for p in data["points"]}
    assert len(cells) == len(data["points"])


def test_same_seed_same_map(tmp_path):
    manifest, feats, _ = make_mapdata(tmp_path, n_per_cluster=8)
    for name in ("a.json", "b.json"):
        assert run("-i", feats, "-o", tmp_path / name, "--seed", 3, "--no-pair-images") == 0
    a, b = (json.loads((tmp_path / n).read_text())["points"] for n in ("a.json", "b.json"))
    assert [(p["x"], p["y"]) for p in a] == [(p["x"], p["y"]) for p in b]


def test_sample_one_per_movie_and_original_aliases(tmp_path):
    manifest, feats, cluster_of = make_mapdata(tmp_path, n_per_cluster=12)
    out = tmp_path / "data.json"
    assert run("--input_file", feats, "--output_file", out, "--n_sample", 10, "--pca_components", 5,
               "--n_jobs", 1, "-t", "sklearn", "--no-pair-images") == 0
    data = json.loads(out.read_text())
    assert len(data["points"]) == 10 and data["meta"]["tsne"]["backend"] == "sklearn"
    movies = {pid.replace("_ver2", "") for pid in cluster_of}
    assert len(movies) < len(cluster_of)  # some movies have two versions
    assert run("-i", feats, "-o", out, "--n-sample", 0, "--one-per-movie", "--no-pair-images") == 0
    ids = [p["id"] for p in json.loads(out.read_text())["points"]]
    assert sorted(ids) == sorted(movies)  # one per movie, the lowest version


def test_perplexity_and_pca_are_adjusted_with_a_warning(tmp_path, capsys):
    manifest, feats, _ = make_mapdata(tmp_path, n_per_cluster=3, clusters=3)
    assert run("-i", feats, "-o", tmp_path / "d.json", "--perplexity", 50, "--pca-components", 500,
               "--no-pair-images") == 0
    meta = json.loads((tmp_path / "d.json").read_text())["meta"]
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
    reduced, _, components = layout.pca(x, 20, 0)
    monkeypatch.setattr(similarity, "EXACT_MAX", 10)
    idx, sims, pairs = similarity.neighbours_and_pairs(x, k=5, n_pairs=20, groups=groups, basis=components,
                                                       chunk=64)
    assert np.mean(idx == exact_idx) > 0.9  # isotropic clusters: the hard case for a projection
    assert np.allclose(sims[idx == exact_idx], exact_sim[idx == exact_idx], atol=1e-5)
    assert [(i, j) for _, i, j in pairs] == [(i, j) for _, i, j in exact_pairs]


def files_named_by(folder, data_json):
    data = json.loads((folder / data_json).read_text())
    named = [data_json, data["meta"]["pairs"]["file"], *data["meta"]["atlas"]["files"]]
    named += [p[k] for p in data["points"] for k in ("thumb", "image")]
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
    stale = [web / ".data.json.abc.part", web / ".pairs.json.x.part", web / "assets/maps/data/atlas/.000.jpg.q.part"]
    kept = [web / ".other.json.abc.part", web / "assets/maps/other/atlas/.000.jpg.q.part", web / "notes.txt"]
    for path in stale + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    assert run("-i", feats, "-o", web / "data.json", "-q") == 0
    assert not [p for p in stale if p.exists()]
    assert all(p.exists() for p in kept)
