#!/usr/bin/env python3
"""Full posters at the deepest zooms, against the page before them, on the same map.

    python bench/bench_full_posters.py [--n 100000] [--before 35003bc] [--repeats 3]

The map is bench_page.py's (stage 3 on synthetic features over the real bench posters, bench/out/page-N/).
It is served twice by one local HTTP server: with this page, and with the page of commit --before (its
web/ files from git, in a folder beside the map whose data.json and assets are links to the map's).
Debian's Chromium, headless (software rendering), 1280x800, device pixel ratio 1; each run a fresh
context, the two pages alternating (before, now, before, now, ...).

Per run, with poster 0 (in a dense cluster) in the middle of the view at three zooms, each where a poster
is 200, 400 and 650 px tall on screen (the thumbnails are 256 px):

* what the view shows once it rests: posters in view, drawn enlarged (from an image smaller than they are
  on screen, below the thumbnail's size), drawn from their full poster; and how sharp poster 0 is: the
  mean difference between neighbouring pixels across its middle (more detail, higher);
* the time until the page says it has settled after the jump, and the full posters' bytes fetched;
* frame times while the mouse drags the view for 3 s at the 650-px zoom (median and worst).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

from bench_page import FRAMES_START, FRAMES_STOP, prepare
from common import OUT, machine

from browser import StaticServer, launch

ROOT = Path(__file__).resolve().parent.parent
HEIGHTS = (200, 400, 650)

DETAIL = """() => {
    const c = document.getElementById('map'), r = c.getBoundingClientRect();
    const id = window.posterMap.ids()[0], b = window.posterMap.screenBox(id);
    const y = Math.round((b.y0 + b.y1) / 2 - r.top);
    const x0 = Math.round(b.x0 + 0.2 * (b.x1 - b.x0) - r.left), x1 = Math.round(b.x0 + 0.8 * (b.x1 - b.x0) - r.left);
    const d = c.getContext('2d').getImageData(x0, y, Math.max(2, x1 - x0), 1).data;
    let sum = 0;
    for (let i = 4; i < d.length; i += 4) sum += Math.abs(d[i] - d[i - 4]) + Math.abs(d[i + 1] - d[i - 3]);
    return sum / (d.length / 4 - 1) / 2; }"""

FULL_BYTES = """() => performance.getEntriesByType('resource').filter(e => e.name.includes('/assets/posters/'))
    .reduce((s, e) => s + (e.encodedBodySize || 0), 0)"""


def page_of(commit: str, web: Path) -> Path:
    """A folder serving the map in `web` with the page of `commit`."""
    folder = OUT / f"{web.name}-page-{commit}"
    folder.mkdir(exist_ok=True)
    for name in ("data.json", "assets", "vendor"):
        link = folder / name
        if not link.exists():
            link.symlink_to(web / name)
    files = subprocess.run(["git", "ls-tree", "--name-only", commit, "web/"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    for path in files:
        name = Path(path).name
        if name == "vendor":
            continue
        (folder / name).write_bytes(subprocess.run(["git", "show", f"{commit}:{path}"], cwd=ROOT, check=True,
                                                   capture_output=True).stdout)
    return folder


def settle(page, limit: float = 20.0) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < limit:
        if page.evaluate("window.posterMap.settled()"):
            return time.perf_counter() - start
        page.wait_for_timeout(25)
    return float("nan")


def run(browser, url: str) -> dict:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(url)
    page.wait_for_function("window.posterMap && window.posterMap.ready", timeout=600_000, polling=50)
    settle(page, 60)
    slot = page.evaluate("window.posterMap.view().slot")
    out = {}
    for height in HEIGHTS:
        before = page.evaluate(FULL_BYTES)
        page.evaluate("""(k) => { const m = window.posterMap, v = m.view();
            m.placePoster(m.ids()[0], k, v.width / 2, v.height / 2); }""", height / slot)
        page.wait_for_timeout(200)  # the view rests: full posters are asked for then
        seconds = settle(page)
        page.wait_for_timeout(300)
        sharp = page.evaluate("window.posterMap.sharpness()")
        out[height] = {"settle_s": seconds, "visible": sharp["visible"], "enlarged": sharp["enlarged"],
                       "full": sharp.get("full", 0), "detail": page.evaluate(DETAIL),
                       "full_kib": (page.evaluate(FULL_BYTES) - before) / 1024}
    box = page.locator("#map").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx - 300, cy)
    page.evaluate(FRAMES_START)
    page.mouse.down()
    start = time.perf_counter()
    for i in range(180):
        page.mouse.move(cx - 300 + 600 * (i + 1) / 180, cy + 100 * ((i % 60) / 60 - 0.5))
        wait = start + (i + 1) * 3.0 / 180 - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
    page.mouse.up()
    frames = page.evaluate(FRAMES_STOP)
    out["pan"] = {"median_ms": statistics.median(frames), "max_ms": max(frames), "frames": len(frames)}
    context.close()
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--before", default="35003bc")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    web = prepare(args.n, baseline=False)
    old = page_of(args.before, web)
    server = StaticServer(OUT)
    rows = {"before": [], "now": []}
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        for _ in range(args.repeats):
            for name, folder in (("before", old), ("now", web)):
                rows[name].append(run(browser, f"{server.url}{folder.name}/index.html?data.json"))
                print(name, json.dumps(rows[name][-1]), flush=True)
        browser.close()
    server.close()

    def median(name, height, key):
        return statistics.median(r[height][key] for r in rows[name])

    summary = {"machine": machine(), "n": args.n, "before": args.before, "repeats": args.repeats, "runs": rows,
               "median": {name: {str(h): {key: median(name, h, key) for key in rows[name][0][h]}
                                 for h in (*HEIGHTS, "pan")} for name in rows}}
    (OUT / f"full_posters_{args.n}.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary["median"], indent=1))


if __name__ == "__main__":
    main()
