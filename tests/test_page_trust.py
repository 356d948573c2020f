"""The page's promises against doctored data files and permalinks, in a real Chromium.

A doctored file is refused with a message on the page (never "Loading…" for ever, never a frozen tab),
what the page draws and lists stays bounded, and titles stay text wherever they are shown.
"""

import json
import shutil

import pytest

from mapdata import read_map
from browser import wait_text
from test_page import HOSTILE, browser, point, site  # noqa: F401  (fixtures)


@pytest.fixture(scope="module")
def folder(site, tmp_path_factory):  # noqa: F811
    """A copy of the site's web folder to put doctored files in, served on its own."""
    from browser import StaticServer

    web = tmp_path_factory.mktemp("trust") / "web"
    shutil.copytree(site[0].folder, web)
    server = StaticServer(web)
    server.folder = web
    yield server, read_map(web / "data.json")
    server.close()


def write_doctored(web, name, data):
    (web / name).write_text(json.dumps(data) if not isinstance(data, str) else data)


def expect_refusal(browser, server, name, hash_="", status=False):  # noqa: F811
    """The page's error message for map file ``name`` (with ``status``: whether "#map-status" shows too)."""
    page = browser.new_page()
    page.goto(f"{server.url}index.html?{name}{hash_}")
    page.wait_for_selector("#error:not([hidden])", timeout=20000)
    message = page.is_visible("#map-status") if status else page.text_content("#error")
    # The tab answers at once: nothing loops or draws without end behind the message.
    assert page.evaluate("() => { const t = performance.now(); return 1; }") == 1
    assert page.is_hidden("#loading")
    assert page.evaluate("window.posterMap.ready") is False
    page.close()
    return message


DOCTORED = {
    "x-off-the-map": lambda d: d["columns"]["x"].__setitem__(0, 1e308),
    "a-billion-neighbours": lambda d: d["meta"].__setitem__("neighbors", 10 ** 9),
    "a-million-point-outline": lambda d: d["meta"]["clusters"][0].__setitem__("outline", [[0, 0]] * 1_000_000),
    "no-ids": lambda d: d["columns"].pop("id"),
    "columns-not-an-object": lambda d: d.__setitem__("columns", [1, 2, 3]),
    "a-title-that-is-a-list": lambda d: d["columns"]["title"].__setitem__(0, ["=1+1"]),
}


@pytest.mark.parametrize("what", sorted(DOCTORED))
def test_a_doctored_map_file_is_refused_with_a_message_and_the_tab_stays_responsive(browser, folder, what):  # noqa: F811
    server, data = folder
    doctored = json.loads(json.dumps(data))
    DOCTORED[what](doctored)
    write_doctored(server.folder, f"{what}.json", doctored)
    message = expect_refusal(browser, server, f"{what}.json")
    assert f"{what}.json" in message and "not a map file" in message, message


def write_table(web, name, data, change=lambda columns: None):
    """``name``.json: the map in format 3 with its table written anew into ``tables/name/`` after ``change``."""
    from posters_cnn.contracts import maptable

    doctored = json.loads(json.dumps(data))
    change(doctored["columns"])
    about = maptable.write(web / "tables" / name, doctored["columns"], doctored["meta"], capacity=8)
    meta = {**doctored["meta"], "table": maptable.relocate(about, f"tables/{name}")}
    write_doctored(web, f"{name}.json", {"meta": meta})
    return meta["table"]


def test_a_map_in_format_2_opens_as_its_table_does(browser, folder):  # noqa: F811
    """Format 2 (columns in data.json) still opens, and the same map in either format is the same map."""
    server, data = folder
    write_doctored(server.folder, "format-2.json", {"meta": {**data["meta"], "format": 2}, "columns": data["columns"]})
    table = write_table(server.folder, "split", data)
    assert len(table["tiles"]) > 1  # the page puts the map together from several files
    seen = []
    for name in ("data", "format-2", "split"):
        page = browser.new_page()
        page.goto(f"{server.url}index.html?{name}.json")
        page.wait_for_function("window.posterMap && window.posterMap.ready", timeout=20000)
        seen.append(page.evaluate("""() => { const m = window.posterMap;
          return [m.ids(), m.ids().map((id) => m.screenBox(id)), m.view().count]; }"""))
        page.close()
    assert seen[0][0] == data["columns"]["id"]
    assert seen[0] == seen[1] == seen[2]


def test_the_first_view_is_drawn_before_the_posters_rows_arrive(browser, site):  # noqa: F811
    """Format 3: data.json and the pyramid's tiles draw the first view; the table's files, held back by the
    server here, make the map answer the pointer once they come."""
    from browser import StaticServer

    server = StaticServer(site[0].folder, held=(".arrow",))
    try:
        page = browser.new_page(viewport={"width": 1000, "height": 700})
        page.goto(f"{server.url}index.html?data.json")
        page.wait_for_function("window.posterMap && window.posterMap.firstView", timeout=20000, polling=50)
        assert page.evaluate("window.posterMap.ready") is False
        assert page.is_hidden("#loading") and page.is_visible("#map-status")
        assert "Reading the map's 30 posters" in page.text_content("#map-status")
        # The view is drawn: the canvas holds the map's tiles, not the empty background.
        colours = page.evaluate("""() => { const c = document.getElementById('map');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; const seen = new Set();
            for (let i = 0; i < d.length; i += 4 * 97) seen.add(d[i] << 16 | d[i + 1] << 8 | d[i + 2]);
            return seen.size; }""")
        assert colours > 5
        server.release.set()
        page.wait_for_function("window.posterMap.ready", timeout=20000, polling=50)
        assert page.is_hidden("#map-status") and page.evaluate("window.posterMap.view().count") == 30
        page.close()
    finally:
        server.close()


TABLE_DOCTORED = {
    "x-off-the-map-in-the-table": (lambda c: c["x"].__setitem__(0, 1e308), "not a map file"),
    "a-cluster-below-none": (lambda c: c["cluster"].__setitem__(0, -5), "not a map file"),
}


def test_a_doctored_near_file_shows_no_similar_posters_and_says_why(browser, folder):  # noqa: F811
    """Format 3 reads a tile's similar posters when one of its posters is chosen: a neighbour past the map
    is refused then, with a notice, and the panel lists none."""
    server, data = folder
    k = data["meta"]["neighbors"]
    write_table(server.folder, "far-neighbour", data, lambda c: c["neighbors"].__setitem__(0, 10 ** 6))
    page = browser.new_page()
    page.goto(f"{server.url}index.html?far-neighbour.json")
    page.wait_for_function("window.posterMap && window.posterMap.ready", timeout=20000)
    page.evaluate("id => window.posterMap.select(id)", data["columns"]["id"][0])
    page.wait_for_selector("#notice:not([hidden])", timeout=20000)
    assert "similar posters cannot be shown" in page.text_content("#notice") and "a neighbour is" in page.text_content("#notice")
    assert page.locator("#panel-similar button").count() == 0
    # A poster of another tile still shows its own.
    from posters_cnn.contracts import maptable

    pyramid = data["meta"]["tiles"]["tsne"]
    tiles = maptable.tiles_for(data["columns"]["x"], data["columns"]["y"], pyramid["origin"], pyramid["span"], 8)
    other = next(int(rows[0]) for *_, rows in tiles if 0 not in rows)
    page.evaluate("id => window.posterMap.select(id)", data["columns"]["id"][other])
    page.wait_for_function(f"document.querySelectorAll('#panel-similar button').length === {k}", timeout=20000)
    page.close()


@pytest.mark.parametrize("what", sorted(TABLE_DOCTORED))
def test_a_doctored_table_is_refused_with_a_message(browser, folder, what):  # noqa: F811
    server, data = folder
    change, said = TABLE_DOCTORED[what]
    write_table(server.folder, what, data, change)
    message = expect_refusal(browser, server, f"{what}.json")
    assert f"{what}.json" in message and said in message, message


def test_a_missing_damaged_or_misplaced_table_file_is_refused_with_a_message(browser, folder):  # noqa: F811
    server, data = folder
    web = server.folder
    table = write_table(web, "broken", data)
    z, x, y, _ = table["tiles"][-1]
    file = web / table["path"].replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y))
    file.write_bytes(b"ARROW1 but not really")
    message = expect_refusal(browser, server, "broken.json")
    assert "broken.json" in message and "not an Arrow file" in message and file.name in message, message
    assert not expect_refusal(browser, server, "broken.json", status=True)  # no "Reading…" left over it
    file.unlink()
    message = expect_refusal(browser, server, "broken.json")
    assert "HTTP 404" in message and file.name in message, message
    escaped = json.loads((web / "broken.json").read_text())
    escaped["meta"]["table"]["path"] = "http://127.0.0.2:9/{z}/{x}-{y}.arrow"
    write_doctored(web, "escaped.json", escaped)
    assert "leaves the map's folder" in expect_refusal(browser, server, "escaped.json")


def test_a_doctored_titles_file_or_search_shard_is_refused_with_a_message_and_the_map_stays_usable(
        browser, folder):  # noqa: F811
    """Titles and the search index are read after the map opens: a doctored one is said, not shown."""
    server, data = folder
    web = server.folder
    table = write_table(web, "doctored-titles", data)
    tile = lambda template, t: web / template.replace("{z}", str(t[0])).replace("{x}", str(t[1])).replace(  # noqa: E731
        "{y}", str(t[2]))
    (web / table["search"].replace("{k}", "0")).write_text("Not A Key\n" * 3)
    for t in table["tiles"]:  # (a titles file of another tile's posters: tests/js/table.test.js)
        tile(table["titles"], t).write_bytes(b"ARROW1 but not really")
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    page.goto(f"{server.url}index.html?doctored-titles.json")
    page.wait_for_function("window.posterMap && window.posterMap.ready", timeout=20000)
    page.click("#layout-grid")
    page.wait_for_function("!window.posterMap.view().fading && window.posterMap.view().layout === 'grid'")
    pos = page.evaluate("id => window.posterMap.screenPosition(id)", data["columns"]["id"][-1])
    page.mouse.move(pos["x"], pos["y"])
    wait_text(page, "#notice-text", "The posters' titles cannot be shown", start=True)  # after the random weights'
    assert page.is_visible("#notice") and "not an Arrow file" in page.text_content("#notice-text")
    page.focus("#search")
    page.keyboard.type("a")
    page.wait_for_selector("#search-status:not([hidden])")
    status = page.text_content("#search-status")
    assert "search cannot be used" in status and "shard 0" in status, status
    assert page.locator("#suggestions li").count() == 0
    page.evaluate("window.posterMap.select(window.posterMap.idAt(0))")  # the rest of the map still answers
    page.wait_for_selector("#panel:not([hidden])")
    page.close()


@pytest.mark.parametrize("content", ["{not json", "[]", "null", '{"meta": {}, "columns": {}}'])
def test_a_malformed_file_says_so_instead_of_loading_for_ever(browser, folder, content):  # noqa: F811
    server, _ = folder
    write_doctored(server.folder, "malformed.json", content)
    assert expect_refusal(browser, server, "malformed.json")


def test_a_lasso_permalink_of_100000_points_is_ignored_and_the_map_opens(browser, folder):  # noqa: F811
    server, _ = folder
    points = ";".join(f"{(i % 7) / 10},{(i % 5) / 10}" for i in range(100_000))
    page = browser.new_page()
    page.goto(f"{server.url}index.html?data.json#lasso=tsne:{points}")
    page.wait_for_function("window.posterMap && window.posterMap.ready", timeout=20000)
    page.wait_for_function("window.posterMap.settled()", timeout=30000, polling=50)
    assert page.evaluate("window.posterMap.selection()") in (None, [])
    page.close()


def test_300000_pairs_list_at_most_the_limit_and_say_how_many_more(browser, folder):  # noqa: F811
    server, data = folder
    ids = data["columns"]["id"]
    pairs = [{"a": ids[i % len(ids)], "b": ids[(i + 1) % len(ids)], "similarity": 0.5, "image": None}
             for i in range(300_000)]
    doctored = json.loads(json.dumps(data))
    doctored["meta"]["pairs"]["file"] = "many-pairs.json"
    write_doctored(server.folder, "many-pairs.json", {"meta": {}, "pairs": pairs})
    write_doctored(server.folder, "many.json", doctored)
    page = browser.new_page()
    page.goto(f"{server.url}index.html?many.json")
    page.wait_for_function("window.posterMap && window.posterMap.ready", timeout=20000)
    page.click("#show-pairs")
    page.wait_for_function("[...document.querySelectorAll('#pairs-list li')].some(li => li.textContent.includes('more pairs'))",
                           timeout=30000)
    items = page.locator("#pairs-list li")
    assert items.count() == 2_000 + 1
    assert f"and {300_000 - 2_000} more pairs" in items.last.text_content()
    page.close()


def test_titles_stay_text_in_the_tooltip_and_the_pairs_captions(browser, folder):  # noqa: F811
    server, data = folder
    hostile = point(data, HOSTILE)
    other = next(pid for pid in data["columns"]["id"] if pid != hostile["id"])
    doctored = json.loads(json.dumps(data))
    doctored["meta"]["pairs"]["file"] = "hostile-pairs.json"
    write_doctored(server.folder, "hostile-pairs.json",
                   {"meta": {}, "pairs": [{"a": hostile["id"], "b": other, "similarity": 0.9, "image": None}]})
    write_doctored(server.folder, "hostile.json", doctored)
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    page.goto(f"{server.url}index.html?hostile.json")
    page.wait_for_function("window.posterMap && window.posterMap.ready", timeout=20000)
    page.click("#layout-grid")  # no overlaps: the pointer is over the poster aimed at
    page.wait_for_function("!window.posterMap.view().fading && window.posterMap.view().layout === 'grid'")
    pos = page.evaluate("id => window.posterMap.screenPosition(id)", hostile["id"])
    page.mouse.move(pos["x"], pos["y"])
    page.wait_for_selector("#tooltip:not([hidden])")
    wait_text(page, "#tooltip", HOSTILE, start=True)
    assert page.locator("#tooltip *").count() == 0
    page.click("#show-pairs")
    page.wait_for_selector("#pairs-list .caption")
    assert page.text_content("#pairs-list .caption").startswith(HOSTILE)
    assert page.locator("#pairs-list .caption *").count() == 0
    page.wait_for_function("[...document.images].every((img) => img.complete)")
    assert page.evaluate("window.__pwned") is None
    page.close()


@pytest.mark.parametrize("url", ["javascript:window.__pwned=1", "data:text/html,<b>x</b>", " javascript:alert(1)"])
def test_a_poster_page_link_is_only_ever_a_web_address(browser, folder, url):  # noqa: F811
    server, data = folder
    doctored = json.loads(json.dumps(data))
    doctored["meta"]["paths"].pop("page", None)
    doctored["columns"]["page"] = [url] * len(doctored["columns"]["id"])
    write_doctored(server.folder, "links.json", doctored)
    page = browser.new_page()
    page.goto(f"{server.url}index.html?links.json")
    page.wait_for_function("window.posterMap && window.posterMap.ready", timeout=20000)
    page.evaluate("id => window.posterMap.select(id)", data["columns"]["id"][0])
    page.wait_for_selector("#panel:not([hidden])")
    assert page.get_attribute("#panel-page", "href") is None
    assert page.is_hidden("#panel-page")
    page.close()


# -- the page explains itself ------------------------------------------------------------------------
def test_opened_from_disk_the_page_says_to_serve_it(browser, folder):  # noqa: F811
    server, _ = folder
    page = browser.new_page()
    page.goto((server.folder / "index.html").as_uri() + "?data.json")
    page.wait_for_selector("#error:not([hidden])", timeout=20000)
    message = page.text_content("#error")
    assert "make serve" in message and "http://127.0.0.1:8000/index.html?data.json" in message
    assert page.is_hidden("#loading")
    page.close()


def test_a_missing_data_file_says_how_to_make_one(browser, folder):  # noqa: F811
    server, _ = folder
    message = expect_refusal(browser, server, "nope.json")
    assert "nope.json" in message and "make run" in message and "get_data_visu.py -o web/nope.json" in message
