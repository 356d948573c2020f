#!/usr/bin/env python3
"""How soon the page answers hover and click, anywhere in the view.

    python bench/bench_page_answers.py [--sizes 100000,1000000] [--repeats 2]

On bench_page.py's maps (bench/out/page-N/, made if missing), served by a local HTTP server and opened in
Debian's Chromium (headless, software rendering, 1280x800, device pixel ratio 1). At zoom 1, 4, 16 and
64, with poster 0 (inside a dense cluster) at the centre of the view and the view settled, the pointer
moves to each of 24 places (a 6x4 grid over the view), then clicks on 6 of them:

* hover: from the pointermove event (its timeStamp: when the input came, so time the page was busy
  counts) to the start of the next frame after the page's handler ran, with the tooltip shown (a poster
  under the pointer) or hidden (none);
* click: from the click event likewise, with the poster's panel open (or closed: none there).

Median and worst per size, over all places, zooms and repeats, with how many found a poster.
The target (issue 17): every answer within 100 ms, at 1,000,000 posters too.
"""

import argparse
import json
import statistics

from bench_page import centre_zoom, prepare
from bench_page_clusters import open_map, settled
from common import OUT, machine

from browser import StaticServer, launch

ZOOMS = (1, 4, 16, 64)

# After the page's own listeners (on the canvas), for each pointermove and click: the time from the event
# to the next animation frame, and what the page shows then.
LISTEN = """() => {
  window.__answers = [];
  for (const type of ["pointermove", "click"]) {
    window.addEventListener(type, (event) => {
      const start = event.timeStamp;
      requestAnimationFrame(() => window.__answers.push({
        type, ms: performance.now() - start,
        tooltip: !document.getElementById("tooltip").hidden,
        panel: !document.getElementById("panel").hidden,
      }));
    });
  }
}"""


def answers_at(page, k: float) -> list:
    centre_zoom(page, k)
    settled(page)
    box = page.locator("#map").bounding_box()
    places = [(box["x"] + box["width"] * (c + 0.5) / 6, box["y"] + box["height"] * (r + 0.5) / 4)
              for r in range(4) for c in range(6)]
    got = []
    for kind, where in (("pointermove", places), ("click", places[::4])):
        for x, y in where:
            page.evaluate("window.__answers = []")
            if kind == "click":
                page.mouse.click(x, y)
            else:
                page.mouse.move(x, y)
            page.wait_for_function(f"window.__answers.some((a) => a.type === '{kind}')", polling=20, timeout=30_000)
            answer = next(a for a in page.evaluate("window.__answers") if a["type"] == kind)
            got.append({"zoom": k, **answer})
            if kind == "click":
                page.keyboard.press("Escape")  # the panel closed, the view as it was, for the next click
                centre_zoom(page, k)
                settled(page)
    return got


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", default=str(OUT / "page_answers.json"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    print(f"machine: {machine()}; headless Chromium, software rendering, 1280x800", flush=True)
    results = []
    with sync_playwright() as p:
        browser = launch(p)
        for n in map(int, args.sizes.split(",")):
            web = prepare(n, baseline=False)
            server = StaticServer(web)
            got = []
            try:
                for _ in range(args.repeats):
                    context, page = open_map(browser, server.url + "index.html?data.json")
                    page.evaluate(LISTEN)
                    for k in ZOOMS:
                        got.extend(answers_at(page, k))
                    context.close()
            finally:
                server.close()
            for kind, shown in (("pointermove", "tooltip"), ("click", "panel")):
                ms = [a["ms"] for a in got if a["type"] == kind]
                row = {"n": n, "answer": "hover" if kind == "pointermove" else "click", "count": len(ms),
                       "median_ms": round(statistics.median(ms), 1), "max_ms": round(max(ms), 1),
                       "with_poster": sum(a[shown] for a in got if a["type"] == kind),
                       "worst_by_zoom": {k: round(max(a["ms"] for a in got if a["type"] == kind and a["zoom"] == k), 1)
                                         for k in ZOOMS}}
                results.append(row)
                print(row, flush=True)
        browser.close()
    with open(args.json, "w") as fh:
        json.dump({"machine": machine(), "results": results}, fh, indent=1)


if __name__ == "__main__":
    main()
