"""What a new user meets before the map: empty runs, messages that say what to do next, first tries."""

import json
import os
import socket
import subprocess
import sys

import h5py
import pytest
from PIL import Image

from conftest import ROOT
from mapdata import make_mapdata, read_map
from posters_cnn.scrape import stage as scrape
from posters_cnn.mapping import stage as visu
from posters_cnn.cli import OutputLock
from posters_cnn.contracts.manifest import PosterRecord, write_manifest
from sitegen import FaultyServer, make_site

import get_data_visu
import get_features_from_cnn
import get_posters

QUIET_TF = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": ""}  # the stage itself decides, as for a user


def one_line(text):
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


# -- no stage claims work it did not do ----------------------------------------------------------------
def test_a_range_with_no_poster_is_an_error_naming_range_and_base_url(tmp_path, capsys):
    site = make_site(tmp_path / "site", years=(1995,))
    server = FaultyServer(site.root)
    try:
        code = get_posters.main(["--base-url", server.url, "--range", "1889-1889", "--out-dir", str(tmp_path / "out"),
                                 "--no-progress", "-q"])
    finally:
        server.close()
    assert code == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]  # after the year's warning, the error
    assert "--range 1889-1889" in line and f"--base-url {server.url}" in line


def test_from_dir_of_a_folder_without_images_is_an_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no posters here")
    assert get_posters.main(["--from-dir", str(tmp_path / "empty"), "--out-dir", str(tmp_path / "out"),
                             "--no-progress"]) == 1
    assert "no image found" in one_line(capsys.readouterr().err)


def test_stage_2_refuses_a_manifest_with_no_downloaded_poster_and_writes_nothing(tmp_path, capsys):
    write_manifest(tmp_path / "posters.csv", [PosterRecord("1889/x", "X", 1889, 1, status="failed", error="404")])
    code = get_features_from_cnn.main(["-i", str(tmp_path / "posters.csv"), "-o", str(tmp_path / "f.h5"),
                                       "--weights", "random"])
    assert code == 2
    assert "get_posters.py" in one_line(capsys.readouterr().err)
    assert not (tmp_path / "f.h5").exists()


def _one_poster(folder):
    Image.new("RGB", (30, 40), "red").save(folder / "a.jpg")
    write_manifest(folder / "posters.csv", [PosterRecord("x/a", "A", 2000, 1, image_path="a.jpg",
                                                         thumb_path="a.jpg", status="ok")])
    return folder / "posters.csv"


def test_stage_2_prints_no_tensorflow_start_up_noise_and_imports_nothing_when_it_has_nothing_to_do(tmp_path):
    manifest = _one_poster(tmp_path)
    cmd = [sys.executable, str(ROOT / "get_features_from_cnn.py"), "-i", str(manifest), "-o", str(tmp_path / "f.h5"),
           "--weights", "random", "--no-progress"]
    first = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=QUIET_TF, timeout=300)
    assert first.returncode == 0, first.stderr
    for noise in ("absl", "oneDNN", "cuda", "I0000", "E0000"):
        assert noise not in first.stderr, first.stderr
    probe = ("import sys, get_features_from_cnn; code = get_features_from_cnn.main(sys.argv[1:]); "
             "print('tensorflow' in sys.modules, code)")
    again = subprocess.run([sys.executable, "-c", probe, *cmd[2:]], capture_output=True, text=True, cwd=ROOT,
                           env=QUIET_TF, timeout=300)
    assert again.stdout.strip().splitlines()[-1] == "False 0", again.stdout + again.stderr


# -- messages that say what to do next -------------------------------------------------------------------
@pytest.mark.parametrize("module, typo, meant", [(get_posters, "--rnage", "--range"),
                                                  (get_features_from_cnn, "--batchsize", "--batch-size"),
                                                  (get_data_visu, "--n-samples", "--n-sample")])
def test_a_misspelt_flag_gets_the_flag_meant(capsys, module, typo, meant):
    with pytest.raises(SystemExit) as stop:
        module.main([typo, "5"])
    assert stop.value.code == 2
    assert f"did you mean {meant}?" in one_line(capsys.readouterr().err)


def test_stage_2_given_a_features_file_says_which_file_it_wants(tmp_path, capsys):
    with h5py.File(tmp_path / "features.h5", "w") as handle:
        handle["x"] = [1]
    assert get_features_from_cnn.main(["-i", str(tmp_path / "features.h5"), "--weights", "random"]) == 2
    line = one_line(capsys.readouterr().err)
    assert "HDF5" in line and "posters.csv" in line


def test_stage_3_started_while_stage_2_writes_names_the_run_that_holds_the_file(tmp_path):
    _, feats, _ = make_mapdata(tmp_path, n_per_cluster=4, clusters=2)
    with OutputLock(feats), h5py.File(feats, "a"):  # as stage 2 holds it while it writes
        proc = subprocess.run([sys.executable, str(ROOT / "get_data_visu.py"), "-i", str(feats), "-o",
                               str(tmp_path / "web" / "data.json")], capture_output=True, text=True, cwd=ROOT,
                              timeout=120)
    assert proc.returncode == 1
    line = one_line(proc.stderr)
    assert f"PID {os.getpid()}" in line and "get_features_from_cnn.py" in line and "wait" in line


def test_ctrl_c_in_stage_3_says_the_earlier_map_is_kept_and_what_the_next_run_keeps(tmp_path, capsys, monkeypatch):
    _, feats, _ = make_mapdata(tmp_path, n_per_cluster=4, clusters=2)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(visu.layout, "tsne", interrupted)
    assert get_data_visu.main(["-i", str(feats), "-o", str(tmp_path / "web" / "data.json")]) == 130
    line = one_line(capsys.readouterr().err.split("\r")[-1])
    assert "earlier map is kept" in line and "starts after the long steps this run finished" in line
    # And so it does: the steps before the t-SNE were kept for the next run.
    kept = tmp_path / "web" / "assets" / "maps" / "data" / "checkpoints"
    assert sorted(p.name for p in kept.iterdir()) == ["pca.npz", "similar.npz"]


def test_sigterm_in_stage_3_stops_it_as_ctrl_c_does_keeping_what_it_finished(tmp_path):
    # `kill PID`, `timeout` or a job manager: without a handler Python ends at once, and the rows a step made
    # since its last checkpoint, and its temporaries, are lost or left behind. In a process of its own, which
    # sends itself the signal while its t-SNE runs (a test process that did would end with it).
    _, feats, _ = make_mapdata(tmp_path, n_per_cluster=4, clusters=2)
    stopped_in_tsne = (
        "import os, signal, sys\n"
        "from posters_cnn.mapping import layout\n"
        "import get_data_visu\n"
        "def tsne(*args, **kwargs):\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    raise AssertionError('SIGTERM did not stop the stage')\n"
        "layout.tsne = tsne\n"
        "sys.exit(get_data_visu.main(sys.argv[1:]))\n")
    proc = subprocess.run([sys.executable, "-c", stopped_in_tsne, "-i", str(feats), "-o",
                           str(tmp_path / "web" / "data.json"), "--no-progress", "-q"], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert proc.returncode == 143, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]  # after the warnings about these features
    assert "stopped by SIGTERM" in line and "earlier map is kept" in line
    kept = tmp_path / "web" / "assets" / "maps" / "data" / "checkpoints"
    assert sorted(p.name for p in kept.iterdir()) == ["pca.npz", "similar.npz"]
    assert not [p for p in (tmp_path / "web").rglob("*") if p.name.endswith(".part")]


# -- one default for how many posters are mapped, a progress bar, and where to look ------------------
def test_stage_3_maps_every_poster_by_default_with_a_progress_bar(tmp_path, capsys):
    _, feats, cluster_of = make_mapdata(tmp_path, n_per_cluster=12, clusters=3)
    out = tmp_path / "web" / "data.json"
    assert get_data_visu.main(["-i", str(feats), "-o", str(out), "-q"]) == 0
    assert read_map(out)["meta"]["count"] == len(cluster_of)
    bar = capsys.readouterr().err
    assert "steps" in bar  # the bar: "map: 3/8 steps, tsne"
    # The long steps say how far they are: linking the images, the t-SNE's iterations, drawing the tiles (and
    # the read, before the bar, in the log).
    for step in ("link images", "tsne", "tiles tsne"):
        assert f"steps, {step} 100%" in bar, step  # "map: 4/8 steps, tsne 100%"


def test_the_view_hint_names_make_serves_address_for_a_map_under_web():
    hint = get_data_visu.view_hint(visu.WEB_DIR / "mine" / "data.json")
    assert "make serve" in hint and "http://127.0.0.1:8000/mine/index.html?data.json" in hint
    assert "http://127.0.0.1:8000/index.html?data.json" in get_data_visu.view_hint(visu.WEB_DIR / "data.json")


def test_the_view_hint_elsewhere_names_a_port_no_one_listens_on(tmp_path):
    with socket.socket() as held:
        try:
            held.bind(("127.0.0.1", 8000))
            held.listen()
        except OSError:
            pass  # 8000 is taken already: the hint must avoid it all the same
        hint = get_data_visu.view_hint(tmp_path / "data.json")
        port = get_data_visu.free_port()
    assert "make serve" not in hint
    assert port != 8000 and f"http.server {port} " in hint and f"http://127.0.0.1:{port}/index.html?data.json" in hint


# -- a first try across the years --------------------------------------------------------------------------
def test_sample_spreads_its_posters_over_the_years():
    entries = [scrape.IndexEntry(year, f"p{year}_{k}", "t", "u") for year in (1995, 1996, 1997)
               for k in range({1995: 2, 1996: 50, 1997: 50}[year])]
    chosen = scrape.spread_sample(entries, 12)
    years = [e.year for e in chosen]
    assert len(chosen) == 12 and years.count(1995) == 2 and years.count(1996) == years.count(1997) == 5
    names = [e.name for e in chosen if e.year == 1996]
    assert names[0] != "p1996_0" and names[-1] >= "p1996_4"  # spread through the year, not its first five
    assert chosen == sorted(chosen, key=entries.index)
    assert scrape.spread_sample(entries, 500) == entries


def test_sample_on_the_command_line(site, server, tmp_path):
    assert get_posters.main(["--base-url", server.url, "--range", "1995-1996", "--out-dir", str(tmp_path),
                             "--sample", "4", "--no-progress", "-q"]) == 0
    import pandas as pd
    manifest = pd.read_csv(tmp_path / "posters.csv")
    posters = manifest[~manifest.poster_id.str.endswith("std.html")]
    assert sorted(posters.year.tolist()) == [1995, 1995, 1996, 1996]


# -- your own folder ---------------------------------------------------------------------------------------
def test_from_dir_ids_leave_the_year_out_of_the_name(tmp_path):
    src = tmp_path / "mine"
    src.mkdir()
    Image.new("RGB", (30, 40), "red").save(src / "Star.Wars.1977.jpg")
    assert get_posters.main(["--from-dir", str(src), "--out-dir", str(tmp_path / "out"), "--no-progress"]) == 0
    import pandas as pd
    row = pd.read_csv(tmp_path / "out" / "posters.csv").iloc[0]
    assert (row.poster_id, row.title, row.year) == ("local/star_wars", "Star Wars", 1977)
