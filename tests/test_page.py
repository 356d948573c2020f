"""The map page in a real Chromium, served by a real HTTP server, on a generated data.json."""

import json
import shutil
from pathlib import Path

import pytest
from playwright import sync_api as playwright_api  # no importorskip: a missing browser suite must fail

from browser import PageWatch, StaticServer, copy_page, launch, wait_text
from mapdata import make_mapdata, points_of, tile_files, read_map
from posters_cnn.mapping import stage as visu

HOSTILE = '<img src=x onerror="window.__pwned=1">'
LONG_TITLE = ("Dr. Strangelove or: How I Learned to Stop Worrying and Love the Bomb, the Director's Extended "
              "Anniversary Edition with Commentary")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("page")
    manifest, feats, _ = make_mapdata(folder, n_per_cluster=10, titles={4: HOSTILE, 7: "Rob Roy", 5: "The A-Team",
                                                                     6: "The A-Team", 8: LONG_TITLE})
    web = folder / "web"
    copy_page(web)
    visu.make_map(feats, manifest, web / "data.json", grid=True, neighbors=4, pairs=5)
    server = StaticServer(web)
    server.folder = web
    yield server, read_map(web / "data.json")
    server.close()


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1000, "height": 700})
    page = context.new_page()
    page.watch = PageWatch(page)
    yield page
    context.close()


@pytest.fixture
def phone(browser):
    """A page on a phone's screen (390 x 844, touch)."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    page = context.new_page()
    page.watch = PageWatch(page)
    yield page
    context.close()


def open_map(page, url, suffix=""):
    page.goto(f"{url}index.html?data.json{suffix}")
    page.wait_for_function("window.posterMap && window.posterMap.ready", timeout=20000)


def point(data, title):
    return next(p for p in points_of(data) if p["title"] == title)


def canvas_stats(page):
    return page.evaluate("""() => {
        const c = document.getElementById('map');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let sum = 0, sq = 0, n = 0;
        for (let i = 0; i < d.length; i += 16) { const v = (d[i] + d[i+1] + d[i+2]) / 3; sum += Math.abs(v - 17); sq += v*v; n++; }
        const mean = sum / n; return {mean, sd: Math.sqrt(Math.max(0, sq / n - (sum / n + 17) ** 2))};
    }""")


def wait_canvas(page, condition, limit):
    """Wait until the canvas's mean brightness meets ``condition`` (JS, with ``mean`` and ``limit``)."""
    page.wait_for_function(f"""limit => {{
        const c = document.getElementById('map');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let sum = 0, n = 0;
        for (let i = 0; i < d.length; i += 16) {{ sum += Math.abs((d[i] + d[i+1] + d[i+2]) / 3 - 17); n++; }}
        const mean = sum / n;
        return {condition}; }}""", arg=limit)


def settle(page):
    page.wait_for_function("window.posterMap.settled()", timeout=30000, polling=50)


def on_grid(page):
    """Switch to the grid layout and wait until it is drawn: no poster lies over another there, so what
    lies under the pointer, or in the middle of a poster's box, is that poster."""
    page.click("#layout-grid")
    page.wait_for_function("!window.posterMap.view().fading && window.posterMap.view().layout === 'grid'")
    settle(page)


def centre_on(page, pid, k):
    page.evaluate("""([id, k]) => { const v = window.posterMap.view();
        window.posterMap.placePoster(id, k, v.width / 2, v.height / 2); }""", [pid, k])


def test_map_draws_from_tiles_without_errors(page, site):
    server, data = site
    tiles = []
    page.on("response", lambda r: tiles.append(r.status) if "/tiles/" in r.url else None)
    open_map(page, server.url)  # ready is set after the first frame is drawn
    settle(page)
    stats = canvas_stats(page)
    assert stats["sd"] > 5, stats  # not blank
    assert tiles and set(tiles) == {200}
    assert page.is_hidden("#loading")
    page.watch.assert_clean()


@pytest.mark.parametrize("k", [1, 3, 8, 30])
def test_every_visible_poster_is_drawn_at_least_as_sharp_as_it_is_shown(page, site, k):
    server, data = site
    open_map(page, server.url)
    centre_on(page, point(data, "Rob Roy")["id"], k)
    settle(page)
    sharp = page.evaluate("window.posterMap.sharpness()")
    assert sharp["visible"] > 0 and sharp["enlarged"] == 0, sharp
    page.watch.assert_clean()


def test_a_high_dpi_screen_gets_tiles_as_sharp_as_its_pixels(browser, big):
    server, data = big
    context = browser.new_context(viewport={"width": 900, "height": 600}, device_scale_factor=2)
    page = context.new_page()
    try:
        open_map(page, server.url)
        for k in (1, 6):
            centre_on(page, points_of(data)[150]["id"], k)
            settle(page)
            sharp = page.evaluate("window.posterMap.sharpness()")
            assert sharp["visible"] > 0 and sharp["enlarged"] == 0, (k, sharp)
        assert page.evaluate("document.getElementById('map').width") == 1800
    finally:
        context.close()


def test_a_10_poster_map_is_sharp_in_its_starting_view(browser, tmp_path):
    manifest, feats, _ = make_mapdata(tmp_path, n_per_cluster=5, clusters=2)
    web = tmp_path / "web"
    copy_page(web)
    visu.make_map(feats, manifest, web / "data.json", neighbors=3, pairs=2)
    server = StaticServer(web)
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    try:
        open_map(page, server.url)
        settle(page)
        sharp = page.evaluate("window.posterMap.sharpness()")
        assert sharp == {**sharp, "visible": 10, "enlarged": 0}
    finally:
        page.close()
        server.close()


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """A 300-poster map: at the starting view every poster comes from the server's tiles."""
    folder = tmp_path_factory.mktemp("big")
    manifest, feats, _ = make_mapdata(folder, n_per_cluster=100, clusters=3, height=256)
    web = folder / "web"
    copy_page(web)
    visu.make_map(feats, manifest, web / "data.json", neighbors=4, pairs=5, pair_images=False)
    server = StaticServer(web)
    yield server, read_map(web / "data.json")
    server.close()


def test_a_zoom_through_every_level_keeps_a_few_levels_of_overlay_members_and_still_dims(page, big):
    """The dimming's per-level lists of posters (4 MB a level at 1,000,000 posters) are kept for the last
    few levels drawn, not for every level zoomed through; a level dropped is made again when drawn again."""
    server, data = big
    open_map(page, server.url)
    settle(page)
    before = canvas_stats(page)["mean"]
    page.fill("#year-from", "1900")
    page.fill("#year-to", "1901")  # no poster in range: all dimmed
    wait_canvas(page, "mean < limit", before * 0.4)
    view = page.evaluate("window.posterMap.view()")
    levels = set()
    for k in (1, 2, 4, 8, 16, 32, 64, 1):
        page.evaluate("([k, w, h]) => window.posterMap.zoomTo(k, w / 2 * (1 - k), h / 2 * (1 - k))",
                      [k, view["width"], view["height"]])
        page.wait_for_function("window.posterMap.settled()", polling=50)
        stats = page.evaluate("window.posterMap.stats()")
        levels.add(stats["level"])
        assert stats["memberLevels"] <= 3, (k, stats)
    assert len(levels) > 3  # the sweep went through more levels than are kept
    wait_canvas(page, "mean < limit", before * 0.4)  # back at 1x, where its level was dropped: dimmed again
    page.watch.assert_clean()


def test_a_view_requests_only_the_files_it_needs(page, big):
    server, data = big
    requested = []
    page.on("request", lambda r: requested.append(r.url))
    open_map(page, server.url)
    settle(page)
    at_home = [u for u in requested if "/tiles/" in u]
    assert at_home and not [u for u in requested if "/assets/thumbs/" in u]
    assert len(at_home) <= 1 + 4 + 16  # the top levels, a few tiles each
    requested.clear()
    target = points_of(data)[150]
    centre_on(page, target["id"], 8)
    settle(page)
    thumbs = {u.split("/assets/thumbs/")[1][:-4] for u in requested if "/assets/thumbs/" in u}
    # Only posters on or next to the screen: within one tile of the view (tiles are loaded whole).
    near = set(page.evaluate("window.posterMap.nearView()"))
    assert thumbs and thumbs <= near and len(thumbs) < 100, (len(thumbs), len(near))
    before = set(requested)
    requested.clear()
    page.mouse.move(500, 400)
    page.mouse.down()
    page.mouse.move(497, 402, steps=2)  # a nudge: what it had, it does not ask for again
    page.mouse.up()
    settle(page)
    assert not set(requested) & before, sorted(set(requested) & before)
    # What it asks for is what the nudge brought next to the screen: a tile's posters at most.
    more = {u.split("/assets/thumbs/")[1][:-4] for u in requested if "/assets/thumbs/" in u}
    assert more <= set(page.evaluate("window.posterMap.nearView()")) and len(more) < 30, more
    page.watch.assert_clean()


def test_titles_and_the_search_index_are_read_when_first_needed(page, site):
    """Format 3: no title and no search shard is fetched for the map to open and be looked at; a tooltip
    reads its tile's titles file once, and the search box's first use fetches the shards."""
    server, data = site
    requested = []
    page.on("request", lambda r: requested.append(r.url))
    open_map(page, server.url)
    on_grid(page)
    settle(page)
    assert not [u for u in requested if "/table/titles/" in u or "/table/search/" in u], requested
    target, other = point(data, "Rob Roy"), point(data, "The A-Team")
    pos = page.evaluate("id => window.posterMap.screenPosition(id)", target["id"])
    with page.expect_request(lambda r: "/table/titles/" in r.url):
        page.mouse.move(pos["x"], pos["y"])
    wait_text(page, "#tooltip", f"Rob Roy ({target['year']})")
    pos = page.evaluate("id => window.posterMap.screenPosition(id)", other["id"])
    page.mouse.move(pos["x"], pos["y"])
    wait_text(page, "#tooltip", "The A-Team", start=True)
    titles = [u for u in requested if "/table/titles/" in u]
    assert len(titles) == len(data["meta"]["table"]["tiles"]) == 1, titles  # the tile's file, read once
    assert not [u for u in requested if "/table/search/" in u]
    with page.expect_request(lambda r: "/table/search/" in r.url):
        page.focus("#search")
    page.keyboard.type("rob r")
    page.wait_for_selector("#suggestions li")
    assert page.text_content("#suggestions li").startswith("Rob Roy")
    page.watch.assert_clean()


def test_hover_shows_tooltip_and_click_opens_panel(page, site):
    server, data = site
    open_map(page, server.url)
    page.click("#layout-grid")  # no overlaps in the grid: the poster under the pointer is the one aimed at
    page.wait_for_function("!window.posterMap.view().fading && window.posterMap.view().layout === 'grid'")
    target = point(data, "Rob Roy")
    pos = page.evaluate("id => window.posterMap.screenPosition(id)", target["id"])
    page.mouse.move(pos["x"], pos["y"])
    page.wait_for_selector("#tooltip:not([hidden])")
    wait_text(page, "#tooltip", f"Rob Roy ({target['year']})")
    other = next(p for p in points_of(data) if p["title"] != "Rob Roy")
    pos2 = page.evaluate("id => window.posterMap.screenPosition(id)", other["id"])
    page.mouse.move(pos2["x"], pos2["y"])
    page.wait_for_function("t => document.getElementById('tooltip').textContent.startsWith(t)", arg=other["title"])
    page.mouse.click(pos["x"], pos["y"])
    page.wait_for_selector("#panel:not([hidden])")
    wait_text(page, "#panel-title", "Rob Roy")
    page.watch.assert_clean()


@pytest.mark.parametrize("corner", ["middle", "bottom right"])
def test_a_long_title_wraps_whole_with_its_year_inside_the_map(page, site, corner):
    server, data = site
    open_map(page, server.url)
    page.click("#layout-grid")  # no overlaps in the grid: the poster under the pointer is the one aimed at
    page.wait_for_function("!window.posterMap.view().fading && window.posterMap.view().layout === 'grid'")
    target = point(data, LONG_TITLE)
    view = page.evaluate("window.posterMap.view()")
    x, y = (view["width"] / 2, view["height"] / 2) if corner == "middle" else (view["width"] - 8, view["height"] - 8)
    page.evaluate("([id, x, y]) => window.posterMap.placePoster(id, 4, x, y)", [target["id"], x, y])
    settle(page)
    pos = page.evaluate("id => window.posterMap.screenPosition(id)", target["id"])
    page.mouse.move(pos["x"], pos["y"])
    page.wait_for_selector("#tooltip:not([hidden])")
    box = page.evaluate("""() => { const t = document.getElementById('tooltip');
        const r = t.getBoundingClientRect(), c = document.getElementById('map').getBoundingClientRect();
        return {text: t.textContent, cut: t.scrollWidth > t.clientWidth || t.scrollHeight > t.clientHeight,
                inside: r.left >= c.left && r.top >= c.top && r.right <= c.right + 0.5 && r.bottom <= c.bottom + 0.5}; }""")
    assert box["text"] == f"{LONG_TITLE} ({target['year']})"
    assert not box["cut"] and box["inside"], box


def test_a_poster_clicked_where_tiles_serve_the_view_is_drawn_from_its_thumbnail_and_settles(page, site):
    """The chosen poster is drawn on top from its own image: asked for in the frame that draws it, so that it
    loads without waiting for some other frame (the page used to wait until the pointer moved). Its
    thumbnail; or its full poster, where it is taller on screen than its thumbnail."""
    server, data = site
    open_map(page, server.url)
    settle(page)
    assert page.evaluate("window.posterMap.stats().thumbs") == 0  # the first view comes from tiles alone
    target = point(data, "Rob Roy")
    # Left of the middle, where the panel will not cover it: the view does not move when it opens.
    page.evaluate("id => window.posterMap.placePoster(id, 2, window.posterMap.view().width / 4, 300)", target["id"])
    settle(page)
    assert page.evaluate("window.posterMap.stats().thumbs") == 0
    pos = page.evaluate("id => window.posterMap.screenPosition(id)", target["id"])
    page.mouse.click(pos["x"], pos["y"])
    page.wait_for_selector("#panel:not([hidden])")
    settle(page)
    stats = page.evaluate("window.posterMap.stats()")
    full = page.evaluate("window.posterMap.sharpness()")["full"]
    assert stats["thumbs"] == 1 or (stats["thumbs"] == 0 and full >= 1), (stats, full)
    page.watch.assert_clean()


def test_search_selects_a_poster(page, site):
    server, data = site
    open_map(page, server.url)
    assert page.get_attribute("#search", "type") == "search"
    page.fill("#search", "rob r")
    page.wait_for_selector("#suggestions li")
    assert page.text_content("#suggestions li").startswith("Rob Roy")
    page.press("#search", "Enter")
    page.wait_for_selector("#panel:not([hidden])")
    wait_text(page, "#panel-title", "Rob Roy")
    assert page.evaluate("location.hash") == "#poster=" + point(data, "Rob Roy")["id"]
    page.watch.assert_clean()


def test_the_test_api_names_one_poster_as_the_list_of_all_does(page, site):
    server, data = site
    open_map(page, server.url)
    ids, one, past = page.evaluate("() => { const m = window.posterMap; const ids = m.ids();"
                                   " return [ids, ids.map((_, i) => m.idAt(i)), m.idAt(ids.length)]; }")
    assert one == ids == [p["id"] for p in points_of(data)] and past is None


def test_search_works_in_a_browser_without_idle_callbacks(page, site):
    server, data = site
    page.add_init_script("delete window.requestIdleCallback")  # as Safari: the index is built on timers
    open_map(page, server.url)
    assert page.evaluate("typeof window.requestIdleCallback") == "undefined"
    page.fill("#search", "rob r")
    page.wait_for_selector("#suggestions li")
    assert page.text_content("#suggestions li").startswith("Rob Roy")
    page.watch.assert_clean()


def test_similar_poster_click_flies_to_it(page, site):
    server, data = site
    open_map(page, server.url)
    start = point(data, "Rob Roy")
    page.evaluate("id => window.posterMap.select(id)", start["id"])
    first = page.locator("#panel-similar button").first
    target_id = first.get_attribute("data-id")
    assert target_id == start["neighbors"][0]
    first.click()
    page.wait_for_function("id => location.hash.endsWith(id)", arg=target_id)
    box = page.locator("#map").bounding_box()
    panel = page.locator("#panel").bounding_box()
    want = {"x": (box["width"] - panel["width"]) / 2, "y": box["y"] + box["height"] / 2}
    # The flight ends with the poster centred in the part of the map the panel leaves.
    page.wait_for_function("""([id, want]) => {
        const pos = window.posterMap.screenPosition(id);
        return Math.abs(pos.x - want.x) < 30 && Math.abs(pos.y - want.y) < 30; }""", arg=[target_id, want])
    wait_text(page, "#panel-title", point_by_id(data, target_id)["title"])


def point_by_id(data, pid):
    return next(p for p in points_of(data) if p["id"] == pid)


def test_permalink_restores_the_selection(page, site):
    server, data = site
    target = point(data, "Rob Roy")
    open_map(page, server.url, f"#poster={target['id']}")
    page.wait_for_selector("#panel:not([hidden])")
    wait_text(page, "#panel-title", "Rob Roy")
    page.keyboard.press("Escape")
    assert page.is_hidden("#panel")
    page.watch.assert_clean()


def test_year_filter_dims_posters(page, site):
    server, data = site
    open_map(page, server.url)
    page.click("#layout-grid")  # no overlaps in the grid: each poster's dimming shows on its own
    page.wait_for_function("!window.posterMap.view().fading && window.posterMap.view().layout === 'grid'")
    before = canvas_stats(page)["mean"]
    page.fill("#year-from", "1900")
    page.fill("#year-to", "1901")  # no poster in range: all dimmed
    wait_canvas(page, "mean < limit", before * 0.4)
    assert page.evaluate("window.posterMap.view().years") == [1900, 1901]
    page.fill("#year-from", "1990")
    page.fill("#year-to", "2010")  # every poster in range again
    wait_canvas(page, "mean > limit", before * 0.9)


def test_hostile_title_stays_text(page, site):
    server, data = site
    open_map(page, server.url)
    page.fill("#search", "img src")
    page.wait_for_selector("#suggestions li")
    page.press("#search", "Enter")
    page.wait_for_selector("#panel:not([hidden])")
    wait_text(page, "#panel-title", HOSTILE)
    # Had the title become markup, its <img src=x> would have failed to load by the time every image
    # of the page has settled, and run its onerror.
    page.wait_for_function("[...document.images].every((img) => img.complete)")
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img[src='x']").count() == 0
    page.watch.assert_clean()


HOSTILE_QUERIES = json.loads((Path(__file__).with_name("hostile_queries.json")).read_text())["queries"]


@pytest.fixture(scope="module")
def nested(site, tmp_path_factory):
    """The page in ROOT/web/ of a server whose root also holds files the page must never fetch."""
    root = tmp_path_factory.mktemp("nested")
    web = root / "web"
    shutil.copytree(site[0].folder, web)
    (root / "secret.json").write_text(json.dumps({"meta": {}, "points": []}))
    (root / "x.json").write_text("{}")
    (root / "web" / "data.html").write_text("<p>not data</p>")
    server = StaticServer(root)
    yield server, web
    server.close()


def test_hostile_queries_are_refused_and_nothing_leaves_the_folder(browser, nested):
    server, _ = nested
    page = browser.new_page()
    requested = []
    page.on("request", lambda r: requested.append(r.url))
    inside = f"{server.url}web/"
    for query in HOSTILE_QUERIES:
        requested.clear()
        page.goto(f"{inside}index.html{query}")
        page.wait_for_selector("#error:not([hidden])")
        assert "refusing" in page.text_content("#error") or "not a valid" in page.text_content("#error"), query
        assert page.evaluate("window.posterMap.ready") is False, query
        outside = [u for u in requested if not u.startswith(inside)]
        assert not outside, (query, outside)
        assert not [u for u in requested if u.split("?")[0].endswith(".json")], (query, requested)
    page.close()


@pytest.mark.parametrize("field, value", [("thumb", "../../secret.json"), ("image", "//evil.example/x.jpg"),
                                          ("image", "%09//evil.example/x.jpg"), ("thumb", "/x.json")])
def test_paths_in_a_doctored_data_file_stay_in_the_folder(browser, nested, field, value):
    server, web = nested
    data = read_map(web / "data.json")
    data["columns"][field] = [value] * len(data["columns"]["id"])
    (web / "doctored.json").write_text(json.dumps(data))
    page = browser.new_page()
    requested = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(f"{server.url}web/index.html?doctored.json")
    page.wait_for_function("window.posterMap && window.posterMap.ready", timeout=20000)
    page.evaluate("id => window.posterMap.select(id)", data["columns"]["id"][0])
    page.wait_for_selector("#panel:not([hidden])")
    page.wait_for_function("document.getElementById('notice').textContent.includes('refusing')")
    assert not [u for u in requested if not u.startswith(f"{server.url}web/")], requested
    page.close()


def test_grid_layout_and_pairs_view(page, site):
    server, data = site
    open_map(page, server.url)
    page.click("#layout-grid")
    page.wait_for_function("!window.posterMap.view().fading && window.posterMap.view().layout === 'grid'")
    page.click("#show-pairs")
    page.wait_for_selector("#pairs-list li")
    assert page.locator("#pairs-list li").count() == data["meta"]["pairs"]["count"]
    page.watch.assert_clean()


@pytest.mark.parametrize("where", [".caption", "img >> nth=1"])
def test_a_pair_row_is_one_target_that_shows_both_posters_and_the_list_stays_open(page, site, where):
    server, data = site
    open_map(page, server.url)
    settle(page)
    page.click("#show-pairs")
    page.wait_for_selector("#pairs-list .pair-row")
    for row in (1, 0):  # the second pair, then the first: each click shows its own two
        button = page.locator("#pairs-list .pair-row").nth(row)
        a, b = button.get_attribute("data-a"), button.get_attribute("data-b")
        button.locator(where).click()
        page.wait_for_function("window.posterMap.settled() && !window.posterMap.view().fading", polling=50)
        settle(page)
        assert page.is_visible("#pairs") and page.is_hidden("#panel")
        free = page.evaluate("""() => { const c = document.getElementById('map').getBoundingClientRect();
            const p = document.getElementById('pairs').getBoundingClientRect();
            return window.innerWidth > 640 ? [c.left, c.top, Math.min(c.right, p.left), c.bottom]
                                           : [c.left, c.top, c.right, Math.min(c.bottom, p.top)]; }""")
        for pid in (a, b):
            box = page.evaluate("id => window.posterMap.screenBox(id)", pid)
            assert free[0] - 1 <= box["x0"] and box["x1"] <= free[2] + 1, (pid, box, free)
            assert free[1] - 1 <= box["y0"] and box["y1"] <= free[3] + 1, (pid, box, free)
    page.watch.assert_clean()


def test_touch_drag_pans_and_a_narrow_screen_works(browser, site):
    server, data = site
    context = browser.new_context(viewport={"width": 390, "height": 740}, has_touch=True, is_mobile=True)
    page = context.new_page()
    watch = PageWatch(page)
    open_map(page, server.url)
    before = page.evaluate("window.posterMap.view().transform")
    cdp = context.new_cdp_session(page)

    def touch(kind, x, y):
        points = [] if kind == "touchEnd" else [{"x": x, "y": y}]
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    touch("touchStart", 200, 400)
    for step in range(1, 11):
        touch("touchMove", 200 - 10 * step, 400 - 5 * step)
    touch("touchEnd", 100, 350)
    page.wait_for_function("x => Math.abs(window.posterMap.view().transform.x - x) > 90", arg=before["x"])
    after = page.evaluate("window.posterMap.view().transform")
    assert after["x"] == pytest.approx(before["x"] - 100, abs=5)
    assert after["y"] == pytest.approx(before["y"] - 50, abs=5)
    page.evaluate("id => window.posterMap.select(id)", point(data, "Rob Roy")["id"])
    panel = page.locator("#panel").bounding_box()
    assert panel["width"] <= 390 and panel["y"] > 200  # a bottom sheet on a phone
    pos = page.evaluate("id => window.posterMap.screenPosition(id)", point(data, "Rob Roy")["id"])
    assert pos["y"] < panel["y"]  # the selected poster is not hidden under the sheet
    assert page.locator("#search").bounding_box()["width"] < 390
    watch.assert_clean()
    context.close()


# -- what a hand expects: panels, keys, legend, search, tooltip, years --------------------
def screen_box(page, pid):
    """The poster's box on screen (css px, page coordinates)."""
    return page.evaluate("id => window.posterMap.screenBox(id)", pid)


def test_a_poster_clicked_at_the_right_edge_ends_up_beside_the_panel_not_under_it(page, site):
    server, data = site
    open_map(page, server.url)
    page.click("#layout-grid")  # no overlaps in the grid: the click lands on the poster aimed at
    page.wait_for_function("!window.posterMap.view().fading && window.posterMap.view().layout === 'grid'")
    target = point(data, "Rob Roy")
    box = page.locator("#map").bounding_box()
    # Put the poster at the right edge, where the panel will open, then click it.
    page.evaluate("([id, x]) => window.posterMap.placePoster(id, 4, x, window.posterMap.view().height / 2)",
                  [target["id"], box["width"] - 30])
    b = screen_box(page, target["id"])
    page.mouse.click((b["x0"] + b["x1"]) / 2 if b["x1"] < box["width"] else b["x0"] + 3, (b["y0"] + b["y1"]) / 2)
    page.wait_for_selector("#panel:not([hidden])")
    wait_text(page, "#panel-title", "Rob Roy")
    panel = page.locator("#panel").bounding_box()
    page.wait_for_function("""([id, left, edge]) => { const b = window.posterMap.screenBox(id);
        return b.x1 <= left && b.x0 >= edge; }""", arg=[target["id"], panel["x"], box["x"]])


def test_on_a_phone_a_tapped_poster_stays_above_the_sheet_and_the_sheet_shows_its_text(browser, site):
    server, data = site
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    page = context.new_page()
    try:
        open_map(page, server.url)
        page.tap("#more")  # the toolbar's controls are behind "☰" on a phone
        page.tap("#layout-grid")  # no overlaps in the grid: the tap lands on the poster aimed at
        page.wait_for_function("!window.posterMap.view().fading && window.posterMap.view().layout === 'grid'")
        target = point(data, "Rob Roy")
        # The poster low on the screen, where the sheet will rise, then a tap on it.
        page.evaluate("""id => { const v = window.posterMap.view();
            window.posterMap.placePoster(id, 3, v.width / 2, v.height - 60); }""", target["id"])
        b = screen_box(page, target["id"])
        page.touchscreen.tap((b["x0"] + b["x1"]) / 2, (b["y0"] + b["y1"]) / 2)
        page.wait_for_selector("#panel:not([hidden])")
        wait_text(page, "#panel-title", "Rob Roy")
        sheet = page.locator("#panel").bounding_box()
        page.wait_for_function("([id, top]) => window.posterMap.screenBox(id).y1 <= top",
                               arg=[target["id"], sheet["y"]])
        b = screen_box(page, target["id"])
        assert b["y1"] <= sheet["y"] and b["y0"] >= 0
        for selector in ("#panel-title", "#panel h3"):
            box = page.locator(selector).bounding_box()
            assert box["y"] + box["height"] <= 844, selector  # in view without scrolling the sheet
    finally:
        context.close()


CANVAS = "(() => { const r = document.getElementById('map').getBoundingClientRect(); return [r.top, r.height]; })()"


def test_on_a_phone_the_toolbar_is_one_row_its_controls_open_over_the_map_and_a_poster_leaves_half_the_screen(
        phone, site):
    server, data = site
    page = phone
    open_map(page, server.url)
    settle(page)
    assert page.locator("#bar").bounding_box()["height"] <= 56  # one row: search and "☰"
    assert page.is_hidden("#year-from") and page.is_visible("#search")
    canvas = page.evaluate(CANVAS)
    page.tap("#more")
    assert page.is_visible("#year-from") and page.is_visible("#lasso") and page.is_visible("#show-pairs")
    assert page.evaluate(CANVAS) == canvas  # over the map: the map does not move
    page.tap("#decades")
    assert page.is_visible("#legend") and page.evaluate(CANVAS) == canvas
    page.touchscreen.tap(195, 700)  # a tap on the map closes the controls
    page.wait_for_selector("#year-from", state="hidden")
    # A poster chosen: the sheet leaves the map at least half the screen, and shrinks to its handle.
    page.evaluate("id => window.posterMap.select(id)", point(data, "Rob Roy")["id"])
    page.wait_for_selector("#panel:not([hidden])")
    sheet = page.locator("#panel").bounding_box()
    top = page.evaluate(CANVAS)[0]
    assert sheet["y"] - top >= 844 / 2, (sheet, top)
    for selector in ("#panel-title", "#panel h3"):
        box = page.locator(selector).bounding_box()
        assert box["y"] + box["height"] <= 844, selector  # in view without scrolling the sheet
    page.tap("#panel .handle")
    page.wait_for_function("document.getElementById('panel').getBoundingClientRect().height < 50")
    assert page.get_attribute("#panel .handle", "aria-expanded") == "false"
    page.tap("#panel .handle")
    page.wait_for_function("document.getElementById('panel').getBoundingClientRect().height > 200")
    page.watch.assert_clean()


def test_on_a_wide_screen_the_legend_does_not_move_the_map(page, site):
    server, data = site
    page.set_viewport_size({"width": 1280, "height": 800})
    open_map(page, server.url)
    canvas = page.evaluate(CANVAS)
    assert page.is_hidden("#more") and page.is_visible("#year-from")  # every control in the toolbar's row
    page.check("#decades")
    page.wait_for_selector("#legend button")
    assert page.evaluate(CANVAS) == canvas
    page.evaluate("window.posterMap.selectCluster(0)")
    page.wait_for_selector("#clear-selection:not([hidden])")
    assert page.evaluate(CANVAS) == canvas
    page.watch.assert_clean()


def test_keys_work_after_a_checkbox_or_a_year_field_is_used(page, site):
    server, data = site
    open_map(page, server.url)
    page.click("#decades")  # the checkbox keeps the focus
    k = page.evaluate("window.posterMap.view().transform.k")
    page.keyboard.press("+")
    page.wait_for_function("k => window.posterMap.view().transform.k > k * 1.2", arg=k)
    page.evaluate("id => window.posterMap.select(id)", point(data, "Rob Roy")["id"])
    page.fill("#year-from", "1990")  # focus in a text field: Esc still closes the panel
    page.keyboard.press("Escape")
    page.wait_for_selector("#panel", state="hidden")
    page.watch.assert_clean()


def test_decade_colours_have_a_legend_that_filters(page, site):
    server, data = site
    open_map(page, server.url)
    assert page.is_hidden("#legend")
    page.check("#decades")
    page.wait_for_selector("#legend button")
    decades = page.eval_on_selector_all("#legend button", "bs => bs.map(b => b.dataset.decade)")
    assert decades == ["1990", "2000", "2010"]
    colours = page.eval_on_selector_all("#legend .swatch", "ss => ss.map(s => getComputedStyle(s).backgroundColor)")
    assert len(set(colours)) == len(colours)
    page.click("#legend button[data-decade='2000']")
    assert page.evaluate("window.posterMap.view().years") == [2000, 2009]
    assert (page.input_value("#year-from"), page.input_value("#year-to")) == ("2000", "2009")
    pressed = "bs => bs.filter(b => b.getAttribute('aria-pressed') === 'true').map(b => b.dataset.decade)"
    assert page.eval_on_selector_all("#legend button", pressed) == ["2000"]
    page.click("#legend button[data-decade='2000']")  # again: every year
    assert page.evaluate("window.posterMap.view().years") == [float("-inf"), float("inf")]
    assert page.eval_on_selector_all("#legend button", pressed) == []
    assert (page.input_value("#year-from"), page.input_value("#year-to")) == ("", "")
    page.fill("#year-from", "1990")  # typed years that make a decade press its entry too
    page.fill("#year-to", "1999")
    page.press("#year-to", "Enter")
    page.wait_for_function("window.posterMap.view().years[0] === 1990")
    assert page.eval_on_selector_all("#legend button", pressed) == ["1990"]


def test_search_tells_versions_apart_and_says_when_nothing_matches(page, site):
    server, data = site
    open_map(page, server.url)
    page.fill("#search", "a-team")
    page.wait_for_selector("#suggestions li")
    texts = page.eval_on_selector_all("#suggestions li", "ls => ls.map(l => l.textContent)")
    assert len(texts) == 2 and len(set(texts)) == 2 and all("version" in t for t in texts), texts
    assert page.locator("#suggestions li img").count() == 2
    page.fill("#search", "zzzz no such film")
    page.press("#search", "Enter")
    page.wait_for_selector("#search-status:not([hidden])")
    assert "No poster matches" in page.text_content("#search-status")
    page.fill("#search", "rob")
    assert page.is_hidden("#search-status")


def test_the_tooltip_goes_when_what_is_under_the_pointer_changes(page, site):
    server, data = site
    open_map(page, server.url)
    pos = page.evaluate("id => window.posterMap.screenPosition(id)", point(data, "Rob Roy")["id"])
    page.mouse.move(pos["x"], pos["y"])
    page.wait_for_selector("#tooltip:not([hidden])")
    page.mouse.click(pos["x"], pos["y"])
    page.wait_for_selector("#tooltip", state="hidden")
    settle(page)  # the panel opened, and the map may have moved the poster out from under it
    pos = page.evaluate("id => window.posterMap.screenPosition(id)", point(data, "Rob Roy")["id"])
    page.mouse.move(pos["x"] + 1, pos["y"])
    page.wait_for_selector("#tooltip:not([hidden])")
    page.keyboard.press("-")  # a keyboard zoom moves the map under a still pointer
    page.wait_for_selector("#tooltip", state="hidden")


def test_a_backwards_year_range_is_read_the_right_way_round(page, site):
    server, data = site
    open_map(page, server.url)
    page.fill("#year-from", "2010")
    page.fill("#year-to", "1995")
    page.press("#year-to", "Tab")  # commits the field
    assert page.evaluate("window.posterMap.view().years") == [1995, 2010]
    assert (page.input_value("#year-from"), page.input_value("#year-to")) == ("1995", "2010")
