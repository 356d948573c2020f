#!/usr/bin/env python3
"""The page: first draw and frames per second at 3k and 30k posters, against the original's SVG page.

    python bench/bench_page.py [--sizes 3000,30000] [--seconds 3] [--repeats 3]

For each size, stage 3 maps synthetic features on real bench posters
(duplicated past 4,116; see synthetic.py) into bench/out/page-N/. Both pages
are served by a local HTTP server and opened in Debian's Chromium (headless,
software rendering, a 1280x800 viewport, device pixel ratio 1):

* ours: web/index.html;
* baseline: bench/svg_page.html, one SVG <image> per poster (the original's approach).

"first draw" is the time from data.json's arrival to the first complete draw
(for the SVG page: every <image> loaded, then a frame). "fps" is the number
of frames the browser presents while a script pans and zooms on every
animation frame for --seconds, at three zoom levels (whole map, 4x, 16x),
counted with requestAnimationFrame; the median over --repeats is kept.
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from common import OUT, ROOT, machine
from synthetic import make_inputs

sys.path.insert(0, str(ROOT / "tests"))
from browser import StaticServer, copy_page, launch  # noqa: E402

MEASURE = """async ({seconds, k, svg}) => {
  const m = window.posterMap;
  const w = innerWidth, h = innerHeight;
  const side = svg ? m.side : m.state.side;
  return await new Promise((resolve) => {
    let frames = 0; const start = performance.now();
    function step(now) {
      const t = (now - start) / 1000;
      const kk = k * (1 + 0.05 * Math.sin(t * 3));
      const cx = side / 2 + side * 0.2 * Math.sin(t), cy = side / 2 + side * 0.2 * Math.cos(t);
      m.zoomTo(kk, w / 2 - cx * kk, h / 2 - cy * kk);
      frames += 1;
      if (t < seconds) requestAnimationFrame(step); else resolve(frames / t);
    }
    requestAnimationFrame(step);
  });
}"""


def prepare(n: int) -> Path:
    web = OUT / f"page-{n}"
    if not (web / "data.json").exists():
        features, manifest = make_inputs(n)
        subprocess.run([sys.executable, str(ROOT / "get_data_visu.py"), "-i", str(features), "--posters",
                        str(manifest), "-o", str(web / "data.json"), "--n-sample", "0", "--no-pair-images", "-q"],
                       check=True)
    copy_page(web)
    shutil.copy(ROOT / "bench" / "svg_page.html", web / "svg_page.html")
    return web


def measure(browser, url: str, svg: bool, seconds: float):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(url)
    page.wait_for_function("window.posterMap && window.posterMap.ready", timeout=300_000, polling=50)
    first = page.evaluate("window.posterMap.firstDraw - window.posterMap.dataArrived") / 1000
    fps = [page.evaluate(MEASURE, {"seconds": seconds, "k": k, "svg": svg}) for k in (1, 4, 16)]
    page.close()
    return first, fps


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="3000,30000")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=str(OUT / "page.json"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    print(f"machine: {machine()}; headless Chromium, software rendering, 1280x800")
    results = []
    with sync_playwright() as p:
        browser = launch(p)
        for n in map(int, args.sizes.split(",")):
            web = prepare(n)
            server = StaticServer(web)
            try:
                for name, page, svg in (("canvas (ours)", "index.html?data.json", False),
                                        ("SVG (original)", "svg_page.html", True)):
                    runs = [measure(browser, server.url + page, svg, args.seconds) for _ in range(args.repeats)]
                    first = statistics.median(r[0] for r in runs)
                    fps = [statistics.median(r[1][i] for r in runs) for i in range(3)]
                    results.append({"n": n, "page": name, "first_draw_s": round(first, 3),
                                    "fps_whole": round(fps[0], 1), "fps_4x": round(fps[1], 1),
                                    "fps_16x": round(fps[2], 1)})
                    print(f"n={n} {name:15s} first draw {first:6.2f}s  fps whole {fps[0]:5.1f}  "
                          f"4x {fps[1]:5.1f}  16x {fps[2]:5.1f}", flush=True)
            finally:
                server.close()
        browser.close()
    with open(args.json, "w") as fh:
        json.dump({"machine": machine(), "results": results}, fh, indent=1)


if __name__ == "__main__":
    main()
