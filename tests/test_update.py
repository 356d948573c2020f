"""get_data_visu.py --update: new posters join a map without moving it, only the tiles they touch are drawn
again (under new URLs), posters that left leave, and what needs a full run is refused in one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ROOT, wait_until
from mapdata import make_mapdata, tile_files, read_map
from posters_cnn.contracts import geometry
from posters_cnn.contracts.manifest import read_records, write_manifest
from posters_cnn.contracts.store import FeatureWriter, read_features
from posters_cnn.fsutil import OutputLock
from posters_cnn.mapping import state as mapstate

import get_data_visu

FIRST = 100  # posters on the map before the update; the features file then grows to 120


def run(*args):
    return get_data_visu.main([*map(str, args), "-q", "--no-progress"])


def write_features(path, ids, rows, attrs):
    writer = FeatureWriter(path, rows.shape[1], attrs)
    writer.append(list(ids), rows)
    writer.close()


@pytest.fixture
def grown(tmp_path):
    """A map of the first FIRST posters, then a features file with 20 more: (folder, out, before, features)."""
    return grow(tmp_path)


def grow(tmp_path, *flags):
    manifest, feats, _ = make_mapdata(tmp_path, n_per_cluster=40, clusters=3)
    ids, features, attrs = read_features(feats)
    order = np.random.default_rng(1).permutation(len(ids))  # new posters in every cluster, not one
    ids, features = [ids[i] for i in order], features[order]
    provenance = {key: attrs[key] for key in ("model", "layer", "weights")}
    early = tmp_path / "early.h5"
    write_features(early, ids[:FIRST], features[:FIRST], provenance)
    out = tmp_path / "web" / "data.json"
    assert run("-i", early, "--posters", manifest, "-o", out, *flags) == 0
    feats.unlink()
    write_features(feats, ids, features, provenance)
    return tmp_path, out, read_map(out), feats


def by_id(data):
    cols, k = data["columns"], data["meta"]["neighbors"]
    return {pid: {"x": cols["x"][i], "y": cols["y"][i], "cluster": cols.get("cluster", [None] * (i + 1))[i],
                  "neighbors": [cols["id"][j] for j in cols["neighbors"][i * k:(i + 1) * k]]}
            for i, pid in enumerate(cols["id"])}


def test_a_map_in_format_2_is_updated_into_format_3(grown):
    """A map written before the table (its columns in data.json) still updates; the result is format 3."""
    folder, out, before, feats = grown
    written = json.loads(out.read_text())
    table = out.parent / written["meta"]["table"]["path"].split("/{z}")[0]
    out.write_text(json.dumps({"meta": {**before["meta"], "format": 2}, "columns": before["columns"]}))
    import shutil

    shutil.rmtree(table)
    assert run("-i", feats, "-o", out, "--update") == 0
    after = json.loads(out.read_text())
    assert after["meta"]["format"] == 3 and "columns" not in after
    old, new = by_id(before), by_id(read_map(out))
    assert len(new) == 120 and all((new[pid]["x"], new[pid]["y"]) == (was["x"], was["y"]) for pid, was in old.items())


def test_new_posters_join_and_no_poster_moves(grown):
    folder, out, before, feats = grown
    assert run("-i", feats, "-o", out, "--update") == 0
    after = read_map(out)
    old, new = by_id(before), by_id(after)
    assert len(new) == 120 and set(old) < set(new)
    for pid, was in old.items():  # bit-identical positions and unchanged cluster numbers
        assert (new[pid]["x"], new[pid]["y"], new[pid]["cluster"]) == (was["x"], was["y"], was["cluster"])
    saved = mapstate.load(out.parent / after["meta"]["state"])
    assert saved.ids.tolist() == after["columns"]["id"]
    assert after["meta"]["update"]["added"] == 20 and after["meta"]["count"] == 120
    # New posters land among the posters they resemble: most of their listed neighbours share their cluster.
    added = [pid for pid in new if pid not in old]
    assert all(-1 <= new[pid]["x"] <= 1 and -1 <= new[pid]["y"] <= 1 for pid in added)
    joined = [new[pid]["cluster"] for pid in added]
    assert sum(c >= 0 for c in joined) >= 15


@pytest.mark.parametrize("half", [False, True])  # float32 unit rows, and float16 past their budget (streamed.py)
def test_every_posters_pca_point_is_its_projection_as_a_new_posters_is(tmp_path, monkeypatch, half):
    """An update projects a new poster as (row - mean) @ components.T: the map's own points must be that,
    whether stage 3 keeps its unit rows in float32 or float16 (the points come from the file's rows)."""
    from posters_cnn.mapping import stage as visu, streamed

    n = 2000
    if half:
        monkeypatch.setattr(streamed, "FLOAT32_MAX_BYTES", 1)
    rows = np.maximum(np.random.default_rng(0).normal(0, 1, (n, 256)), 0).astype(np.float32)
    write_features(tmp_path / "f.h5", [f"a/{i}" for i in range(n)], rows, {"weights": "random(seed=0)"})
    features, finite = streamed.read(tmp_path / "f.h5", np.arange(n))
    assert finite.all() and features.unit.dtype == (np.float16 if half else np.float32)
    reduced = visu.reduce(features, 10)
    want = (rows - reduced.mean) @ reduced.components.T
    error = np.linalg.norm(reduced.points - want, axis=1) / (np.linalg.norm(want, axis=1) + 1)
    assert error.max() < 1e-5


def test_a_map_of_few_components_takes_new_posters_on_the_same_basis(tmp_path):
    folder, out, before, feats = grow(tmp_path, "--pca-components", "10")
    assert read_map(out)["meta"]["pca"]["components"] == 10
    assert run("-i", feats, "-o", out, "--update") == 0
    assert len(read_map(out)["columns"]["id"]) == 120


def test_similar_posters_and_pairs_are_a_full_runs_both_ways(grown):
    folder, out, before, feats = grown
    assert run("-i", feats, "-o", out, "--update") == 0
    full = folder / "full" / "data.json"
    assert run("-i", feats, "-o", full) == 0  # exact search at this size, like the update's
    updated, whole = by_id(read_map(out)), by_id(read_map(full))
    assert {pid: p["neighbors"] for pid, p in updated.items()} == {pid: p["neighbors"] for pid, p in whole.items()}
    old = by_id(before)
    assert any(set(updated[pid]["neighbors"]) - set(old) for pid in old)  # an old poster gained a new neighbour

    def pairs(path):
        return [(p["a"], p["b"], p["similarity"]) for p in json.loads(path.read_text())["pairs"]]

    assert pairs(out.parent / "pairs.json") == pairs(full.parent / "pairs.json")


def test_only_the_tiles_new_posters_touch_are_drawn_again_under_new_urls(grown):
    folder, out, before, feats = grown
    old_files = {rel: (out.parent / rel) for rel in tile_files(before)}
    old_inodes = {rel.split("/tiles/")[1]: os.stat(path).st_ino for rel, path in old_files.items()}
    old_bytes = {rel.split("/tiles/")[1]: path.read_bytes() for rel, path in old_files.items()}
    assert run("-i", feats, "-o", out, "--update") == 0
    after = read_map(out)
    pyramid = after["meta"]["tiles"]["tsne"]
    assert pyramid["path"] != before["meta"]["tiles"]["tsne"]["path"]  # every URL changed: no stale cached tile
    # The tiles the new posters' boxes meet, at every level, by the shared geometry.
    cols = after["columns"]
    new = np.array([pid not in set(before["columns"]["id"]) for pid in cols["id"]])
    u, v = geometry.to_unit(np.array(cols["x"])[new], np.array(cols["y"])[new])
    boxes = geometry.poster_boxes(u, v, np.array(cols["aspect"])[new], pyramid["slot"])
    touched = set()
    for z in range(pyramid["levels"]):
        for x0, y0, x1, y1 in geometry.tiles_of_boxes(boxes, z, pyramid["origin"], pyramid["span"]):
            touched |= {f"tsne/{z}/{x}-{y}.jpg" for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)}
    drawn = linked = 0
    for rel in tile_files(after):
        key = rel.split("/tiles/")[1]
        path = out.parent / rel
        assert path.is_file(), rel
        if key in touched:
            assert key not in old_inodes or os.stat(path).st_ino != old_inodes[key]
            drawn += 1
        else:
            assert os.stat(path).st_ino == old_inodes[key] and path.read_bytes() == old_bytes[key], key
            linked += 1
    assert drawn and linked and after["meta"]["update"]["tiles_drawn"] == drawn
    assert any(path.read_bytes() != old_bytes[key] for key, path in
               ((k, out.parent / pyramid["path"].split("/tiles/")[0] / "tiles" / k) for k in touched & set(old_bytes)))


def test_posters_that_left_the_manifest_leave_the_map(grown):
    folder, out, before, feats = grown
    manifest = folder / "posters.csv"
    gone = before["columns"]["id"][:3]
    write_manifest(manifest, [r for pid, r in read_records(manifest).items() if pid not in gone])
    assert run("-i", feats, "-o", out, "--update", "--force") == 0  # 20 join 97: over a fifth
    after = read_map(out)
    ids = after["columns"]["id"]
    assert not set(gone) & set(ids) and len(ids) == 117 and after["meta"]["update"]["removed"] == 3
    assert max(after["columns"]["neighbors"]) < len(ids)
    named = {p[k] for p in json.loads((out.parent / "pairs.json").read_text())["pairs"] for k in ("a", "b")}
    assert not named & set(gone)
    rows = (out.parent / "clusters.csv").read_text().splitlines()[1:]
    assert sorted(r.split(",")[0] for r in rows) == sorted(ids)
    sizes = sum(c["size"] for c in after["meta"]["clusters"])
    assert sizes == sum(c >= 0 for c in after["columns"]["cluster"])


def test_an_update_with_nothing_new_changes_nothing(grown):
    folder, out, before, feats = grown
    early = folder / "early.h5"
    text = out.read_text()
    assert run("-i", early, "-o", out, "--update", "--posters", folder / "posters.csv") == 0
    assert out.read_text() == text


def one_line_error(capsys):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


@pytest.mark.parametrize("flag, value", [("--perplexity", "12"), ("--seed", "3"), ("--neighbors", "4"),
                                         ("--clusters", "0")])
def test_other_settings_are_refused_in_one_line(grown, capsys, flag, value):
    folder, out, before, feats = grown
    text = out.read_text()
    assert run("-i", feats, "-o", out, "--update", flag, value) == 2
    assert flag in one_line_error(capsys)
    assert out.read_text() == text


def test_features_made_otherwise_are_refused(grown, capsys):
    folder, out, before, feats = grown
    ids, features, attrs = read_features(feats)
    other = folder / "other.h5"
    write_features(other, ids, features, {"model": attrs["model"], "layer": attrs["layer"], "weights": "imagenet"})
    text = out.read_text()
    assert run("-i", other, "-o", out, "--update", "--posters", folder / "posters.csv") == 2
    assert "weights" in one_line_error(capsys)
    assert out.read_text() == text


def test_features_changed_under_the_map_are_refused(grown, capsys):
    folder, out, before, feats = grown
    ids, features, attrs = read_features(feats)
    feats.unlink()
    write_features(feats, ids, features[::-1].copy(), {k: attrs[k] for k in ("model", "layer", "weights")})
    assert run("-i", feats, "-o", out, "--update") == 2
    assert "not the ones it was made from" in one_line_error(capsys)


def test_new_posters_unlike_anything_on_the_map_are_refused_unless_forced(grown, capsys):
    folder, out, before, feats = grown
    ids, features, attrs = read_features(feats)
    rng = np.random.default_rng(7)  # the new posters come from a look the map has never seen
    centre = rng.normal(0, 1, features.shape[1]).astype(np.float32) * 3
    features[FIRST:] = np.maximum(centre + rng.normal(0, 1, features[FIRST:].shape), 0)
    feats.unlink()
    write_features(feats, ids, features, {k: attrs[k] for k in ("model", "layer", "weights")})
    text = out.read_text()
    assert run("-i", feats, "-o", out, "--update") == 2
    assert "far from every poster" in one_line_error(capsys) and out.read_text() == text
    assert run("-i", feats, "-o", out, "--update", "--force") == 0
    assert read_map(out)["meta"]["update"]["far"] == 20


def test_new_posters_with_features_that_are_not_numbers_are_left_out(grown, capsys):
    folder, out, before, feats = grown
    ids, features, attrs = read_features(feats)
    features[FIRST, :3] = np.nan
    feats.unlink()
    write_features(feats, ids, features, {k: attrs[k] for k in ("model", "layer", "weights")})
    capsys.readouterr()
    assert run("-i", feats, "-o", out, "--update") == 0
    data = read_map(out)
    got = data["columns"]["id"]
    assert len(got) == 119 and ids[FIRST] not in got
    # Said where the user finds it after the log has scrolled away: the map's meta, and the last lines.
    assert data["meta"]["selection"]["left_out"] == {"features not finite (NaN or infinite)": {"count": 1,
                                                                                               "ids": [ids[FIRST]]}}
    assert "left out 1 poster (features not finite (NaN or infinite) 1)" in capsys.readouterr().out


def test_too_many_new_posters_are_refused_unless_forced_and_auto_makes_the_map_in_full(tmp_path, capsys):
    manifest, feats, _ = make_mapdata(tmp_path, n_per_cluster=20, clusters=3)
    ids, features, attrs = read_features(feats)
    provenance = {key: attrs[key] for key in ("model", "layer", "weights")}
    early = tmp_path / "early.h5"
    write_features(early, ids[:40], features[:40], provenance)
    out = tmp_path / "web" / "data.json"
    assert run("-i", early, "--posters", manifest, "-o", out) == 0
    capsys.readouterr()
    assert run("-i", feats, "-o", out, "--update") == 2
    assert "more than a fifth" in one_line_error(capsys) and len(read_map(out)["columns"]["id"]) == 40
    assert run("-i", feats, "-o", out, "--update=auto") == 0
    data = read_map(out)
    assert len(data["columns"]["id"]) == 60 and "update" not in data["meta"]  # made in full
    capsys.readouterr()
    # The 20 posters of one cluster leave: its number would name nothing, so the map is made in full.
    assert run("-i", early, "-o", out, "--update", "--force", "--posters", manifest) == 2
    assert "lost all its posters" in one_line_error(capsys)


@pytest.mark.parametrize("damage", ["no state", "doctored state", "grid"])
def test_a_map_that_cannot_be_updated_says_so_and_auto_makes_it_in_full(grown, capsys, damage):
    folder, out, before, feats = grown
    if damage == "no state":
        data = read_map(out)
        del data["meta"]["state"]
        out.write_text(json.dumps(data))
    elif damage == "doctored state":
        path = out.parent / before["meta"]["state"]
        with np.load(path) as saved:
            arrays = dict(saved)
        arrays["neighbors"][0, 0] = 10 ** 6  # a neighbour that is not on the map
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)
    else:
        assert run("-i", folder / "early.h5", "--posters", folder / "posters.csv", "-o", out, "--grid") == 0
    capsys.readouterr()
    assert run("-i", feats, "-o", out, "--update") == 2
    assert "without --update" in one_line_error(capsys)
    assert run("-i", feats, "-o", out, "--update=auto") == 0
    assert len(read_map(out)["columns"]["id"]) == 120


def test_a_second_update_of_the_same_map_waits_for_no_one(grown, capsys):
    folder, out, before, feats = grown
    with OutputLock(out):
        assert run("-i", feats, "-o", out, "--update") == 1
    err = capsys.readouterr().err.strip()
    assert f"PID {os.getpid()}" in err and len(err.splitlines()) == 1
    assert read_map(out)["columns"]["id"] == before["columns"]["id"]


KILLED_UPDATE = """
import sys, threading
from pathlib import Path
sys.path[:0] = [{root!r}]
from posters_cnn.mapping import stage
real = stage.write_json_atomic

def stalled(path, doc, *args, **kwargs):
    if Path(path).name == "data.json":  # everything the new map names is written: now wait to be killed
        Path({ready!r}).write_text("ready")
        threading.Event().wait()  # never set: this process waits here for its kill -9
    return real(path, doc, *args, **kwargs)

stage.write_json_atomic = stalled
import get_data_visu
sys.exit(get_data_visu.main(sys.argv[1:]))
"""


def test_kill_9_during_an_update_leaves_the_old_map_whole_and_the_next_run_finishes_it(grown, tmp_path):
    folder, out, before, feats = grown
    text = out.read_text()
    ready = tmp_path / "ready"
    script = tmp_path / "killed.py"
    script.write_text(KILLED_UPDATE.format(root=str(ROOT), ready=str(ready)))
    proc = subprocess.Popen([sys.executable, str(script), "-i", str(feats), "-o", str(out), "--update", "-q",
                             "--no-progress"], cwd=ROOT)
    try:
        wait_until(ready.exists, 120, "the update reached its switch", process=proc)
        assert ready.exists(), "the update never reached its switch"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert out.read_text() == text  # the old map, whole: every file it names is there
    for rel in tile_files(before) + [before["meta"]["state"], before["meta"]["pairs"]["file"]]:
        assert (out.parent / rel).is_file(), rel
    assert run("-i", feats, "-o", out, "--update") == 0  # the next run finishes the update
    after = read_map(out)
    assert len(after["columns"]["id"]) == 120
    runs = sorted(p.name for p in (out.parent / "assets" / "maps" / "data").iterdir())
    assert runs == [after["meta"]["run"].rsplit("/", 1)[1]]  # the killed run's folder is gone


def test_state_file_is_plain_numpy_and_matches_the_map(grown):
    folder, out, before, feats = grown
    saved = np.load(out.parent / before["meta"]["state"], allow_pickle=False)
    cols = before["columns"]
    assert [pid.decode() for pid in saved["ids"].tolist()] == cols["id"]
    centre, scale = saved["centre"], float(saved["scale"])
    xy = (saved["raw"] - centre) * scale
    assert np.allclose(xy[:, 0], cols["x"], atol=1e-5) and np.allclose(xy[:, 1], cols["y"], atol=1e-5)
    assert json.loads(str(saved["settings"]))["given"]["perplexity"] == 30.0


def test_the_page_shows_the_updated_map_not_a_cached_one(grown):
    """A map made a week ago: a browser may keep its data.json for hours by heuristic caching, and would
    then ask for tiles of a run that an update has removed. The page asks the server each time."""
    from playwright.sync_api import sync_playwright

    from browser import PageWatch, StaticServer, launch

    folder, out, before, feats = grown
    week_ago = time.time() - 7 * 86400
    for path in [out, *out.parent.rglob("*.js")]:
        os.utime(path, (week_ago, week_ago))
    server = StaticServer(out.parent)
    try:
        with sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page(viewport={"width": 1000, "height": 700})
            watch = PageWatch(page)
            ready = "window.posterMap && window.posterMap.ready"
            page.goto(f"{server.url}index.html?data.json")
            page.wait_for_function(ready, timeout=20000)
            assert page.evaluate("window.posterMap.view().count") == FIRST
            assert run("-i", feats, "-o", out, "--update") == 0
            page.goto(f"{server.url}index.html?data.json")
            page.wait_for_function(ready, timeout=20000)
            assert page.evaluate("window.posterMap.view().count") == 120
            page.wait_for_function("window.posterMap.settled()", timeout=30000, polling=50)
            watch.assert_clean()  # every tile it asked for exists
            browser.close()
    finally:
        server.close()


def test_a_redrawn_pyramid_matches_a_full_render(tmp_path):
    """Tiles a removed poster met are drawn again as a full run draws them, byte for byte; tiles only new
    posters met (pasted over the earlier tile) and tiles above (halved from children) are within a level or
    two of grey of a full run's; every other tile is the earlier file."""
    from PIL import Image

    from posters_cnn.mapping.tiles import build_pyramid

    make_mapdata(tmp_path, n_per_cluster=20, clusters=3)
    thumbs = sorted(str(p) for p in (tmp_path / "thumbs").rglob("*.jpg"))
    rng = np.random.default_rng(3)
    slot = geometry.slot_size(60)
    boxes = geometry.poster_boxes(rng.uniform(0, 1, 60), rng.uniform(0, 1, 60), np.full(60, 2 / 3), slot)
    kept, gone, new = np.arange(45), np.arange(45, 50), np.arange(50, 60)
    before = build_pyramid([thumbs[i] for i in range(50)], boxes[:50], tmp_path / "before", slot=slot)
    after = np.concatenate([kept, new])
    updated = build_pyramid([thumbs[i] for i in after], boxes[after], tmp_path / "updated", slot=slot,
                            reuse=tmp_path / "before", new_from=45, removed=boxes[gone])
    full = build_pyramid([thumbs[i] for i in after], boxes[after], tmp_path / "full", slot=slot)
    assert updated.present == full.present and updated.files == full.files
    assert 0 < updated.reused < updated.files and before.levels == full.levels
    deepest = full.levels - 1
    redrawn = set()
    for x0, y0, x1, y1 in geometry.tiles_of_boxes(boxes[gone], deepest, full.origin, full.span):
        redrawn |= {f"{x}-{y}.jpg" for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)}
    assert redrawn
    for path in (tmp_path / "full").rglob("*.jpg"):
        rel = path.relative_to(tmp_path / "full")
        mine = tmp_path / "updated" / rel
        if int(rel.parts[0]) == deepest and rel.name in redrawn:
            assert mine.read_bytes() == path.read_bytes(), rel
        else:
            a = np.asarray(Image.open(mine), dtype=float)
            b = np.asarray(Image.open(path), dtype=float)
            assert np.abs(a - b).mean() < 2, (rel, np.abs(a - b).mean())
