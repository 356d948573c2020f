#!/usr/bin/env python3
"""The page at 300, 3k, 30k and 100k posters: first view, continuous zoom and pan, sharpness, memory.

    python bench/bench_page.py [--sizes 300,3000,30000,100000] [--repeats 3] [--no-baseline]

For each size, stage 3 maps synthetic clustered features on real bench posters
(duplicated past 4,116; see synthetic.py) into bench/out/page-N/. The baseline
is the page as it was before the tile renderer (commit BASELINE: one canvas,
an overview bitmap, sprite sheets in data order), with its own stage 3, from a
git worktree in bench/out/baseline/, into bench/out/page-N-baseline/. Both
are served by a local HTTP server and opened in Debian's Chromium (headless,
software rendering, 1280x800, device pixel ratio 1), one after the other.

Measured, median of --repeats, each in a fresh browser context (cold caches):

* first view: navigation to the first frame in which the whole view is drawn at
  the resolution it needs (ours: every tile of the view's level ready; the
  baseline: its first draw, after every sprite sheet), and the bytes
  downloaded before it;
* zoom: real wheel events, from the whole map to 64x and back over 8 s, into
  a dense cluster (poster 0's place); pan: a mouse drag at 16x for 3 s. Frame times are the
  intervals between animation frames while it runs (median and max);
* sharpness: the share of visible posters drawn from an image smaller than
  their size on screen (below the 256-px thumbnail), after the view has rested
  1 s at 1x, 4x, 16x, 32x and 64x, centred on that cluster (for the baseline,
  worked out from what it draws: the 64-px cells of its sprite sheets, or the
  thumbnails once loaded);
* the JS heap after all of it (`performance.memory`), and again after a full collection.
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import OUT, ROOT, machine
from synthetic import make_inputs

sys.path.insert(0, str(ROOT / "tests"))
from browser import VENDOR_FILES, StaticServer, copy_page, launch  # noqa: E402

BASELINE = "a8ee326"  # main before the tile renderer

# The first keystroke of a search ("a"), typed as the box gets the focus, `lead` ms after the pointer came
# over the box (0: in the same task, no head start for what those fetch): from the input event to its
# suggestions listed, polled every animation frame (bench_map_format.py, bench_page_titles.py).
SEARCH = """(lead) => new Promise((resolve) => {
  const input = document.getElementById('search');
  if (lead) input.dispatchEvent(new PointerEvent('pointerenter'));
  setTimeout(() => {
    input.focus();
    const start = performance.now(); input.value = 'a'; input.dispatchEvent(new Event('input'));
    const poll = () => (document.querySelectorAll('#suggestions li').length
      ? resolve(performance.now() - start) : requestAnimationFrame(poll));
    poll(); }, lead); })"""

FRAMES_START = """() => { window.__frames = []; window.__recording = true; let last = performance.now();
  const tick = (now) => { window.__frames.push(now - last); last = now; if (window.__recording) requestAnimationFrame(tick); };
  requestAnimationFrame(tick); }"""
FRAMES_STOP = "() => { window.__recording = false; return window.__frames.slice(1); }"

SHARPNESS_BASELINE = """() => {
  const s = window.posterMap.state, t = s.transform, dpr = s.dpr, lod = s.drawStats.lod;
  let visible = 0, enlarged = 0;
  const v = {x0: -t.x / t.k, y0: -t.y / t.k, x1: (s.width - t.x) / t.k, y1: (s.height - t.y) / t.k};
  for (let i = 0; i < s.n; i++) {
    const p = s.points[i];
    if (s.wx[i] < v.x0 || s.wx[i] > v.x1 || s.wy[i] < v.y0 || s.wy[i] > v.y1) continue;
    visible += 1;
    const h = s.slot * p.ah / Math.max(p.aw, p.ah);
    const screen = h * t.k * dpr;
    // The overview bitmap and the sprites are both drawn from the 64-px cells of the sprite sheets.
    let source = lod === "overview" ? Math.min(h * s.overviewScale, p.ah) : p.ah;
    if (lod === "images") { const img = s.bigImages.get(p.id); if (img && img.complete && img.naturalHeight) source = img.naturalHeight; }
    if (source < screen * 0.99 && source < 256 * 0.99) enlarged += 1;
  }
  return {visible, enlarged};
}"""


def baseline_tree() -> Path:
    tree = OUT / "baseline"
    if not (tree / "get_data_visu.py").exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--force", "--detach", str(tree), BASELINE],
                       check=True, capture_output=True)
    (tree / "web" / "vendor").mkdir(parents=True, exist_ok=True)
    for name in VENDOR_FILES:
        shutil.copy(ROOT / "web" / "vendor" / name, tree / "web" / "vendor" / name)
    return tree


def prepare(n: int, baseline: bool) -> Path:
    """The map of n posters made by our stage 3 (or the baseline's), with its page beside it."""
    web = OUT / (f"page-{n}-baseline" if baseline else f"page-{n}")
    root = baseline_tree() if baseline else ROOT
    if not (web / "data.json").exists():
        features, manifest = make_inputs(n)
        subprocess.run([sys.executable, str(root / "get_data_visu.py"), "-i", str(features), "--posters",
                        str(manifest), "-o", str(web / "data.json"), "--n-sample", "0", "--no-pair-images", "-q"],
                       check=True, cwd=root)
    if baseline:
        for name in ("index.html", "app.js", "logic.js", "style.css"):
            shutil.copy(root / "web" / name, web / name)
        (web / "vendor").mkdir(exist_ok=True)
        for name in VENDOR_FILES:
            shutil.copy(ROOT / "web" / "vendor" / name, web / "vendor" / name)
    else:
        copy_page(web)
    return web


def rest(page, ours: bool, seconds: float = 1.0) -> None:
    time.sleep(seconds)  # what is measured: the view after resting a second, as a person would see it


def sharpness(page, ours: bool) -> dict:
    return page.evaluate("window.posterMap.sharpness()" if ours else SHARPNESS_BASELINE)


# Poster 0's place on the map (both pages lay out the same inputs identically): inside a cluster, where
# posters are densest and the most are in view at every zoom.
DENSE = """() => { const s = window.posterMap.state, l = s.layouts ? s.layouts.tsne : s;
    return [l.wx[0], l.wy[0]]; }"""


def centre_zoom(page, k: float) -> None:
    """Poster 0 at the centre of the view at zoom k: through the page's test API (placePoster), or, on a
    baseline page made before it (the SVG page, earlier commits), through its state."""
    page.evaluate("""([k, dense]) => { const m = window.posterMap;
        // idAt where the page has it: ids() makes a string of every id, which at 1M posters leaves the
        // garbage collector a 0.4-0.6 s pause in the frames measured next.
        if (m.placePoster) { const v = m.view(); m.placePoster(m.idAt ? m.idAt(0) : m.ids()[0], k, v.width / 2, v.height / 2); return; }
        const s = m.state;
        m.zoomTo(k, s.width / 2 - dense[0] * k, s.height / 2 - dense[1] * k); }""",
                  [k, None if page.evaluate("!!window.posterMap.placePoster") else page.evaluate(DENSE)])


def measure(browser, url: str, ours: bool) -> dict:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(url)
    page.wait_for_function("window.posterMap && window.posterMap.ready", timeout=600_000, polling=50)
    if ours:
        page.wait_for_function("window.posterMap.firstView", timeout=600_000, polling=50)
        first = page.evaluate("window.posterMap.firstView")
    else:
        first = page.evaluate("window.posterMap.firstDraw")
    first_bytes = page.evaluate("""t => performance.getEntriesByType('navigation').concat(
        performance.getEntriesByType('resource')).filter(e => e.responseEnd <= t)
        .reduce((s, e) => s + (e.encodedBodySize || 0), 0)""", first)
    box = page.locator("#map").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    centre_zoom(page, 1)  # the wheel zooms into the pointer: put a dense cluster under it
    page.mouse.move(cx, cy)
    # Zoom: whole map -> 64x -> whole map in 8 s of wheel events (d3-zoom: k *= 2^(-deltaY / 500)).
    page.evaluate(FRAMES_START)
    steps = 240
    start = time.perf_counter()
    for i in range(2 * steps):
        if time.perf_counter() - start > 40:
            break  # a page that takes seconds a frame would take hours: its frames so far say enough
        page.mouse.wheel(0, -3000 / steps if i < steps else 3000 / steps)
        wait = start + (i + 1) * 8.0 / (2 * steps) - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
    zoom_frames = page.evaluate(FRAMES_STOP)
    # Pan at 16x, dragging with the mouse for 3 s.
    centre_zoom(page, 16)
    page.evaluate(FRAMES_START)
    page.mouse.move(cx - 300, cy)
    page.mouse.down()
    start = time.perf_counter()
    for i in range(180):
        if time.perf_counter() - start > 20:
            break
        page.mouse.move(cx - 300 + 600 * (i + 1) / 180, cy + 100 * ((i % 60) / 60 - 0.5))
        wait = start + (i + 1) * 3.0 / 180 - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
    page.mouse.up()
    pan_frames = page.evaluate(FRAMES_STOP)
    sharp = {}
    for k in (1, 4, 16, 32, 64):
        centre_zoom(page, k)
        rest(page, ours)
        s = sharpness(page, ours)
        sharp[k] = s["enlarged"] / max(1, s["visible"])
    heap = page.evaluate("performance.memory.usedJSHeapSize") / 2**20
    # The same after a full collection (DevTools' "collect garbage"): what the page holds, not what it has
    # left for the collector yet.
    cdp = context.new_cdp_session(page)
    cdp.send("HeapProfiler.collectGarbage")
    held = page.evaluate("performance.memory.usedJSHeapSize") / 2**20
    context.close()
    frames = zoom_frames + pan_frames
    return {"first_view_s": first / 1000, "first_view_mib": first_bytes / 2**20,
            "zoom_median_ms": statistics.median(zoom_frames), "zoom_max_ms": max(zoom_frames),
            "pan_median_ms": statistics.median(pan_frames), "pan_max_ms": max(pan_frames),
            "frames": len(frames), "enlarged_share": sharp, "heap_mib": heap, "heap_collected_mib": held}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="300,3000,30000,100000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--json", default=str(OUT / "page.json"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    print(f"machine: {machine()}; headless Chromium, software rendering, 1280x800", flush=True)
    results = []
    with sync_playwright() as p:
        browser = launch(p)
        for n in map(int, args.sizes.split(",")):
            for name, baseline in (("tiles (ours)", False), ("baseline", True)):
                if baseline and args.no_baseline:
                    continue
                web = prepare(n, baseline)
                server = StaticServer(web)
                try:
                    runs = [measure(browser, server.url + "index.html?data.json", not baseline)
                            for _ in range(args.repeats)]
                finally:
                    server.close()
                med = {key: statistics.median(r[key] for r in runs) for key in runs[0]
                       if key != "enlarged_share"}
                med["enlarged_share"] = {k: statistics.median(r["enlarged_share"][k] for r in runs)
                                         for k in runs[0]["enlarged_share"]}
                med["zoom_max_ms"] = max(r["zoom_max_ms"] for r in runs)  # the worst frame of all runs
                med["pan_max_ms"] = max(r["pan_max_ms"] for r in runs)
                results.append({"n": n, "page": name, **med, "runs": runs})
                share = " ".join(f"{k}x:{v:.2f}" for k, v in med["enlarged_share"].items())
                print(f"n={n:6d} {name:12s} first view {med['first_view_s']:5.2f}s {med['first_view_mib']:6.1f} MiB | "
                      f"zoom median {med['zoom_median_ms']:6.1f} ms max {med['zoom_max_ms']:7.1f} | "
                      f"pan median {med['pan_median_ms']:6.1f} max {med['pan_max_ms']:7.1f} | "
                      f"enlarged {share} | heap {med['heap_mib']:.0f} MiB, "
                      f"{med['heap_collected_mib']:.0f} MiB collected", flush=True)
        browser.close()
    with open(args.json, "w") as fh:
        json.dump({"machine": machine(), "results": results}, fh, indent=1)


if __name__ == "__main__":
    main()
