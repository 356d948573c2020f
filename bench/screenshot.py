#!/usr/bin/env python3
"""The README's picture: the page on a map of the bench posters, a poster selected.

    python bench/screenshot.py FEATURES_H5 POSTERS_CSV [docs/map.png]

Maps the features with stage 3 into bench/out/screenshot/, opens the page in
Debian's Chromium and saves a 1280x800 PNG.
"""

import subprocess
import sys

from common import OUT, ROOT

sys.path.insert(0, str(ROOT / "tests"))
from browser import StaticServer, copy_page, launch  # noqa: E402


def main(features, manifest, png=str(ROOT / "docs" / "map.png")):
    from playwright.sync_api import sync_playwright

    web = OUT / "screenshot"
    subprocess.run([sys.executable, str(ROOT / "get_data_visu.py"), "-i", features, "--posters", manifest,
                    "-o", str(web / "data.json"), "--n-sample", "0", "--grid", "-q"], check=True)
    copy_page(web)
    server = StaticServer(web)
    try:
        with sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(server.url + "index.html?data.json")
            page.wait_for_function("window.posterMap && window.posterMap.ready", timeout=60000)
            page.fill("#search", "apollo 13")
            page.press("#search", "Enter")
            page.wait_for_timeout(800)
            for _ in range(3):
                page.keyboard.press("-")
                page.wait_for_timeout(300)
            page.wait_for_timeout(1500)
            page.screenshot(path=png)
            browser.close()
    finally:
        server.close()
    print("wrote", png)


if __name__ == "__main__":
    main(*sys.argv[1:4])
