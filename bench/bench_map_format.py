#!/usr/bin/env python3
"""data.json format 2 (columns in the JSON) against format 3 (the map's table in Arrow files), on one map.

    python bench/bench_map_format.py [--map bench/out/page-100000/data.json] [--repeats 3] [--format3-only]

The map must be one stage 3 wrote (bench_page.py makes bench/out/page-N/). Its columns are written a
second time in the other format beside it (format 2 as FORMAT2.json, format 3 as FORMAT3.json, with its
table under assets/maps/FORMAT3/), so that both name the same tiles and images. With the page of this
checkout, each is opened in a fresh Chromium context (headless, 1280x800, cold caches), alternating, and
measured:

* first view: navigation to the first frame with the whole view drawn (``posterMap.firstView``), and the
  bytes downloaded before it;
* ready: navigation to the moment the map answers the pointer, search and panels (``posterMap.firstDraw``,
  when ``ready`` is set);
* the JS heap then (``performance.memory``: garbage not yet collected counts);
* similar: from choosing a poster to its panel listing its similar posters (format 3 reads them then);
* search: the first keystroke ("a") right after ready, typed as the box gets the focus, to its suggestions listed;
* in Python: reading the columns back (``maptable.read_columns``), and the files' bytes.

Medians of --repeats. Writes bench/out/map_format.json (with --format3-only: map_format3_N.json).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from bench_page import SEARCH
from common import OUT, ROOT, machine

sys.path.insert(0, str(ROOT / "tests"))
from browser import StaticServer, copy_page, launch  # noqa: E402

from posters_cnn.contracts import geometry, maptable  # noqa: E402


def twins(data_json: Path) -> tuple[Path, Path]:
    web = data_json.parent
    meta, columns = maptable.read_columns(data_json)
    two, three = web / "FORMAT2.json", web / "FORMAT3.json"
    two.write_text(json.dumps({"meta": {**meta, "format": 2}, "columns": columns}, separators=(",", ":")))
    folder = web / "assets" / "maps" / "FORMAT3" / "table"
    if not folder.exists():
        about = maptable.write(folder, columns, meta)
        meta3 = {**meta, "format": 3, "table": maptable.relocate(about, "assets/maps/FORMAT3/table")}
        three.write_text(json.dumps({"meta": meta3}, separators=(",", ":")))
    return two, three


def measure(browser, url: str) -> dict:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(url)
    page.wait_for_function("window.posterMap && window.posterMap.firstView", timeout=600_000, polling=20)
    got = page.evaluate("""() => { const m = window.posterMap, t = m.firstView;
        const bytes = performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))
          .filter(e => e.responseEnd <= t).reduce((s, e) => s + (e.encodedBodySize || 0), 0);
        return {first_view_s: t / 1000, first_view_mib: bytes / 2 ** 20}; }""")
    page.wait_for_function("window.posterMap.ready", timeout=600_000, polling=20)
    got.update(page.evaluate("""() => ({ready_s: window.posterMap.firstDraw / 1000,
        heap_mib: performance.memory.usedJSHeapSize / 2 ** 20})"""))
    # A click's similar posters: from choosing poster 0 to its panel listing them (format 3 reads its tile's
    # near file then), polled every animation frame.
    got["similar_ms"] = page.evaluate("""() => new Promise((resolve) => {
        const m = window.posterMap, id = m.idAt ? m.idAt(0) : m.ids()[0], start = performance.now();
        m.select(id);
        const poll = () => (document.querySelectorAll('#panel-similar button').length
          ? resolve(performance.now() - start) : requestAnimationFrame(poll));
        poll(); })""")
    # The first keystroke of a search, as soon as the map is ready, typed in the same task as the box gets the
    # focus (so with no head start for what the focus fetches: format 3's search shards): from the input event
    # to its suggestions listed, polled every animation frame.
    got["search_ms"] = page.evaluate(SEARCH, 0)
    context.close()
    return got


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--map", default=str(OUT / "page-100000" / "data.json"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--format3-only", action="store_true",
                        help="measure the map as stage 3 wrote it (format 3), with no format-2 twin (at 1M: 170 MB)")
    args = parser.parse_args()
    data_json = Path(args.map)
    if args.format3_only:
        formats = {"format 3": data_json}
    else:
        two, three = twins(data_json)
        formats = {"format 2": two, "format 3": three}
    copy_page(data_json.parent)
    python = {}
    for name, path in formats.items():
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            maptable.read_columns(path)
            times.append(time.perf_counter() - start)
        meta = json.loads(path.read_text())["meta"]
        size = {}
        for key in ("path", "near", "titles") if name == "format 3" else ():
            size[key] = sum((path.parent / geometry.tile_url(meta["table"][key], z, x, y)).stat().st_size
                            for z, x, y, _ in meta["table"]["tiles"])
        python[name] = {"read_s": statistics.median(times), "json_mib": path.stat().st_size / 2**20,
                        "rows_files_mib": size.get("path", 0) / 2**20, "near_files_mib": size.get("near", 0) / 2**20,
                        "titles_files_mib": size.get("titles", 0) / 2**20,
                        "tiles": len(meta["table"]["tiles"]) if name == "format 3" else 0}
    from playwright.sync_api import sync_playwright

    server = StaticServer(data_json.parent)
    runs = {name: [] for name in formats}
    with sync_playwright() as p:
        browser = launch(p)
        for _ in range(args.repeats):
            for name, path in formats.items():
                runs[name].append(measure(browser, f"{server.url}index.html?{path.name}"))
        browser.close()
    server.close()
    result = {"machine": machine(), "map": str(data_json),
              "count": json.loads(formats["format 3"].read_text())["meta"]["count"],
              "repeats": args.repeats, "python": python, "page": {}}
    for name, rows in runs.items():
        result["page"][name] = {key: statistics.median(r[key] for r in rows) for key in rows[0]}
    name = f"map_format3_{result['count']}.json" if args.format3_only else "map_format.json"
    (OUT / name).write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
