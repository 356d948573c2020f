#!/usr/bin/env python3
"""The page with its titles read a tile at a time and its search shards fetched when first used, against the
page of an earlier commit that held every title and built the search index when idle: the same map, side by
side, alternating, in one run.

    python bench/bench_page_titles.py --map bench/out/scale-1000000/data.json --against 98aa716

``--map`` is a map as the earlier stage 3 wrote it (format 3 with ``title`` in its rows' files). Its twin
for this checkout's page is the same table written again by this checkout's ``maptable.write`` (the titles
in their own files, the search index in shards), beside it under ``assets/maps/titles-twin/``. Each page is
served from its own folder under ``bench/out/page-titles/`` (the page's files, ``assets`` a link to the
map's). For each page and repeat, in a fresh browser context each (headless Chromium, software rendering,
1280x800):

* ``rest``: the first view's time and bytes, then the view sweeps 1x, 4x, 16x and 64x round the map's
  densest place, and the JS heap after a full collection (issue 17: at most 150 MiB at 1,000,000 posters);
* ``lasso`` and ``cluster``: bench_page_clusters.py's lasso (a circle of 250 px at the whole map) and its
  largest cluster chosen, then the same sweep and heap;
* ``export``: the lasso's CSV export: seconds from the click to the download, rows, worst frame (issue 17:
  within 3 s, no frame over 100 ms);
* ``search``: the first keystroke typed as the search box gets the focus, right at ready, to its
  suggestions listed (issue 17: within 300 ms): the worst case, with no head start for what the focus
  fetches; and ``search_after_pointer_ms``, the same keystroke typed 300 ms after the pointer came over the
  box (a person's pointer reaches the box, clicks, then types);
* ``hover``: at 16x round the densest place, the pointer moved onto the posters at 9 places of the view in
  turn (a 3x3 grid), each from the pointer's move to its tooltip showing the title: the first hover of a
  tile reads its titles file (issue 17: hover answers within 100 ms anywhere).

Writes bench/out/page_titles.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from bench_page import SEARCH, centre_zoom
from bench_page_clusters import cluster, export, held_heap, lasso, open_map, settled
from common import OUT, ROOT, machine

from browser import StaticServer, copy_page, launch
from posters_cnn.contracts import maptable

# The pointer moved to (x, y) of the canvas, to the tooltip showing a title: text that is not the year alone,
# "(1995)", nor "…" (a tooltip still waiting for its title); null where no poster lies there.
HOVER = """([x, y]) => new Promise((resolve) => {
    const canvas = document.getElementById('map'), tip = document.getElementById('tooltip');
    const rect = canvas.getBoundingClientRect();
    tip.hidden = true;
    const start = performance.now();
    canvas.dispatchEvent(new PointerEvent('pointermove',
      {clientX: rect.left + x, clientY: rect.top + y, bubbles: true}));
    const poll = () => {
      if (tip.hidden && performance.now() - start > 50) return resolve(null);
      const t = tip.textContent;
      if (!tip.hidden && t && !t.startsWith('(') && t !== '…') return resolve(performance.now() - start);
      if (performance.now() - start > 5000) return resolve(-1);
      requestAnimationFrame(poll);
    };
    poll(); })"""

FIRST_VIEW = """() => { const t = window.posterMap.firstView;
    const bytes = performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))
      .filter(e => e.responseEnd <= t).reduce((s, e) => s + (e.encodedBodySize || 0), 0);
    return [t / 1000, bytes / 2 ** 20]; }"""


def base_page(folder: Path, rev: str) -> None:
    """The page's files as commit ``rev`` had them, into ``folder``."""
    names = subprocess.run(["git", "ls-tree", "--name-only", rev, "web/"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    for name in names:
        if name.endswith((".html", ".js", ".css")):
            body = subprocess.run(["git", "show", f"{rev}:{name}"], cwd=ROOT, capture_output=True, check=True).stdout
            (folder / Path(name).name).write_bytes(body)
    (folder / "vendor").mkdir(exist_ok=True)
    for vendor in (ROOT / "web" / "vendor").iterdir():
        shutil.copy(vendor, folder / "vendor" / vendor.name)


def twin(data_json: Path) -> dict:
    """The map's data.json for this checkout's page: its table written again beside it (once)."""
    meta, columns = maptable.read_columns(data_json)
    folder = data_json.parent / "assets" / "maps" / "titles-twin"
    if not (folder / "table" / "search").exists():
        shutil.rmtree(folder, ignore_errors=True)
        about = maptable.write(folder / "table", columns, meta)
        (folder / "about.json").write_text(json.dumps(about))
    about = json.loads((folder / "about.json").read_text())
    return {"meta": {**meta, "table": maptable.relocate(about, "assets/maps/titles-twin/table")}}


def folders(data_json: Path, rev: str) -> dict[str, Path]:
    out = OUT / "page-titles"
    made = {}
    for name in ("base", "ours"):
        web = out / name
        shutil.rmtree(web, ignore_errors=True)
        web.mkdir(parents=True)
        (web / "assets").symlink_to(data_json.parent.resolve() / "assets", target_is_directory=True)
        if name == "base":
            base_page(web, rev)
            shutil.copy(data_json, web / "data.json")
        else:
            copy_page(web)
            (web / "data.json").write_text(json.dumps(twin(data_json)))
        made[name] = web
    return made


def one_run(browser, url: str, scenario: str, meta: dict) -> dict:
    context, page = open_map(browser, url)
    got = {}
    try:
        if scenario == "rest":
            got["first_view_s"], got["first_view_mib"] = page.evaluate(FIRST_VIEW)
        elif scenario == "search":
            got["search_ms"] = page.evaluate(SEARCH, 0)
            return got
        elif scenario == "search_after_pointer":
            got["search_after_pointer_ms"] = page.evaluate(SEARCH, 300)
            return got
        elif scenario == "hover":
            centre_zoom(page, 16)
            settled(page)
            box = page.locator("#map").bounding_box()
            places = [(box["width"] * (1 + 2 * (k % 3)) / 6, box["height"] * (1 + 2 * (k // 3)) / 6) for k in range(9)]
            times = [t for t in (page.evaluate(HOVER, list(xy)) for xy in places) if t is not None]
            got.update(hover_median_ms=statistics.median(times), hover_max_ms=max(times), hovered=len(times))
            return got
        centre_zoom(page, 1)
        settled(page)
        if scenario == "lasso":
            frames, got["selected"] = lasso(page)
            got["worst_ms"] = max(frames)
        elif scenario == "cluster":
            got["worst_ms"] = max(cluster(page, meta))
        elif scenario == "export":
            frames, got["export_s"], got["rows"] = export(page)
            got["worst_ms"] = max(frames)
            return got
        got["heap_mib"] = round(held_heap(context, page), 1)
        return got
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--map", required=True, help="a data.json whose table holds its titles in the rows' files")
    parser.add_argument("--against", default="98aa716", help="the commit whose page is the baseline")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--scenarios", default="rest,search,search_after_pointer,hover,lasso,cluster,export")
    parser.add_argument("--json", default=str(OUT / "page_titles.json"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    data_json = Path(args.map)
    meta = json.loads(data_json.read_text())["meta"]
    if "titles" in meta.get("table", {}):
        raise SystemExit(f"{data_json} already keeps its titles in files of their own: give an earlier map")
    webs = folders(data_json, args.against)
    print(f"machine: {machine()}; headless Chromium, software rendering, 1280x800", flush=True)
    results = {name: {s: [] for s in args.scenarios.split(",")} for name in webs}
    servers = {name: StaticServer(web) for name, web in webs.items()}
    try:
        with sync_playwright() as p:
            browser = launch(p)
            for _ in range(args.repeats):
                for scenario in args.scenarios.split(","):
                    for name in ("base", "ours"):  # alternating, the same scenario side by side
                        got = one_run(browser, servers[name].url + "index.html?data.json", scenario, meta)
                        results[name][scenario].append(got)
                        print(name, scenario, got, flush=True)
            browser.close()
    finally:
        for server in servers.values():
            server.close()
    summary = {name: {scenario: {key: statistics.median(run[key] for run in runs) for key in runs[0]}
                      for scenario, runs in by.items() if runs} for name, by in results.items()}
    out = {"machine": machine(), "map": str(data_json), "rows": meta["table"]["rows"], "against": args.against,
           "command": " ".join(["python bench/bench_page_titles.py", *sys.argv[1:]]), "runs": results,
           "medians": summary}
    Path(args.json).write_text(json.dumps(out, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
