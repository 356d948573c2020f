"""Stages 2 and 3 against doctored files and interrupted runs: each test is named for the promise it keeps.

Crashes are injected where they would happen (a write that fails, a file-size limit standing for a full
disk), never by killing a process at a lucky moment.
"""

import csv
import errno
import hashlib
import json
import os
import resource
import signal
import subprocess
import sys

import h5py
import numpy as np
import pytest
from PIL import Image

from conftest import ROOT
from mapdata import make_mapdata, tile_files, read_map
from posters_cnn.mapping import stage as visu
from posters_cnn.contracts.manifest import PosterRecord, read_records, write_manifest
from test_trust_scrape import doctored_dds

import get_data_visu


def run_visu(*args):
    return get_data_visu.main([*map(str, args), "-q"])


def files_of_map(out):
    """Every file a map names (data.json, its table, its pairs file, pair images, tiles, thumbnails and posters),
    with a hash of its bytes."""
    base = out.parent
    data = read_map(out)
    meta, cols = data["meta"], data["columns"]
    names = {out.name, meta["pairs"]["file"], *tile_files(data)}
    names |= {meta["table"][key].replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y))
              for z, x, y, _ in meta["table"]["tiles"] for key in ("path", "near", "titles")}  # the map's table
    shards = -(-meta["table"]["rows"] // meta["table"]["search_rows"])
    names |= {meta["table"]["search"].replace("{k}", str(k)) for k in range(shards)}  # its search index
    pairs = json.loads((base / meta["pairs"]["file"]).read_text())["pairs"]
    names |= {pair["image"] for pair in pairs if pair.get("image")}
    for key in ("thumb", "image"):
        names |= {meta["paths"][key].replace("{id}", pid) for pid in cols["id"]}
    return {name: hashlib.sha256((base / name).read_bytes()).hexdigest() for name in sorted(names)}


def clusters_csv_agrees(out):
    data = read_map(out)
    with open(out.parent / "clusters.csv", newline="") as fh:
        rows = {row["poster_id"]: (int(row["cluster"]), int(row["region"])) for row in csv.DictReader(fh)}
    cols = data["columns"]
    return rows == {pid: (c, r) for pid, c, r in zip(cols["id"], cols["cluster"], cols["region"])}


# -- everything is written under the output folder, and read from under the manifest's ---------------
@pytest.mark.parametrize("column, value", [("thumb_path", "/etc/passwd"), ("image_path", "../../outside.jpg"),
                                           ("thumb_path", "thumbs/../../../outside.jpg")])
def test_a_doctored_manifest_cannot_publish_or_write_outside_its_folders(tmp_path, column, value):
    data_dir = tmp_path / "data"
    manifest, feats, _ = make_mapdata(data_dir, n_per_cluster=6, clusters=2)
    (tmp_path / "outside.jpg").write_bytes((data_dir / "thumbs/1990/movie_c0_00.jpg").read_bytes())
    records = list(read_records(manifest).values())
    setattr(records[0], column, value)
    write_manifest(manifest, records)
    before = {p for p in tmp_path.rglob("*")}
    out = tmp_path / "site" / "web" / "data.json"
    assert run_visu("-i", feats, "-o", out) == 0
    data = read_map(out)
    assert records[0].poster_id not in data["columns"]["id"]
    written = {p for p in tmp_path.rglob("*")} - before
    assert not [p for p in written if not (out.parent in p.parents or p in out.parent.parents or p == out.parent)]
    published = {os.stat(p).st_ino for p in out.parent.rglob("*") if p.is_file()}
    assert os.stat("/etc/passwd").st_ino not in published
    assert os.stat(tmp_path / "outside.jpg").st_ino not in published


def test_a_poster_listed_twice_is_mapped_once(tmp_path):
    manifest, feats, cluster_of = make_mapdata(tmp_path, n_per_cluster=6, clusters=2)
    records = list(read_records(manifest).values())
    write_manifest(manifest, records + [records[3]])
    with h5py.File(feats, "r") as handle:
        ids = [v.decode() for v in handle["poster_id"][:]]
        rows = handle["features"][:]
    feats2 = tmp_path / "twice.h5"
    from posters_cnn.contracts.store import FeatureWriter
    writer = FeatureWriter(feats2, rows.shape[1], {"model": "m", "layer": "fc2", "weights": "random(seed=0)"})
    writer.append(ids + ids[:2], np.concatenate([rows, rows[:2] + 1]))
    writer.close()
    out = tmp_path / "web" / "data.json"
    assert run_visu("-i", feats2, "--posters", manifest, "-o", out) == 0
    mapped = read_map(out)["columns"]["id"]
    assert sorted(mapped) == sorted(cluster_of)


# -- a stopped run leaves the earlier map whole --------------------------------------------------------
@pytest.fixture
def earlier_map(tmp_path):
    manifest, feats, _ = make_mapdata(tmp_path, n_per_cluster=10, clusters=3)
    out = tmp_path / "web" / "data.json"
    assert run_visu("-i", feats, "-o", out, "--pairs", 6) == 0
    return feats, out, files_of_map(out)


def _fail_on(monkeypatch, name, when, error):
    """Make stage 3's ``name`` (``maptable.write``: one of a module it uses) raise ``error`` when ``when``."""
    owner = visu
    *modules, name = name.split(".")
    for module in modules:
        owner = getattr(owner, module)
    original = getattr(owner, name)

    def failing(*args, **kwargs):
        if when(*args):
            raise error
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, failing)


@pytest.mark.parametrize("name, when, error", [
    ("write_json_atomic", lambda path, *_: str(path).endswith("data.json"), OSError(errno.ENOSPC, "No space left")),
    ("write_json_atomic", lambda path, *_: str(path).endswith("data.json"), KeyboardInterrupt()),
    ("write_text_atomic", lambda path, *_: str(path).endswith(".csv"), KeyboardInterrupt()),
    ("build_pyramid", lambda *_: True, KeyboardInterrupt()),
    ("maptable.write", lambda *_: True, KeyboardInterrupt()),
], ids=["disk-full-at-the-switch", "ctrl-c-at-the-switch", "ctrl-c-at-the-clusters", "ctrl-c-in-the-tiles",
        "ctrl-c-in-the-table"])
def test_a_stopped_rerun_leaves_the_earlier_map_whole(earlier_map, monkeypatch, name, when, error):
    feats, out, before = earlier_map
    _fail_on(monkeypatch, name, when, error)
    code = None
    try:  # another sample and seed: every tile and pair would change
        code = run_visu("-i", feats, "-o", out, "--pairs", 6, "--n-sample", 20, "--seed", 5)
    except KeyboardInterrupt:
        pass
    assert code in (None, 1, 130)
    assert files_of_map(out) == before
    assert clusters_csv_agrees(out)
    assert (out.parent / "pairs.json").read_bytes() == (out.parent / read_map(out)["meta"]["pairs"]["file"]).read_bytes()
    # The next run finishes, and no folder of the stopped run is left behind.
    monkeypatch.undo()
    assert run_visu("-i", feats, "-o", out, "--pairs", 6, "--n-sample", 20, "--seed", 5) == 0
    runs = list((out.parent / "assets/maps/data").iterdir())
    assert [p.relative_to(out.parent).as_posix() for p in runs] == [read_map(out)["meta"]["run"]]
    assert clusters_csv_agrees(out)
    assert all((out.parent / name).is_file() for name in files_of_map(out))


def test_a_map_made_before_runs_had_folders_is_replaced_whole(tmp_path):
    """A map of the earlier layout (tiles in assets/maps/STEM/tiles) keeps working until the switch."""
    manifest, feats, _ = make_mapdata(tmp_path, n_per_cluster=6, clusters=2)
    web = tmp_path / "web"
    legacy = web / "assets/maps/data/tiles/tsne/0/0-0.jpg"
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(b"an earlier map's tile")
    (web / "data.json").write_text(json.dumps({"meta": {"format": 2}, "columns": {}}))
    assert run_visu("-i", feats, "-o", web / "data.json") == 0
    assert not legacy.exists()
    assert read_map(web / "data.json")["meta"]["run"].startswith("assets/maps/data/run-")


# -- one-line errors, not tracebacks -------------------------------------------------------------------
def test_a_map_name_differing_only_in_case_of_its_suffix_is_refused(tmp_path, capsys):
    _, feats, _ = make_mapdata(tmp_path, n_per_cluster=3, clusters=2)
    assert run_visu("-i", feats, "-o", tmp_path / "web" / "data.JSON") == 2
    assert "-o" in capsys.readouterr().err
    assert not (tmp_path / "web").exists()


@pytest.mark.parametrize("stage", ["get_posters.py", "get_features_from_cnn.py", "get_data_visu.py"])
def test_an_output_folder_that_cannot_be_written_is_one_line(tmp_path, stage):
    _, feats, _ = make_mapdata(tmp_path, n_per_cluster=3, clusters=2)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    args = {"get_posters.py": ["--from-dir", tmp_path / "thumbs", "--out-dir", blocker / "out"],
            "get_features_from_cnn.py": ["-i", tmp_path / "posters.csv", "-o", blocker / "f.h5", "--weights",
                                         "random"],
            "get_data_visu.py": ["-i", feats, "-o", blocker / "data.json"]}[stage]
    proc = subprocess.run([sys.executable, str(ROOT / stage), *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 1, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "Traceback" not in proc.stderr and "a-file" in last and "cannot" in last, proc.stderr


@pytest.mark.parametrize("key, value", [("count", "abc"), ("count", -3), ("count", 2.5), ("skipped_count", "x")])
def test_a_features_file_with_doctored_counts_is_refused_in_one_line(tmp_path, capsys, key, value):
    _, feats, _ = make_mapdata(tmp_path, n_per_cluster=3, clusters=2)
    with h5py.File(feats, "r+") as handle:
        handle.attrs[key] = value
    code = run_visu("-i", feats, "-o", tmp_path / "web" / "data.json")
    err = capsys.readouterr().err.strip().splitlines()
    if key == "skipped_count":  # stage 3 does not read it; stage 2 would refuse the file
        assert code == 0
        from posters_cnn.contracts import store
        with pytest.raises(Exception, match=key):
            store.check_and_read_done(feats, 4096, {})
    else:
        assert code == 2 and len(err) == 1 and key in err[0]


def test_odd_attribute_types_still_make_a_valid_map(tmp_path):
    import jsonschema
    _, feats, _ = make_mapdata(tmp_path, n_per_cluster=6, clusters=2)
    with h5py.File(feats, "r+") as handle:
        handle.attrs["model"] = np.arange(3)
        handle.attrs["weights"] = np.float64(1.5)
    out = tmp_path / "web" / "data.json"
    assert run_visu("-i", feats, "-o", out) == 0
    data = read_map(out)
    jsonschema.validate(data, visu.load_schema())


def test_features_all_the_same_are_one_line(tmp_path, capsys):
    _, feats, _ = make_mapdata(tmp_path, n_per_cluster=6, clusters=2)
    with h5py.File(feats, "r+") as handle:
        handle["features"][:] = 1.0
    assert run_visu("-i", feats, "-o", tmp_path / "web" / "data.json") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the same" in err[0]


def test_an_oversized_or_doctored_thumbnail_never_stops_the_map(tmp_path):
    manifest, feats, _ = make_mapdata(tmp_path, n_per_cluster=6, clusters=2)
    records = list(read_records(manifest).values())
    Image.new("1", (12000, 16000)).save(tmp_path / records[0].thumb_path, format="PNG")  # over Pillow's limit
    (tmp_path / records[1].thumb_path).write_bytes(doctored_dds())
    out = tmp_path / "web" / "data.json"
    assert run_visu("-i", feats, "-o", out, "--pairs", 40) == 0
    assert records[0].poster_id in read_map(out)["columns"]["id"]


# -- stage 2 -------------------------------------------------------------------------------------------
def _stage2(*args, limit_bytes=None, timeout=300):
    def limit():
        if limit_bytes:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run([sys.executable, str(ROOT / "get_features_from_cnn.py"), *map(str, args), "--weights",
                           "random", "--batch-size", "2", "--no-progress", "-q"], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, preexec_fn=limit,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def _stage2_manifest(folder, n):
    records = []
    for i in range(n):
        rel = f"posters/2000/p{i:02d}.jpg"
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40 + i, 60), (i * 20 % 256, 90, 160)).save(folder / rel)
        records.append(PosterRecord(f"2000/p{i:02d}", f"P{i}", 2000, 1, image_path=rel, thumb_path=rel, status="ok"))
    return records


def test_a_full_disk_in_stage_2_keeps_the_rows_before_it_and_the_next_run_goes_on(tmp_path):
    records = _stage2_manifest(tmp_path, 12)
    write_manifest(tmp_path / "posters.csv", records)
    out = tmp_path / "features.h5"
    # Room for the file and about three batches of two rows (4096 float32 each), not for twelve rows.
    proc = _stage2("-i", tmp_path / "posters.csv", "-o", out, limit_bytes=1024 * 1024 + 6 * 4096 * 4 + 20_000)
    assert proc.returncode == 1, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "Traceback" not in proc.stderr and "features.h5" in last and "run again" in last, proc.stderr
    with h5py.File(out, "r") as handle:
        kept = int(handle.attrs["count"])
    assert 0 < kept < 12
    proc = _stage2("-i", tmp_path / "posters.csv", "-o", out)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(out, "r") as handle:
        assert int(handle.attrs["count"]) == 12
        assert sorted(v.decode() for v in handle["poster_id"][:]) == sorted(r.poster_id for r in records)


def test_stage_2_skips_doctored_images_and_paths_outside_the_manifests_folder(tmp_path):
    records = _stage2_manifest(tmp_path, 4)
    (tmp_path / records[0].image_path).write_bytes(doctored_dds())
    records[1].image_path = "/etc/passwd"
    write_manifest(tmp_path / "posters.csv", records)
    out = tmp_path / "features.h5"
    proc = _stage2("-i", tmp_path / "posters.csv", "-o", out)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(out, "r") as handle:
        rows = {v.decode() for v in handle["poster_id"][: int(handle.attrs["count"])]}
        skipped = {v.decode() for v in handle["skipped_id"][:]}
    assert rows == {records[2].poster_id, records[3].poster_id}
    assert skipped == {records[0].poster_id}
