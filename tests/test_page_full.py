"""At the deepest zooms a poster is taller on screen than its thumbnail: the page draws the full poster for
the posters in view, the nearest the centre first, so that it is as sharp as the screen (real Chromium)."""

from __future__ import annotations

import json

import pytest
from PIL import Image, ImageDraw

from mapdata import read_map
from test_page import browser, on_grid, open_map, page, settle, site  # noqa: F401  (fixtures and helpers)

THUMB = 128


@pytest.fixture(scope="module")
def tall(tmp_path_factory):
    """A map of 600-px posters of fine stripes, with 128-px thumbnails (in which the stripes blur to grey)."""
    import dataclasses

    from browser import StaticServer, copy_page
    from mapdata import make_mapdata
    from posters_cnn.contracts.manifest import read_records, write_manifest
    from posters_cnn.mapping import stage as visu

    folder = tmp_path_factory.mktemp("tall")
    manifest, feats, _ = make_mapdata(folder, n_per_cluster=40, clusters=2, height=600)
    records = []
    for record in read_records(manifest).values():
        image = Image.new("RGB", (400, 600), (40, 40, 40))
        draw = ImageDraw.Draw(image)
        for x in range(20, 380, 8):  # 4-px stripes: detail only the full poster holds
            draw.rectangle([x, 20, x + 3, 580], fill=(250, 250, 250))
        image.save(folder / record.image_path, quality=95)
        image.resize((round(THUMB * 400 / 600), THUMB), Image.LANCZOS).save(folder / record.thumb_path, quality=95)
        records.append(dataclasses.replace(record, width=400, height=600))
    write_manifest(manifest, records)
    web = folder / "web"
    copy_page(web)
    visu.make_map(feats, manifest, web / "data.json", neighbors=3, pairs=2, pair_images=False, clusters=False,
                  grid=True)
    server = StaticServer(web)
    yield server, read_map(web / "data.json")
    server.close()


def stripes(page, pid):
    """The mean difference between neighbouring pixels across the middle of poster `pid` on screen: about 70
    where its stripes are drawn 3 px wide (a poster 450 px tall), under 10 where they blurred to grey (drawn
    from the thumbnail, measured with the full posters turned off)."""
    return page.evaluate("""(id) => {
        const c = document.getElementById('map'), r = c.getBoundingClientRect(), dpr = window.devicePixelRatio || 1;
        const b = window.posterMap.screenBox(id);
        const y = Math.round(((b.y0 + b.y1) / 2 - r.top) * dpr);
        const x0 = Math.round((b.x0 + 0.3 * (b.x1 - b.x0) - r.left) * dpr);
        const x1 = Math.round((b.x0 + 0.7 * (b.x1 - b.x0) - r.left) * dpr);
        const d = c.getContext('2d').getImageData(x0, y, x1 - x0, 1).data;
        let sum = 0;
        for (let i = 4; i < d.length; i += 4) sum += Math.abs(d[i] - d[i - 4]);
        return sum / (d.length / 4 - 1); }""", pid)


def full_requests(page, since=0):
    return page.evaluate("""(since) => performance.getEntriesByType('resource')
        .filter(e => e.name.includes('/assets/posters/') && e.startTime > since).map(e => e.name)""", since)



def test_a_poster_taller_on_screen_than_its_thumbnail_is_drawn_from_the_full_poster(page, tall):
    server, data = tall
    open_map(page, server.url)
    on_grid(page)
    pid = data["columns"]["id"][3]
    assert data["meta"]["thumb_size"] == THUMB
    # a zoom where the poster is about 3.5x its thumbnail on screen: thumbnails no longer do
    view = page.evaluate("window.posterMap.view()")
    since = page.evaluate("performance.now()")
    page.evaluate("""([id, k]) => { const v = window.posterMap.view();
        window.posterMap.placePoster(id, k, v.width / 2, v.height / 2); }""", [pid, 3.5 * THUMB / view["slot"]])
    settle(page)
    box = page.evaluate("id => window.posterMap.screenBox(id)", pid)
    assert box["y1"] - box["y0"] > 3 * THUMB
    sharp = page.evaluate("window.posterMap.sharpness()")
    assert sharp["full"] >= 1 and sharp["enlarged"] == 0
    assert stripes(page, pid) > 40
    assert f"/assets/posters/{pid}.jpg" in " ".join(full_requests(page, since))
    # zoomed out again, where thumbnails are as sharp as the screen, no full poster is drawn
    page.evaluate("""([id, k]) => { const v = window.posterMap.view();
        window.posterMap.placePoster(id, k, v.width / 2, v.height / 2); }""", [pid, 0.8 * THUMB / view["slot"]])
    settle(page)
    assert page.evaluate("window.posterMap.sharpness()")["full"] == 0
    page.watch.assert_clean()


def test_the_full_poster_is_dimmed_like_the_rest_by_a_filter(page, tall):
    server, data = tall
    open_map(page, server.url)
    on_grid(page)
    pid = data["columns"]["id"][3]
    year = data["columns"]["year"][3]
    view = page.evaluate("window.posterMap.view()")
    page.evaluate("""([id, k]) => { const v = window.posterMap.view();
        window.posterMap.placePoster(id, k, v.width / 2, v.height / 2); }""", [pid, 3.5 * THUMB / view["slot"]])
    settle(page)
    lit = stripes(page, pid)
    page.fill("#year-from", str(year + 1))
    page.fill("#year-to", str(year + 30))
    page.press("#year-to", "Enter")
    settle(page)
    assert page.evaluate("window.posterMap.sharpness()")["full"] >= 1
    assert stripes(page, pid) < 0.3 * lit  # the overlay lies over the full poster too
    page.watch.assert_clean()


def test_no_full_poster_is_fetched_where_it_is_no_taller_than_its_thumbnail(page, site):
    """The site's posters are their own thumbnails (90 px): however deep the zoom, nothing more to fetch."""
    server, data = site
    assert set(data["columns"]["height"]) == {90} and data["meta"]["thumb_size"] == 90
    open_map(page, server.url)
    settle(page)
    pid = data["columns"]["id"][0]
    view = page.evaluate("window.posterMap.view()")
    page.evaluate("""([id, k]) => { const v = window.posterMap.view();
        window.posterMap.placePoster(id, k, v.width / 2, v.height / 2); }""", [pid, 5 * 90 / view["slot"]])
    settle(page)
    # Taller on screen than their thumbnails, yet no full poster is wanted: none would show more (the view's
    # choice is made every frame, before any wait for the view to rest).
    box = page.evaluate("id => window.posterMap.screenBox(id)", pid)
    assert box["y1"] - box["y0"] > 2 * 90
    assert page.evaluate("window.posterMap.stats().fullWanted") == 0
    assert page.evaluate("window.posterMap.sharpness()") == {**page.evaluate("window.posterMap.sharpness()"),
                                                             "full": 0, "enlarged": 0}
    assert page.evaluate("performance.getEntriesByType('resource').filter(e => "
                         "e.name.includes('/assets/posters/')).length") == 0
    page.watch.assert_clean()


def test_full_posters_are_fetched_for_the_posters_in_view_nearest_the_centre_first(page, tall):
    """Every poster in view here fits the budget (logic.test.js checks the budget itself): each is fetched,
    once the view rests, in order of its distance from the centre."""
    server, data = tall
    page.set_viewport_size({"width": 1600, "height": 1000})
    open_map(page, server.url)
    on_grid(page)
    ids = data["columns"]["id"]
    view = page.evaluate("window.posterMap.view()")
    since = page.evaluate("performance.now()")
    # posters a little taller than their thumbnails: all 48 in view want their full poster
    page.evaluate("""([id, k]) => { const v = window.posterMap.view();
        window.posterMap.placePoster(id, k, v.width / 2, v.height / 2); }""", [ids[0], 1.05 * THUMB / view["slot"]])
    settle(page)
    shown = page.evaluate("""() => { const c = document.getElementById('map').getBoundingClientRect();
        const cx = (c.left + c.right) / 2, cy = (c.top + c.bottom) / 2;
        return window.posterMap.ids().map(id => [id, window.posterMap.screenBox(id)])
          .filter(([, b]) => b.x1 > c.left && b.x0 < c.right && b.y1 > c.top && b.y0 < c.bottom)
          .map(([id, b]) => [id, Math.hypot((b.x0 + b.x1) / 2 - cx, (b.y0 + b.y1) / 2 - cy)]); }""")
    assert len(shown) > 24
    assert len(full_requests(page)) == len(full_requests(page, since))  # none at the first view
    order = [url.split("/assets/posters/")[1].removesuffix(".jpg") for url in full_requests(page, since)]
    assert sorted(order) == sorted(pid for pid, _ in shown)  # each once, and none outside the view
    distance = dict(shown)
    # started 4 at a time, nearest first: the k-th request is no farther than the (k+4)-th nearest poster
    ranked = sorted(distance[pid] for pid in order)
    assert all(distance[pid] <= ranked[min(k + 4, len(ranked) - 1)] + 1 for k, pid in enumerate(order)), \
        [(pid, round(distance[pid])) for pid in order]
    page.watch.assert_clean()
