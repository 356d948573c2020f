"""run-posters-cnn.sh end to end: a generated site on a real server, random weights, a real browser."""

import json
import os
import shutil
import subprocess

import jsonschema
import pandas as pd
import pytest

from browser import PageWatch, StaticServer, launch, wait_text
from conftest import ROOT
from mapdata import points_of, tile_files, read_map
from posters_cnn.mapping import stage as visu
from sitegen import FaultyServer, make_site


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    folder = tmp_path_factory.mktemp("e2e")
    site = make_site(folder / "site", years=(1995, 1996))
    about = folder / "my files" / "about the posters.csv"  # a path with spaces: METADATA is one argument
    about.parent.mkdir()
    about.write_text("poster_id,studio\n" + "".join(f"{pid},{'Fox' if k % 2 else 'MGM'}\n"
                                                    for k, pid in enumerate(sorted(site.good))), encoding="utf-8")
    proc, _ = run_chain(site, folder, JOBS="3", FEATURE_ARGS="--no-progress --batch-size 8", VISU_ARGS="--grid",
                        METADATA=str(about))
    return site, folder, proc


def run_chain(site, folder, **settings):
    """run-posters-cnn.sh against ``site`` on a fresh local server; (process, server) after it stops."""
    server = FaultyServer(site.root)
    env = {**os.environ, "RANGE": "1995-1996", "BASE_URL": server.url, "WEIGHTS": "random", "N_SAMPLE": "0",
           "DATA_DIR": str(folder / "data"), "WEB_DIR": str(folder / "web"), "SCRAPE_ARGS": "--no-progress",
           "FEATURE_ARGS": "--no-progress", **settings}
    try:
        proc = subprocess.run(["bash", str(ROOT / "run-posters-cnn.sh")], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=600)
    finally:
        server.close()
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, server


def test_data_json_validates_and_every_poster_is_on_the_map(pipeline):
    site, folder, proc = pipeline
    data = read_map(folder / "web" / "data.json")
    jsonschema.validate(data, visu.load_schema())
    manifest = pd.read_csv(folder / "data" / "posters.csv", keep_default_na=False)
    ok = set(manifest[manifest.status == "ok"].poster_id)
    assert ok == set(site.good)
    assert {p["id"] for p in points_of(data)} == ok
    assert "index.html?data.json" in proc.stdout
    studio = [c["name"] for c in data["meta"]["categories"]].index("studio")  # METADATA reached stage 3
    values = data["meta"]["categories"][studio]["values"]
    expected = {pid: 'Fox' if k % 2 else 'MGM' for k, pid in enumerate(sorted(site.good))}
    assert [values[c] for c in data["columns"]["categories"][studio]] == [expected[p] for p in data["columns"]["id"]]


def test_every_path_resolves(pipeline):
    _, folder, _ = pipeline
    web = folder / "web"
    data = read_map(web / "data.json")
    paths = [p[k] for p in points_of(data) for k in ("thumb", "image")] + tile_files(data)
    pairs = json.loads((web / data["meta"]["pairs"]["file"]).read_text())["pairs"]
    paths += [p["image"] for p in pairs]
    assert paths and all((web / p).is_file() for p in paths)


def test_the_page_loads_the_map_and_search_works(pipeline):
    from playwright.sync_api import sync_playwright

    site, folder, _ = pipeline
    server = StaticServer(folder / "web")
    try:
        with sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page(viewport={"width": 900, "height": 650})
            watch = PageWatch(page)
            page.goto(f"{server.url}index.html?data.json")
            page.wait_for_function("window.posterMap && window.posterMap.ready", timeout=20000)
            page.fill("#search", "apollo")
            page.press("#search", "Enter")
            page.wait_for_selector("#panel:not([hidden])")
            wait_text(page, "#panel-title", "Apollo 13")
            page.fill("#search", "casino")
            page.press("#search", "Enter")
            page.wait_for_function("document.getElementById('panel-title').textContent.startsWith('Casino')")
            wait_text(page, "#panel-title", "Casino & <b>Co</b>")  # markup in a title stays text
            assert page.locator("#panel b").count() == 0
            watch.assert_clean()
            browser.close()
    finally:
        server.close()


def test_rerun_continues_without_downloading_again(pipeline, tmp_path):
    site, folder, _ = pipeline
    # On a copy: the shared pipeline's files stay as the other tests expect them, in any order.
    for sub in ("data", "web"):
        shutil.copytree(folder / sub, tmp_path / sub)
    proc, server = run_chain(site, tmp_path)
    assert server.image_requests() == []
    assert "computed 0" in proc.stdout
    # The pipeline's map has a grid, which an update cannot keep: stage 3 made it in full, and said why.
    assert "making the map in full" in proc.stderr and "grid" in proc.stderr
    data = tmp_path / "web" / "data.json"
    made = data.read_text()
    proc, _ = run_chain(site, tmp_path)  # a map without a grid, and nothing new: it is kept as it is
    assert "the map is up to date" in proc.stdout and data.read_text() == made
    proc, _ = run_chain(site, tmp_path, REBUILD="1")
    assert "mapped " in proc.stdout and read_map(data)["meta"]["run"] != json.loads(made)["meta"]["run"]


def test_a_failing_stage_stops_the_chain(tmp_path):
    env = dict(os.environ, RANGE="2016-1990", DATA_DIR=str(tmp_path / "data"), WEB_DIR=str(tmp_path / "web"))
    proc = subprocess.run(["bash", str(ROOT / "run-posters-cnn.sh")], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "runs backwards" in proc.stderr
    assert "2/3" not in proc.stderr
