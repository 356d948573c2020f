#!/usr/bin/env python3
"""Full posters at the deepest zooms: what they cost, against the page before them, on the same map.

    python bench/bench_full_posters.py [--n 3000] [--scale 3] [--before 35003bc] [--repeats 3]

The bench posters are all 268 px tall, hardly taller than their 256-px thumbnails, so a map of them asks
for no full poster (stage 3 writes each full image's height). Here each is enlarged --scale times
(LANCZOS) into a map of its own, bench/out/full-posters-N/: as tall as real posters are, but with no
more detail than the 268-px original, so this measures what full posters cost, not what they show (the
tests show that: tests/test_page_full.py). Stage 3 (this code) maps synthetic features over them; the
map is served with this page and with the page of commit --before (its web/ files from git, in a folder
beside the map whose data.json and assets are links to this one's), by one local HTTP server.
Debian's Chromium, headless (software rendering), 1280x800, device pixel ratio 1; each run a fresh
context, the two pages alternating (before, now, before, now, ...).

Per run, with poster 0 (in a dense cluster) in the middle of the view at zooms where a poster is 200, 400
and 650 px tall on screen: the time until the page says it has settled after the jump, the posters in
view, those drawn enlarged (from an image smaller than they are on screen, up to the largest image there
is) and from their full poster, and the full posters' bytes fetched; then frame times while the mouse
drags the view at the 650-px zoom (180 moves meant to take 3 s: median and worst frame, and how long the
drag took, which grows when the page holds each move up), and the JS heap.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_page import FRAMES_START, FRAMES_STOP
from common import OUT, machine
from synthetic import make_inputs

from browser import StaticServer, launch

ROOT = Path(__file__).resolve().parent.parent
HEIGHTS = (200, 400, 650)

FULL_BYTES = """() => performance.getEntriesByType('resource').filter(e => e.name.includes('/assets/posters/'))
    .reduce((s, e) => s + (e.encodedBodySize || 0), 0)"""


def enlarged_map(n: int, scale: float) -> Path:
    """The map of n synthetic posters whose full images are the bench posters enlarged `scale` times."""
    import pandas as pd
    from PIL import Image

    from browser import copy_page

    folder = OUT / f"full-posters-{n}"
    web = folder / "web"
    if not (web / "data.json").exists():
        features, manifest = make_inputs(n)
        rows = pd.read_csv(manifest, keep_default_na=False)
        for k, row in rows.iterrows():
            target = folder / row.image_path
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                with Image.open(manifest.parent / row.image_path) as image:
                    size = (round(image.width * scale), round(image.height * scale))
                    image.convert("RGB").resize(size, Image.LANCZOS).save(target, quality=90)
            thumb = folder / row.thumb_path
            if not thumb.exists():
                thumb.parent.mkdir(parents=True, exist_ok=True)
                thumb.hardlink_to(manifest.parent / row.thumb_path)
            rows.loc[k, "width"], rows.loc[k, "height"] = int(row.width * scale), int(row.height * scale)
        rows.to_csv(folder / "posters.csv", index=False)
        subprocess.run([sys.executable, str(ROOT / "get_data_visu.py"), "-i", str(features), "--posters",
                        str(folder / "posters.csv"), "-o", str(web / "data.json"), "--no-pair-images", "-q",
                        "--no-progress"], check=True, cwd=ROOT)
    copy_page(web)
    return web


def page_of(commit: str, web: Path) -> Path:
    """A folder serving the map in `web` with the page of `commit`."""
    folder = web.parent / f"page-{commit}"
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
    page.evaluate("performance.setResourceTimingBufferSize(100000)")
    page.wait_for_function("window.posterMap && window.posterMap.ready", timeout=600_000, polling=50)
    settle(page, 60)
    slot = page.evaluate("window.posterMap.view().slot")
    out = {}
    for height in HEIGHTS:
        before = page.evaluate(FULL_BYTES)
        page.evaluate("""(k) => { const m = window.posterMap, v = m.view();
            m.placePoster(m.idAt ? m.idAt(0) : m.ids()[0], k, v.width / 2, v.height / 2); }""", height / slot)
        page.wait_for_timeout(200)  # the view rests: full posters are asked for then
        seconds = settle(page)
        page.wait_for_timeout(300)
        sharp = page.evaluate("window.posterMap.sharpness()")
        out[height] = {"settle_s": seconds, "visible": sharp["visible"], "enlarged": sharp["enlarged"],
                       "full": sharp.get("full", 0), "full_kib": (page.evaluate(FULL_BYTES) - before) / 1024}
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
    dragged = time.perf_counter() - start  # 3 s when the page takes each move as it comes
    frames = page.evaluate(FRAMES_STOP)
    out["pan"] = {"median_ms": statistics.median(frames), "max_ms": max(frames), "frames": len(frames),
                  "drag_s": dragged,
                  "heap_mib": page.evaluate("performance.memory.usedJSHeapSize") / 2**20}
    context.close()
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--scale", type=float, default=3.0)
    parser.add_argument("--before", default="35003bc")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    web = enlarged_map(args.n, args.scale)
    old = page_of(args.before, web)
    server = StaticServer(web.parent)
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

    summary = {"machine": machine(), "n": args.n, "scale": args.scale, "before": args.before, "repeats": args.repeats, "runs": rows,
               "median": {name: {str(h): {key: median(name, h, key) for key in rows[name][0][h]}
                                 for h in (*HEIGHTS, "pan")} for name in rows}}
    (OUT / f"full_posters_{args.n}.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary["median"], indent=1))


if __name__ == "__main__":
    main()
