"""The page's clusters, lasso, selection export and permalink, in a real Chromium on a stage-3 map."""

import contextlib
import csv
import io
import urllib.request

import pytest

from mapdata import points_of, read_map
from test_page import HOSTILE, browser, on_grid, open_map, page, phone, settle, site  # noqa: F401  (fixtures and helpers)
from browser import PageWatch  # noqa: E402

TRANSFORM = "(() => { const t = window.posterMap.view().transform; return [t.x, t.y, t.k]; })()"
TABLEAU10 = ["#4e79a7", "#f28e2c", "#e15759", "#76b7b2", "#59a14f", "#edc949", "#af7aa1", "#ff9da7", "#9c755f",
             "#bab0ab"]


def members(data, cluster):
    return {pid for pid, c in zip(data["columns"]["id"], data["columns"]["cluster"]) if c == cluster}


def screen_points(page):
    """Every poster's centre on screen (css px, page coordinates), by id."""
    return page.evaluate("""() => Object.fromEntries(window.posterMap.ids().map((id) => {
        const p = window.posterMap.screenPosition(id);
        return [id, [p.x, p.y]]; }))""")


def pixel(page, x, y):
    """[r, g, b] of the canvas at page point (x, y)."""
    return page.evaluate("""([x, y]) => {
        const c = document.getElementById('map'), r = c.getBoundingClientRect(), dpr = window.devicePixelRatio || 1;
        const px = Math.round((x - r.left) * dpr), py = Math.round((y - r.top) * dpr);
        const d = c.getContext('2d').getImageData(px, py, 1, 1).data;
        return [d[0], d[1], d[2]]; }""", [x, y])


def poster_colours(page):
    """Each poster's colour on screen, by id: the per-channel median over a 5x5 grid across the middle of
    its box (so that a line or a label drawn across it does not decide)."""
    return page.evaluate("""() => {
        const c = document.getElementById('map'), r = c.getBoundingClientRect(), dpr = window.devicePixelRatio || 1;
        const ctx = c.getContext('2d');
        const out = {};
        window.posterMap.ids().forEach((id) => {
            const b = window.posterMap.screenBox(id), w = b.x1 - b.x0, h = b.y1 - b.y0;
            const cx = (b.x0 + b.x1) / 2 - r.left, cy = (b.y0 + b.y1) / 2 - r.top;
            const samples = [[], [], []];
            for (let u = 0; u < 5; u++) for (let v = 0; v < 5; v++) {
                const x = cx + (u / 4 - 0.5) * 0.6 * w;
                const y = cy + (v / 4 - 0.5) * 0.6 * h;
                const d = ctx.getImageData(Math.round(x * dpr), Math.round(y * dpr), 1, 1).data;
                for (let c = 0; c < 3; c++) samples[c].push(d[c]);
            }
            out[id] = samples.map((values) => values.sort((p, q) => p - q)[12]);
        });
        return out; }""")


def brightness(page):
    return {pid: sum(rgb) for pid, rgb in poster_colours(page).items()}


def inside(x, y, polygon):
    hit = False
    for (xi, yi), (xj, yj) in zip(polygon, polygon[-1:] + polygon[:-1]):
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            hit = not hit
    return hit


def distance_to_edges(x, y, polygon):
    best = float("inf")
    for (ax, ay), (bx, by) in zip(polygon, polygon[1:] + polygon[:1]):
        dx, dy = bx - ax, by - ay
        t = max(0.0, min(1.0, ((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy or 1)))
        best = min(best, ((ax + t * dx - x) ** 2 + (ay + t * dy - y) ** 2) ** 0.5)
    return best


def draw_lasso(page, polygon, shift=True):
    if shift:
        page.keyboard.down("Shift")
    page.mouse.move(*polygon[0])
    page.mouse.down()
    for x, y in polygon[1:] + polygon[:1]:
        page.mouse.move(x, y, steps=4)
    page.mouse.up()
    if shift:
        page.keyboard.up("Shift")
    settle(page)


def region_name(k):
    name = ""
    k += 1
    while k:
        k, rest = divmod(k - 1, 26)
        name = chr(65 + rest) + name
    return name


def open_region_of(page, data, cluster):
    """Open, in the Clusters panel, the region that holds ``cluster``, so that its button shows."""
    region = next(c["region"] for c in data["meta"]["clusters"] if c["id"] == cluster)
    item = page.locator("#clusters-list > li.region").nth(region)
    if item.locator("button.open").get_attribute("aria-expanded") != "true":
        item.locator("button.open").click()


def test_the_clusters_panel_lists_regions_largest_first_each_opening_to_its_clusters(page, site):
    server, data = site
    clusters, regions = data["meta"]["clusters"], data["meta"]["regions"]
    assert len(clusters) >= 2 and 1 <= len(regions) < len(clusters), "the fixture's groups should give both levels"
    open_map(page, server.url)
    page.click("#show-clusters")
    thumb_of = {p["id"]: p["thumb"] for p in points_of(data)}
    items = page.locator("#clusters-list > li")
    assert items.count() == len(regions)
    for k, r in enumerate(regions):
        main = items.nth(k).locator("button").first
        assert main.inner_text().startswith(f"Region {region_name(r['id'])} · {r['size']} posters"), main.inner_text()
        assert main.locator("img").get_attribute("src").endswith(thumb_of[r["face"]])
        inner = items.nth(k).locator(".region-clusters > li")
        assert inner.count() == 0 or not inner.first.is_visible()
        items.nth(k).locator("button.open").click()
        assert inner.count() == len(r["clusters"])
        for j, cid in enumerate(r["clusters"]):
            c = clusters[cid]
            assert inner.nth(j).inner_text().startswith(f"#{cid} · {c['size']} posters"), inner.nth(j).inner_text()
            assert inner.nth(j).locator("img").get_attribute("src").endswith(thumb_of[c["face"]])
    # What made them: the map's seed and the setting chosen.
    made = page.locator("#clusters-made").inner_text()
    chosen = data["meta"]["clustering"]["chosen"]
    assert f"seed {data['meta']['seed']}" in made and f"density over {chosen['scale']} neighbours" in made, made
    apart = sum(island["size"] for island in data["meta"]["clustering"].get("left_out", []))
    assert (f"; {apart} of them on " in made) == (apart > 0), made
    page.watch.assert_clean()


def test_a_region_flies_to_its_posters_shows_its_years_and_a_bar_filters_to_them(page, site):
    server, data = site
    r = data["meta"]["regions"][0]
    inside = {pid for pid, k in zip(data["columns"]["id"], data["columns"]["region"]) if k == r["id"]}
    open_map(page, server.url)
    settle(page)
    page.click("#show-clusters")
    page.click(f"#clusters-list button[data-region='{r['id']}']")
    settle(page)
    assert set(page.evaluate("window.posterMap.selection()")) == inside
    assert page.evaluate("location.hash") == f"#region={r['id']}"
    assert page.locator("#selection-title").inner_text() == f"Region {region_name(r['id'])}"
    # The histogram: a bar per year of the map (the fixture's five years), the region's counts in them.
    year_of = dict(zip(data["columns"]["id"], data["columns"]["year"]))
    bars = page.locator("#selection-years-chart rect.bar")
    years = sorted({y for y in data["columns"]["year"] if y is not None})
    assert bars.count() == years[-1] - years[0] + 1
    counts = {}
    for k in range(bars.count()):
        bar = bars.nth(k)
        year = int(bar.get_attribute("data-from"))
        counts[year] = int(bar.locator("title").text_content().split(": ")[1].split(" ")[0])
    assert counts == {y: sum(1 for pid in inside if year_of[pid] == y) for y in range(years[0], years[-1] + 1)}
    # A click on a bar shows only its years on the map.
    busiest = max(counts, key=counts.get)
    page.locator(f"#selection-years-chart rect.bar[data-from='{busiest}']").click()
    assert page.input_value("#year-from") == str(busiest) and page.input_value("#year-to") == str(busiest)
    assert page.evaluate("window.posterMap.view().years") == [busiest, busiest]
    page.watch.assert_clean()


def test_a_click_on_a_cluster_flies_to_it_marks_its_members_and_dims_the_rest(page, site):
    server, data = site
    c = data["meta"]["clusters"][1]
    open_map(page, server.url)
    settle(page)
    home = page.evaluate(TRANSFORM)
    before = brightness(page)
    page.click("#show-clusters")
    open_region_of(page, data, c["id"])
    page.click(f"#clusters-list button[data-cluster='{c['id']}']")
    settle(page)
    assert set(page.evaluate("window.posterMap.selection()")) == members(data, c["id"])
    region = region_name(c["region"])
    assert page.locator("#selection-title").inner_text() == f"Cluster #{c['id']} · region {region}"
    assert page.evaluate("location.hash") == f"#cluster={c['id']}"
    assert page.locator("#selection-count").inner_text().startswith(f"{c['size']} posters")
    # The cluster fills the part of the map the panel leaves.
    assert page.evaluate(TRANSFORM)[2] > home[2] * 1.5
    box = page.locator("#map").bounding_box()
    panel = page.locator("#clusters").bounding_box()
    now = screen_points(page)
    for pid in members(data, c["id"]):
        x, y = now[pid]
        assert box["x"] <= x <= panel["x"] and box["y"] <= y <= box["y"] + box["height"], pid
    # Esc brings the map back: no selection, no dimming, and the view from before the flight.
    page.keyboard.press("Escape")
    settle(page)
    assert page.evaluate("window.posterMap.selection()") is None
    assert page.evaluate("location.hash") == ""
    assert page.evaluate(TRANSFORM) == pytest.approx(home, abs=0.5)
    after = brightness(page)
    for pid, was in before.items():
        assert abs(after[pid] - was) < 30, pid
    # Chosen again and seen at the home view: members keep their colours, the rest are dimmed.
    open_region_of(page, data, c["id"])
    page.click(f"#clusters-list button[data-cluster='{c['id']}']")
    page.keyboard.press("0")
    settle(page)
    after = brightness(page)
    for pid, was in before.items():
        if pid in members(data, c["id"]):
            assert abs(after[pid] - was) < 30, pid
        else:
            assert after[pid] < 0.5 * was, (pid, was, after[pid])
    page.watch.assert_clean()


def hex_rgb(h):
    return [int(h[i:i + 2], 16) for i in (1, 3, 5)]


def dist(a, b):
    return sum((x - y) ** 2 for x, y in zip(a, b)) ** 0.5


def check_outlines(page, shapes, colour_of):
    """Each shape's outline (grown by half a poster's diagonal, as the page draws it) is drawn in its colour:
    the points a quarter, half and three quarters along its edges that lie on the bare background with
    colour by cluster off, and at least two of each shape, take that colour with it on."""
    view = page.evaluate("""() => { const v = window.posterMap.view(), t = v.transform,
        r = document.getElementById('map').getBoundingClientRect();
        return {side: v.side, slot: v.slot, x: r.left + t.x, y: r.top + t.y, k: t.k}; }""")

    def on_screen(x, y):
        return view["x"] + view["k"] * (x + 1) / 2 * view["side"], view["y"] + view["k"] * (1 - y) / 2 * view["side"]

    box = page.locator("#map").bounding_box()
    page.uncheck("#cluster-colours")
    settle(page)
    edges = []
    for shape in shapes:
        cx, cy = on_screen(*shape["centroid"])
        grown = []
        for x, y in shape["outline"]:
            sx, sy = on_screen(x, y)
            d = max(1e-9, ((sx - cx) ** 2 + (sy - cy) ** 2) ** 0.5)
            pad = 0.75 * view["slot"] * view["k"]
            grown.append((sx + (sx - cx) / d * pad, sy + (sy - cy) / d * pad))
        for (ax, ay), (bx, by) in zip(grown, grown[1:] + grown[:1]):
            for t in (0.25, 0.5, 0.75):
                mx, my = ax + t * (bx - ax), ay + t * (by - ay)
                on_canvas = (box["x"] + 2 < mx < box["x"] + box["width"] - 2
                             and box["y"] + 2 < my < box["y"] + box["height"] - 2)
                if on_canvas and dist(pixel(page, mx, my), [17, 17, 17]) < 10:
                    edges.append((shape, mx, my))
    for shape in shapes:
        assert sum(s is shape for s, *_ in edges) >= 2, (shape["id"], edges)
    page.check("#cluster-colours")
    settle(page)
    for shape, mx, my in edges:
        near = [pixel(page, mx + dx, my + dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]
        assert min(dist(p, colour_of(shape)) for p in near) < 60, (shape["id"], mx, my, near)


def test_colour_by_cluster_tints_each_cluster_and_outlines_regions_then_clusters(page, site):
    server, data = site
    open_map(page, server.url)
    # The tints on the grid, where no poster lies over another: each poster's colour is its own.
    on_grid(page)
    colours = poster_colours(page)
    page.check("#cluster-colours")
    settle(page)
    tinted = poster_colours(page)
    for pid, c in zip(data["columns"]["id"], data["columns"]["cluster"]):
        if c < 0:
            continue
        target = hex_rgb(TABLEAU10[c % 10])
        assert dist(tinted[pid], target) < dist(colours[pid], target) - 20, pid
        # A 45% tint over the poster, however many posters overlap there: not a solid colour.
        expected = [0.55 * a + 0.45 * b for a, b in zip(colours[pid], target)]
        assert dist(tinted[pid], expected) < 30, (pid, colours[pid], tinted[pid], expected)
    # Outlines round the posters, on the t-SNE map: at the first view each region's (white), zoomed in each
    # cluster's (its colour). Where the middle of an edge fell on the background without them, it is now the
    # outline's.
    page.click("#layout-tsne")
    page.wait_for_function("!window.posterMap.view().fading && window.posterMap.view().layout === 'tsne'")
    settle(page)
    assert page.evaluate("window.posterMap.outlines()") == "regions"
    white = [217, 217, 217]  # rgba(255, 255, 255, 0.85) over the background
    check_outlines(page, data["meta"]["regions"], lambda shape: white)
    box = page.locator("#map").bounding_box()
    for cluster in data["meta"]["clusters"]:  # each in the middle of the view in turn, zoomed in
        page.evaluate(f"""([x, y]) => {{ const m = window.posterMap.view(), k = 1.7;
            window.posterMap.zoomTo(k, {box["width"]} / 2 - k * (x + 1) / 2 * m.side,
                                    {box["height"]} / 2 - k * (1 - y) / 2 * m.side); }}""", cluster["centroid"])
        settle(page)
        assert page.evaluate("window.posterMap.outlines()") == "clusters"
        check_outlines(page, [cluster], lambda shape: hex_rgb(TABLEAU10[shape["id"] % 10]))
    # Decades and clusters colour one at a time.
    page.check("#decades")
    assert not page.is_checked("#cluster-colours")
    page.watch.assert_clean()


def lasso_around(page, data, cluster, margin=12):
    """A rectangle around a cluster's members with no other poster's centre near its edges."""
    pts = screen_points(page)
    inner = [pts[pid] for pid in members(data, cluster)]
    x0, y0 = min(p[0] for p in inner) - margin, min(p[1] for p in inner) - margin
    x1, y1 = max(p[0] for p in inner) + margin, max(p[1] for p in inner) + margin
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)], pts


def test_a_lasso_selects_exactly_the_posters_inside_it(page, site):
    server, data = site
    open_map(page, server.url)
    settle(page)
    polygon, pts = lasso_around(page, data, 0)
    # A triangle, so that the box of the lasso is not what decides.
    (x0, y0), (x1, _), (_, y1), _ = polygon
    triangle = [(x0, y0), (x1 + (x1 - x0), y0), (x0, y1 + (y1 - y0))]
    expected = {pid for pid, (x, y) in pts.items() if inside(x, y, triangle)}
    assert all(distance_to_edges(x, y, triangle) > 2 for x, y in pts.values()), "a poster on the edge"
    assert expected and len(expected) < len(pts)
    draw_lasso(page, triangle)
    assert set(page.evaluate("window.posterMap.selection()")) == expected
    assert page.locator("#selection-title").inner_text() == "Lasso selection"
    assert page.locator("#selection-count").inner_text().startswith(f"{len(expected)} poster")
    assert page.evaluate("window.posterMap.view().selected") is None  # the drag opened no poster
    # The button draws one without shift, once.
    page.keyboard.press("Escape")
    settle(page)
    page.click("#lasso")
    polygon, pts = lasso_around(page, data, 1)
    draw_lasso(page, polygon, shift=False)
    assert set(page.evaluate("window.posterMap.selection()")) == \
        {pid for pid, (x, y) in pts.items() if inside(x, y, polygon)}
    assert page.get_attribute("#lasso", "aria-pressed") == "false"
    page.watch.assert_clean()


def test_export_downloads_the_selection_as_csv_most_central_first(page, site):
    server, data = site
    open_map(page, server.url)
    settle(page)
    polygon, pts = lasso_around(page, data, 0)
    draw_lasso(page, polygon)
    selected = page.evaluate("window.posterMap.selection()")
    with page.expect_download() as info:
        page.click("#selection-export")
    download = info.value
    rows = list(csv.reader(io.StringIO(open(download.path(), encoding="utf-8", newline="").read())))
    named = [c["name"] for c in data["meta"]["categories"]]
    assert rows[0] == ["poster_id", "title", "year", "cluster", "x", "y", "distance", "image", "original", "page",
                       *named]
    by_id = {p["id"]: p for p in points_of(data)}
    cluster = dict(zip(data["columns"]["id"], data["columns"]["cluster"]))
    assert [r[0] for r in rows[1:]] == selected
    for pid, title, year, in_cluster, x, y, _, image, original, page_url, *values in rows[1:]:
        assert original == "" and len(values) == len(named)  # scraped: no file of the user's
        point = by_id[pid]
        assert title == point["title"] and year == str(point["year"]) and image == point["image"]
        assert (int(in_cluster), float(x), float(y)) == (cluster[pid], point["x"], point["y"])
        assert page_url == data["meta"]["paths"]["page"].replace("{id}", pid)
        with urllib.request.urlopen(server.url + image) as response:  # relative to the page: it opens
            assert response.status == 200
    # Most central first: the distance to the selection's middle never decreases.
    xs = [by_id[pid]["x"] for pid in selected]
    ys = [by_id[pid]["y"] for pid in selected]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    d = [(x - mx) ** 2 + (y - my) ** 2 for x, y in zip(xs, ys)]
    assert d == sorted(d)
    page.watch.assert_clean()


def test_an_export_stops_when_the_selection_goes_and_the_next_one_exports_whole(page, site):
    """The export is made a slice per task: a selection cleared before it is done stops it (no file), and
    the button then exports the next selection, all of it."""
    server, data = site
    open_map(page, server.url)
    settle(page)
    downloads = []
    page.on("download", lambda download: downloads.append(download))
    polygon, _ = lasso_around(page, data, 0)
    draw_lasso(page, polygon)
    # The click and Escape in one task: the export's first slice comes after the selection is gone.
    page.evaluate("""() => {
        document.getElementById("selection-export").click();
        window.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape" }));
    }""")
    assert page.evaluate("window.posterMap.selection()") is None
    settle(page)  # settled() waits for an export under way
    assert downloads == [] and page.text_content("#selection-status") == ""
    page.keyboard.press("Escape")  # the Clusters list, which Escape left open, off the map
    settle(page)
    box = page.locator("#map").bounding_box()  # round most of the map: more posters than the panel shows
    x0, y0, x1, y1 = box["x"] + 30, box["y"] + 30, box["x"] + box["width"] - 30, box["y"] + box["height"] - 30
    draw_lasso(page, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
    selected = page.evaluate("window.posterMap.selection()")
    assert len(selected) > 20
    with page.expect_download() as info:
        page.click("#selection-export")
    rows = list(csv.reader(io.StringIO(open(info.value.path(), encoding="utf-8", newline="").read())))
    assert [r[0] for r in rows[1:]] == selected and len(downloads) == 1
    settle(page)  # the status line says again what the panel shows, not "Exporting…"
    shown = page.locator("#selection-list > *").count()
    assert page.text_content("#selection-status") == (
        f"The {shown} most central are shown; Export has all {len(selected)}." if len(selected) > shown else "")
    page.watch.assert_clean()


def test_a_title_with_quotes_and_markup_is_exported_as_the_same_text(page, site):
    server, data = site
    pid = next(p["id"] for p in points_of(data) if p["title"] == HOSTILE)
    cluster = dict(zip(data["columns"]["id"], data["columns"]["cluster"]))[pid]
    assert cluster >= 0
    open_map(page, server.url)
    settle(page)
    page.evaluate("c => window.posterMap.selectCluster(c)", cluster)
    settle(page)
    with page.expect_download() as info:
        page.click("#selection-export")
    assert info.value.suggested_filename == f"cluster-{cluster}.csv"
    rows = list(csv.reader(io.StringIO(open(info.value.path(), encoding="utf-8", newline="").read())))
    assert len(rows) == len(members(data, cluster)) + 1
    assert [r[1] for r in rows if r[0] == pid] == [HOSTILE]
    assert page.evaluate("window.__pwned") is None


@pytest.mark.parametrize("kind", ["cluster", "region", "lasso"])
def test_the_permalink_restores_the_selection(browser, site, kind):
    server, data = site
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    open_map(page, server.url)
    settle(page)
    if kind == "cluster":
        page.evaluate("window.posterMap.selectCluster(1)")
    elif kind == "region":
        page.evaluate("window.posterMap.selectRegion(0)")
    else:
        polygon, _ = lasso_around(page, data, 0)
        draw_lasso(page, polygon)
    settle(page)
    chosen = page.evaluate("window.posterMap.selection()")
    url = page.url
    assert f"#{kind}=" in url
    page.close()
    again = browser.new_page(viewport={"width": 1000, "height": 700})
    again.goto(url)
    again.wait_for_function("window.posterMap && window.posterMap.ready", timeout=20000)
    settle(again)
    assert again.evaluate("window.posterMap.selection()") == chosen
    assert again.locator("#selection-view").is_visible()
    again.close()


@contextlib.contextmanager
def map_in(browser, web):
    """A page (1000 x 700) on the map in the folder ``web``, served on its own, settled; it must log no
    error, and it is closed with its server."""
    from browser import PageWatch, StaticServer

    server = StaticServer(web)
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    watch = PageWatch(page)
    try:
        open_map(page, server.url)
        settle(page)
        yield page
        watch.assert_clean()
    finally:
        page.close()
        server.close()


def test_a_map_without_clusters_hides_their_controls_and_still_lassos(browser, tmp_path):
    from browser import copy_page
    from mapdata import make_mapdata
    from posters_cnn.mapping import stage as visu

    manifest, feats, _ = make_mapdata(tmp_path, n_per_cluster=6)
    web = tmp_path / "web"
    copy_page(web)
    visu.make_map(feats, manifest, web / "data.json", clusters=False, pair_images=False)
    with map_in(browser, web) as page:
        assert page.locator("#show-clusters").is_hidden()
        assert page.locator("#cluster-colours").is_hidden()
        pts = screen_points(page)
        xs, ys = [p[0] for p in pts.values()], [p[1] for p in pts.values()]
        polygon = [(min(xs) - 15, min(ys) - 15), (max(xs) + 15, min(ys) - 15), (max(xs) + 15, max(ys) + 15),
                   (min(xs) - 15, max(ys) + 15)]
        draw_lasso(page, polygon)
        assert set(page.evaluate("window.posterMap.selection()")) == set(pts)
        assert page.locator("#selection-back").is_hidden()  # no clusters to go back to


def test_a_map_made_before_regions_lists_its_clusters_flat(browser, site, tmp_path):
    """A data.json written before regions existed (no meta.regions, no columns.region) still opens: the
    panel lists its clusters as before, a click selects one, and colour by cluster outlines clusters."""
    import json
    import shutil

    server, data = site
    web = tmp_path / "web"
    shutil.copytree(server.folder, web, symlinks=True)
    old = read_map(web / "data.json")
    del old["meta"]["regions"], old["columns"]["region"]
    for key in ("regions", "seed", "chosen", "candidates", "cluster_rule", "region_rule"):
        old["meta"]["clustering"].pop(key, None)
    for c in old["meta"]["clusters"]:
        del c["region"]
    (web / "data.json").write_text(json.dumps(old))
    with map_in(browser, web) as page:
        page.click("#show-clusters")
        items = page.locator("#clusters-list > li")
        assert items.count() == len(old["meta"]["clusters"])
        assert page.locator("#clusters-list li.region").count() == 0
        c = old["meta"]["clusters"][1]
        page.click(f"#clusters-list button[data-cluster='{c['id']}']")
        settle(page)
        assert set(page.evaluate("window.posterMap.selection()")) == members(data, c["id"])
        assert page.locator("#selection-title").inner_text() == f"Cluster #{c['id']}"
        page.keyboard.press("Escape")
        page.check("#cluster-colours")
        settle(page)
        assert page.evaluate("window.posterMap.outlines()") == "clusters"


def test_a_finger_draws_a_lasso_in_lasso_mode_and_does_not_pan(browser, site):
    server, data = site
    context = browser.new_context(viewport={"width": 1000, "height": 700}, has_touch=True)
    page = context.new_page()
    try:
        open_map(page, server.url)
        settle(page)
        page.tap("#lasso")
        polygon, pts = lasso_around(page, data, 0)
        view = page.evaluate(TRANSFORM)
        cdp = context.new_cdp_session(page)
        start = {"x": polygon[0][0], "y": polygon[0][1]}
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [start]})
        for (xa, ya), (xb, yb) in zip(polygon, polygon[1:] + polygon[:1]):
            for k in range(1, 6):
                cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [
                    {"x": xa + (xb - xa) * k / 5, "y": ya + (yb - ya) * k / 5}]})
        assert page.evaluate(TRANSFORM) == view  # the finger drew; it did not pan
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        settle(page)
        assert set(page.evaluate("window.posterMap.selection()")) == \
            {pid for pid, (x, y) in pts.items() if inside(x, y, polygon)}
    finally:
        context.close()


@pytest.fixture(scope="module")
def accented(tmp_path_factory):
    """A map whose images lie in folders and files with accents and spaces, as a user's own folder does."""
    import dataclasses
    import json

    from browser import StaticServer, copy_page
    from mapdata import make_mapdata
    from posters_cnn.contracts.manifest import read_records, write_manifest
    from posters_cnn.mapping import stage as visu

    folder = tmp_path_factory.mktemp("accented")
    manifest, feats, cluster_of = make_mapdata(folder, n_per_cluster=8, clusters=2)
    records, about = [], ["poster_id,Genre\n"]
    for k, (pid, record) in enumerate(read_records(manifest).items()):
        if k % 3 == 0:
            moved = {}
            for key in ("image_path", "thumb_path"):
                kind = getattr(record, key).split("/")[0]
                rel = f"{kind}/été 2020/affiche n°{k} – {pid.split('/')[1]}.jpg"
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                (folder / getattr(record, key)).rename(folder / rel)
                moved[key] = rel
            # as --from-dir records it: the folder the user sorted it into, the file it came from
            moved["folder"] = "Été 2020/Affichés"
            moved["image_url"] = (folder / moved["image_path"]).as_uri()
            record = dataclasses.replace(record, **moved)
        elif k % 3 == 1:
            record = dataclasses.replace(record, folder="Comédie")
        records.append(record)
        if k % 4:  # every fourth poster has no row: no value
            about.append(f"{pid},{['Horreur', 'Drame d’amour'][cluster_of[pid]]}\n")
    write_manifest(manifest, records)
    (folder / "about.csv").write_text("".join(about), encoding="utf-8")
    web = folder / "web"
    copy_page(web)
    visu.make_map(feats, manifest, web / "data.json", neighbors=4, pairs=5, pair_images=False, grid=True,
                  metadata=folder / "about.csv")
    server = StaticServer(web)
    yield server, web, read_map(web / "data.json")
    server.close()


@pytest.fixture(scope="module")
def island_map(tmp_path_factory):
    """Stage 3 as a user runs it on groups.no_group_island: an island of posters of no group, left out of
    the clusters."""
    import get_data_visu
    from browser import StaticServer, copy_page
    from groups import no_group_island, write_stage2

    folder = tmp_path_factory.mktemp("island")
    features, _ = no_group_island()
    write_stage2(folder, features)
    web = folder / "web"
    copy_page(web)
    assert get_data_visu.main(["-i", str(folder / "features.h5"), "-o", str(web / "data.json"), "--n-sample", "0",
                               "--no-pair-images", "-q"]) == 0
    server = StaticServer(web)
    yield server, read_map(web / "data.json")
    server.close()


def test_the_clusters_panel_says_how_many_posters_sit_on_islands_left_out(page, island_map):
    server, data = island_map
    left_out = data["meta"]["clustering"]["left_out"]
    assert left_out, "the fixture's posters of no group should make an island"
    open_map(page, server.url)
    page.click("#show-clusters")
    made = page.locator("#clusters-made").inner_text()
    apart = sum(island["size"] for island in left_out)
    unclustered = data["meta"]["clustering"]["unclustered"]
    where = "an island" if len(left_out) == 1 else "islands"
    assert f"{unclustered} posters in none; {apart} of them on {where} whose posters look alike" in made, made
    assert page.locator("#clusters-list > li").count() == len(data["meta"]["regions"])
    page.watch.assert_clean()


def test_an_export_names_files_a_user_can_open_and_reads_back_in_pandas(page, accented):
    import pandas as pd

    server, web, data = accented
    open_map(page, server.url)
    settle(page)
    cluster = data["columns"]["cluster"][0]
    page.evaluate("c => window.posterMap.selectCluster(c)", cluster)
    settle(page)
    with page.expect_download() as info:
        page.click("#selection-export")
    table = pd.read_csv(info.value.path(), encoding="utf-8", keep_default_na=False)
    assert list(table.columns) == ["poster_id", "title", "year", "cluster", "x", "y", "distance", "image", "original",
                                   "page", "folder", "version", "Genre"]
    members = [pid for pid, c in zip(data["columns"]["id"], data["columns"]["cluster"]) if c == cluster]
    assert sorted(table.poster_id) == sorted(members) and set(table.cluster) == {cluster}
    accented_rows = table[table.image.str.contains("été 2020")]
    assert len(accented_rows) >= 2  # the paths are the files' names, not URLs
    for image in table.image:
        assert (web / image).is_file(), image
    # the file each came from (a folder's image), and its categories as the map has them
    for row in table.itertuples():
        assert (row.original != "") == (row.folder == "Été 2020/Affichés")
        assert not row.original or (web / row.image).read_bytes() == open(row.original, "rb").read()
    for c, about in enumerate(data["meta"]["categories"]):
        value = {pid: about["values"][code] if code >= 0 else "" for pid, code in
                 zip(data["columns"]["id"], data["columns"]["categories"][c])}
        assert [str(v) for v in table[about["name"]]] == [value[pid] for pid in table.poster_id]
    assert {"Horreur", "Drame d’amour"} & set(table.Genre) and "" in set(table.Genre)
    assert list(table.distance) == sorted(table.distance)  # most central first
    x = dict(zip(data["columns"]["id"], data["columns"]["x"]))
    assert all(abs(x[pid] - value) < 1e-5 for pid, value in zip(table.poster_id, table.x))
    page.watch.assert_clean()


def test_an_empty_lasso_selects_nothing_and_says_so(page, site):
    server, data = site
    open_map(page, server.url)
    settle(page)
    pts = screen_points(page)
    view = page.evaluate("window.posterMap.view()")
    # A square in a corner of the canvas with no poster's centre near it.
    box = [(12, view["height"] - 60), (60, view["height"] - 60), (60, view["height"] - 12), (12, view["height"] - 12)]
    top = page.evaluate("document.getElementById('map').getBoundingClientRect().top")
    polygon = [(x, y + top) for x, y in box]
    assert not [p for p in pts.values() if 0 <= p[0] <= 80 and polygon[0][1] - 20 <= p[1] <= polygon[2][1] + 20]
    draw_lasso(page, polygon)
    page.wait_for_selector("#map-status:not([hidden])")
    assert "No poster inside the lasso" in page.text_content("#map-status")
    assert page.evaluate("window.posterMap.selection()") is None
    assert "lasso=" not in page.url
    # A selection made before an empty lasso stays.
    page.evaluate("window.posterMap.selectCluster(1)")
    settle(page)
    chosen = page.evaluate("window.posterMap.selection()")
    draw_lasso(page, polygon)
    page.wait_for_selector("#map-status:not([hidden])")
    assert page.evaluate("window.posterMap.selection()") == chosen and "#cluster=1" in page.url
    page.watch.assert_clean()


PERMALINK_STATES = [
    ("grid", "years", "cluster colours", "cluster", "poster"),
    ("decade colours", "region", "poster"),
    ("grid", "lasso"),
    ("from a year", "lasso"),
    ("poster",),
]


@pytest.mark.parametrize("state", PERMALINK_STATES, ids=lambda s: "+".join(s))
def test_every_state_the_page_writes_into_its_url_comes_back_on_reload(browser, site, state):
    server, data = site
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    open_map(page, server.url)
    settle(page)
    if "grid" in state:
        page.click("#layout-grid")
        page.wait_for_function("!window.posterMap.view().fading && window.posterMap.view().layout === 'grid'")
    if "years" in state or "from a year" in state:
        page.fill("#year-from", "1995")
        page.fill("#year-to", "2005" if "years" in state else "")
        page.press("#year-from", "Enter")
        page.wait_for_function("window.posterMap.view().years[0] === 1995")
    if "cluster colours" in state:
        page.check("#cluster-colours")
    if "decade colours" in state:
        page.check("#decades")
    if "cluster" in state:
        page.evaluate("window.posterMap.selectCluster(1)")
    if "region" in state:
        page.evaluate("window.posterMap.selectRegion(0)")
    if "lasso" in state:
        polygon, _ = lasso_around(page, data, 0)
        draw_lasso(page, polygon)
    if "poster" in state:
        chosen = sorted(members(data, 1))[0] if "cluster" in state else data["columns"]["id"][3]
        page.evaluate("id => window.posterMap.select(id)", chosen)
    settle(page)
    keys = ("layout", "years", "colouring", "selected")
    before = {key: page.evaluate("window.posterMap.view()")[key] for key in keys}
    before["selection"] = page.evaluate("window.posterMap.selection()")
    url = page.url
    page.close()
    again = browser.new_page(viewport={"width": 1000, "height": 700})
    watch = PageWatch(again)
    again.goto(url)
    again.wait_for_function("window.posterMap && window.posterMap.ready", timeout=20000)
    settle(again)
    after = {key: again.evaluate("window.posterMap.view()")[key] for key in keys}
    after["selection"] = again.evaluate("window.posterMap.selection()")
    assert after == before, url
    assert again.url == url  # written back the same
    assert again.is_hidden("#map-status")
    watch.assert_clean()
    again.close()


def test_a_link_that_names_what_the_map_lacks_says_so_in_one_line(browser, site):
    server, data = site
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    page.goto(f"{server.url}index.html?data.json#cluster=99&lasso=tsne:1,2;oops&poster=nope")
    page.wait_for_function("window.posterMap && window.posterMap.ready", timeout=20000)
    settle(page)
    page.wait_for_selector("#map-status:not([hidden])")
    said = page.text_content("#map-status")
    assert len(said.splitlines()) == 1
    assert "cluster 99" in said and "poster “nope”" in said and "lasso=" in said, said
    assert page.evaluate("window.posterMap.selection()") is None
    assert page.evaluate("window.posterMap.view().selected") is None
    assert "#" not in page.url  # what named nothing is not written back
    page.close()


def test_a_lasso_by_the_right_edge_is_brought_out_from_under_the_panel_and_plus_zooms_about_it(page, site):
    server, data = site
    open_map(page, server.url)
    settle(page)
    cluster = 0
    # The cluster at the canvas's right edge, where the selection's panel will open over it.
    ids = sorted(members(data, cluster))
    view = page.evaluate("window.posterMap.view()")
    page.evaluate("([id, x, y]) => window.posterMap.placePoster(id, 3, x, y)", [ids[0], view["width"] - 60, view["height"] / 2])
    settle(page)
    polygon, pts = lasso_around(page, data, cluster)
    draw_lasso(page, polygon)
    page.wait_for_function("window.posterMap.selection() && window.posterMap.settled()")
    settle(page)
    chosen = page.evaluate("window.posterMap.selection()")
    free = page.evaluate("""() => { const c = document.getElementById('map').getBoundingClientRect();
        const p = document.getElementById('clusters').getBoundingClientRect();
        return [c.left, c.top, Math.min(c.right, p.left), c.bottom]; }""")

    def centres():
        return {pid: page.evaluate("id => window.posterMap.screenPosition(id)", pid) for pid in chosen}

    for pid, p in centres().items():
        assert free[0] <= p["x"] <= free[2] and free[1] <= p["y"] <= free[3], (pid, p, free)
    # "+" zooms about the middle of the free part: the selection's middle stays in it.
    before = centres()
    page.keyboard.press("+")
    settle(page)
    after = centres()
    mid = lambda c: (sum(p["x"] for p in c.values()) / len(c), sum(p["y"] for p in c.values()) / len(c))  # noqa: E731
    (bx, by), (ax, ay) = mid(before), mid(after)
    cx, cy = (free[0] + free[2]) / 2, (free[1] + free[3]) / 2
    # About (cx, cy): a point's offset from it grows 1.5 times.
    assert abs((ax - cx) - 1.5 * (bx - cx)) < 2 and abs((ay - cy) - 1.5 * (by - cy)) < 2, ((bx, by), (ax, ay), (cx, cy))
    page.watch.assert_clean()


def empty_spot(page):
    """A point on the canvas (page px) at least 40 px from every poster's centre."""
    pts = list(screen_points(page).values())
    rect = page.evaluate("(() => { const r = document.getElementById('map').getBoundingClientRect(); "
                         "return [r.left, r.top, r.right, r.bottom]; })()")
    for y in range(int(rect[1]) + 30, int(rect[3]) - 30, 20):
        for x in range(int(rect[0]) + 30, int(rect[2]) - 30, 20):
            if all((x - px) ** 2 + (y - py) ** 2 > 40 ** 2 for px, py in pts):
                return x, y
    raise AssertionError("no empty spot on the map")


@pytest.mark.parametrize("how", ["the panel's ×", "the toolbar's clear", "a click on empty map"])
def test_every_way_to_clear_a_selection_clears_it(page, site, how):
    server, data = site
    open_map(page, server.url)
    settle(page)
    page.evaluate("window.posterMap.selectCluster(1)")
    settle(page)
    assert page.is_visible("#clear-selection") and "#cluster=1" in page.url
    if how == "the panel's ×":
        page.click("#clusters-close")
    elif how == "the toolbar's clear":
        page.click("#clear-selection")
    else:
        page.mouse.click(*empty_spot(page))
    settle(page)
    assert page.evaluate("window.posterMap.selection()") is None
    assert "cluster=" not in page.url and page.is_hidden("#clear-selection") and page.is_hidden("#clusters")
    page.watch.assert_clean()


def test_a_tap_on_empty_map_closes_the_poster_first_then_the_selection_on_a_phone(phone, site):
    server, data = site
    page = phone
    open_map(page, server.url)
    settle(page)
    page.evaluate("window.posterMap.selectCluster(1)")
    page.evaluate("id => window.posterMap.select(id)", sorted(members(data, 1))[0])
    settle(page)
    page.touchscreen.tap(*empty_spot(page))
    page.wait_for_function("window.posterMap.view().selected === null")
    assert page.evaluate("window.posterMap.selection()") is not None  # the poster went first
    settle(page)
    page.touchscreen.tap(*empty_spot(page))
    page.wait_for_function("window.posterMap.selection() === null")
    assert "cluster=" not in page.url
    page.watch.assert_clean()


def test_colour_by_cluster_keeps_the_chosen_posters_readable(page, site):
    """The chosen cluster's posters keep their own colours (a frame shows the cluster's), where a wash
    would have mixed 45% of the cluster's colour into every pixel. On the grid, where no poster lies over
    another: each chosen poster is measured where the map shows it alone."""
    server, data = site
    open_map(page, server.url)
    on_grid(page)
    page.evaluate("window.posterMap.selectCluster(1)")
    settle(page)
    plain = poster_colours(page)
    page.check("#cluster-colours")
    settle(page)
    coloured = poster_colours(page)
    chosen = members(data, 1)
    assert chosen
    for pid in chosen:
        assert max(abs(a - b) for a, b in zip(plain[pid], coloured[pid])) <= 6, (pid, plain[pid], coloured[pid])
    page.watch.assert_clean()


@pytest.fixture(scope="module")
def undated(tmp_path_factory):
    """A map on which every third poster has no year, as a user's own folder has."""
    import dataclasses
    import json

    from browser import StaticServer, copy_page
    from mapdata import make_mapdata
    from posters_cnn.contracts.manifest import read_records, write_manifest
    from posters_cnn.mapping import stage as visu

    folder = tmp_path_factory.mktemp("undated")
    manifest, feats, _ = make_mapdata(folder, n_per_cluster=8, clusters=2)
    records = [dataclasses.replace(r, year=None) if k % 3 == 0 else r
               for k, r in enumerate(read_records(manifest).values())]
    write_manifest(manifest, records)
    web = folder / "web"
    copy_page(web)
    visu.make_map(feats, manifest, web / "data.json", grid=True, neighbors=4, pairs=5, pair_images=False)
    server = StaticServer(web)
    yield server, read_map(web / "data.json")
    server.close()


def test_posters_with_no_year_have_a_legend_entry_and_a_year_filter_dims_them(page, undated):
    server, data = undated
    open_map(page, server.url)
    on_grid(page)
    years = dict(zip(data["columns"]["id"], data["columns"]["year"]))
    undated_ids = {pid for pid, year in years.items() if year is None}
    assert undated_ids and len(undated_ids) < len(years)
    lit = poster_colours(page)
    page.check("#decades")
    page.wait_for_selector("#legend button[data-decade='none']")
    assert page.text_content("#legend button[data-decade='none']").strip() == "No year"
    page.uncheck("#decades")  # the colours off, to compare pixels

    def dimmed():
        now = poster_colours(page)
        return {pid for pid in years if sum(now[pid]) < 0.5 * sum(lit[pid]) or sum(now[pid]) < 60}

    page.fill("#year-from", "1990")
    page.fill("#year-to", "2010")
    page.press("#year-to", "Enter")
    page.wait_for_function("window.posterMap.view().years[0] === 1990")
    settle(page)
    assert dimmed() == undated_ids  # a year filter: the posters with no year are not of those years
    page.check("#decades")
    page.click("#legend button[data-decade='none']")
    page.uncheck("#decades")
    settle(page)
    assert dimmed() == set(years) - undated_ids  # "No year": only those
    assert "years=none" in page.url
    page.check("#decades")
    assert page.get_attribute("#legend button[data-decade='none']", "aria-pressed") == "true"
    page.click("#legend button[data-decade='none']")  # again: every poster
    page.uncheck("#decades")
    settle(page)
    assert dimmed() == set() and "years=" not in page.url
    page.watch.assert_clean()
