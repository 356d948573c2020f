#!/usr/bin/env python3
"""Frame times while a person uses the clusters: colours switched, a lasso drawn, a cluster chosen.

    python bench/bench_page_clusters.py [--sizes 3000,100000] [--repeats 3]

The maps are bench_page.py's (stage 3 on synthetic clustered features, bench/out/page-N/, made
again if they have no clusters), served by a local HTTP server and opened in Debian's Chromium
(headless, software rendering, 1280x800, device pixel ratio 1). Each scenario runs in a fresh
browser context once the first view has settled; its frame times are the intervals between
animation frames from the first input until the view has settled again (or 6 s):

* colours: "colour by cluster" ticked at the whole map, then "colour by decade", then cluster
  again, at 16x on a dense place (each switch recomposes the overlay tiles);
* lasso: a shift-drag round a circle of 250 px at the whole map, 120 pointer moves in 2 s, then
  the selection of the posters inside and the dimming of the rest;
* region: the largest region chosen in the Clusters panel: the flight to it, the dimming and its
  years' histogram;
* cluster: the largest cluster chosen in the Clusters panel (its region opened first): likewise.

* export: the lasso above, then its CSV exported: the frames from the click to the file's download, and
  the time it took (`export_s`) with the rows it holds.

After each scenario, with its colours or selection still on, the view visits 1x, 4x, 16x and 64x round the
dense place and settles at each (the overlays of every level are made), then the JS heap is read after a full
collection (`heap_mib`: what the page holds with a colouring or a selection; issue 17: at most 150 MiB at
1,000,000 posters after a zoom sweep).

The targets: no frame over 50 ms (issue 17: a lasso and its export, none over 100 ms; the export of a lasso
round 30% of the map within 3 s). Median and worst frame per scenario, over all repeats.
"""

import argparse
import csv
import json
import math
import statistics
import time

from bench_page import FRAMES_START, FRAMES_STOP, centre_zoom, prepare
from common import OUT, machine

from browser import StaticServer, launch


def settled(page, limit=6.0):
    start = time.perf_counter()
    while time.perf_counter() - start < limit:
        if page.evaluate("window.posterMap.settled()"):
            return True
        page.wait_for_timeout(50)
    return False


def open_map(browser, url):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(url)
    page.wait_for_function("window.posterMap && window.posterMap.ready && window.posterMap.firstView",
                           timeout=600_000, polling=50)
    settled(page, 60)
    return context, page


def held_heap(context, page):
    """The JS heap in MiB after the view has visited 1x to 64x and a full collection."""
    for k in (1, 4, 16, 64):
        centre_zoom(page, k)
        settled(page)
    context.new_cdp_session(page).send("HeapProfiler.collectGarbage")
    return page.evaluate("performance.memory.usedJSHeapSize") / 2**20


def colours(page):
    page.evaluate(FRAMES_START)
    page.check("#cluster-colours")
    settled(page)
    centre_zoom(page, 16)
    settled(page)
    page.check("#decades")
    settled(page)
    page.check("#cluster-colours")
    settled(page)
    return page.evaluate(FRAMES_STOP)


def lasso(page, record=True):
    box = page.locator("#map").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.evaluate(FRAMES_START)
    page.keyboard.down("Shift")
    page.mouse.move(cx + 250, cy)
    page.mouse.down()
    start = time.perf_counter()
    for i in range(1, 121):
        a = 2 * math.pi * i / 120
        page.mouse.move(cx + 250 * math.cos(a), cy + 250 * math.sin(a))
        wait = start + i * 2.0 / 120 - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
    page.mouse.up()
    page.keyboard.up("Shift")
    settled(page)
    frames = page.evaluate(FRAMES_STOP)
    if not record:
        return frames, None
    count = len(page.evaluate("window.posterMap.selection() || []"))
    return frames, count


def export(page):
    """The lasso, then its export: (frames from the click to the download, seconds, rows in the file)."""
    lasso(page, record=False)
    page.evaluate(FRAMES_START)
    start = time.perf_counter()
    with page.expect_download(timeout=120_000) as download:
        page.click("#selection-export")
    path = download.value.path()
    seconds = time.perf_counter() - start
    settled(page)
    frames = page.evaluate(FRAMES_STOP)
    with open(path, encoding="utf-8", newline="") as fh:
        rows = sum(1 for _ in csv.reader(fh)) - 1
    return frames, seconds, rows


def region(page):
    page.click("#show-clusters")
    page.evaluate(FRAMES_START)
    page.click("#clusters-list button[data-region='0']")
    settled(page)
    return page.evaluate(FRAMES_STOP)


def cluster(page, meta):
    page.click("#show-clusters")
    region = meta["clusters"][0].get("region")
    if region is not None:  # a map with regions: open the one that holds cluster 0 (listed in id order)
        page.locator("#clusters-list > li.region").nth(region).locator("button.open").click()
    page.evaluate(FRAMES_START)
    page.click("#clusters-list button[data-cluster='0']")
    settled(page)
    return page.evaluate(FRAMES_STOP)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="3000,100000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scenarios", default="colours,lasso,region,cluster,export")
    parser.add_argument("--json", default=str(OUT / "page_clusters.json"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    print(f"machine: {machine()}; headless Chromium, software rendering, 1280x800", flush=True)
    results = []
    with sync_playwright() as p:
        browser = launch(p)
        for n in map(int, args.sizes.split(",")):
            data = OUT / f"page-{n}" / "data.json"
            if data.exists() and "regions" not in json.loads(data.read_text())["meta"]:
                data.unlink()  # made before stage 3 found clusters and regions
            web = prepare(n, baseline=False)
            meta = json.loads(data.read_text())["meta"]
            server = StaticServer(web)
            url = server.url + "index.html?data.json"
            runs = {name: [] for name in args.scenarios.split(",")}
            selected = []
            exports = []
            heaps = {name: [] for name in runs}
            try:
                for _ in range(args.repeats):
                    for name in runs:
                        context, page = open_map(browser, url)
                        centre_zoom(page, 1)
                        settled(page)
                        if name == "lasso":
                            frames, count = lasso(page)
                            selected.append(count)
                        elif name == "export":
                            frames, seconds, rows = export(page)
                            exports.append((round(seconds, 2), rows))
                        else:
                            frames = {"colours": colours, "region": region,
                                      "cluster": lambda page: cluster(page, meta)}[name](page)
                        runs[name].extend(frames)
                        heaps[name].append(round(held_heap(context, page), 1))
                        context.close()
            finally:
                server.close()
            for name, frames in runs.items():
                row = {"n": n, "scenario": name, "frames": len(frames),
                       "median_ms": round(statistics.median(frames), 1),
                       "max_ms": round(max(frames), 1), "over_50ms": sum(f > 50 for f in frames),
                       "heap_mib": heaps[name]}
                if name == "lasso":
                    row["selected"] = selected
                if name == "export":
                    row["export_s"] = [seconds for seconds, _ in exports]
                    row["rows"] = [rows for _, rows in exports]
                    row["export_median_s"] = statistics.median(row["export_s"])
                results.append(row)
                print(row, flush=True)
        browser.close()
    with open(args.json, "w") as fh:
        json.dump({"machine": machine(), "results": results}, fh, indent=1)


if __name__ == "__main__":
    main()
