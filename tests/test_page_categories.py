"""The page and the map's categories (a folder, the version, a --metadata column), in a real Chromium: colour by
one, a legend that filters and says which entry is on, the poster's panel and tooltip, and permalinks."""

from __future__ import annotations

import json
from urllib.parse import quote

from test_page import browser, on_grid, open_map, page, phone, settle  # noqa: F401  (fixtures and helpers)
from test_page_clusters import accented, poster_colours  # noqa: F401


def category(data, name):
    k = [c["name"] for c in data["meta"]["categories"]].index(name)
    about = data["meta"]["categories"][k]
    codes = data["columns"]["categories"][k]
    return about, dict(zip(data["columns"]["id"], codes))



PRESSED = "bs => bs.filter(b => b.getAttribute('aria-pressed') === 'true').map(b => b.textContent)"


def test_colour_by_a_category_gives_a_legend_whose_entries_filter_and_say_so(page, accented):
    server, web, data = accented
    about, code_of = category(data, "Genre")
    open_map(page, server.url)
    on_grid(page)
    lit = poster_colours(page)
    options = page.eval_on_selector_all("#category-colours option", "os => os.map(o => o.value)")
    assert options == ["", "folder", "version", "Genre"]
    page.select_option("#category-colours", "Genre")
    page.wait_for_selector("#legend button[data-value]")
    assert page.evaluate("window.posterMap.view().colouring") == "category:Genre"
    assert not page.is_checked("#decades")
    entries = page.eval_on_selector_all("#legend button", "bs => bs.map(b => [b.dataset.value, b.textContent])")
    sizes = about["sizes"] + [about["none"]]
    assert entries == [[str(c), f"{value}{size}"] for c, (value, size) in
                       enumerate(zip(about["values"] + ["No value"], sizes))][:-1] + [["-1", f"No value{about['none']}"]]
    assert "Genre" in page.text_content("#legend-title")
    colours = page.eval_on_selector_all("#legend .swatch", "ss => ss.map(s => getComputedStyle(s).backgroundColor)")
    assert len(set(colours)) == len(colours)

    def dimmed():
        now = poster_colours(page)
        return {pid for pid in code_of if sum(now[pid]) < 0.5 * sum(lit[pid]) or sum(now[pid]) < 60}

    first = about["values"][0]
    page.click("#legend button[data-value='0']")
    assert page.evaluate("window.posterMap.view().only") == ["Genre", 0]
    assert page.eval_on_selector_all("#legend button", PRESSED) == [f"{first}{about['sizes'][0]}"]
    assert f"only=Genre:{quote(first)}" in page.url
    page.select_option("#category-colours", "")  # colours off, to compare pixels; the filter stays
    settle(page)
    assert dimmed() == {pid for pid, code in code_of.items() if code != 0}
    assert page.is_hidden("#legend")
    page.select_option("#category-colours", "Genre")
    page.click("#legend button[data-value='-1']")  # "No value": only the posters without one
    page.select_option("#category-colours", "")
    settle(page)
    assert dimmed() == {pid for pid, code in code_of.items() if code != -1}
    page.select_option("#category-colours", "Genre")
    page.click("#legend button[data-value='-1']")  # again: every poster
    assert page.evaluate("window.posterMap.view().only") is None and "only=" not in page.url
    page.select_option("#category-colours", "")
    settle(page)
    assert dimmed() == set()
    page.watch.assert_clean()


def test_a_category_colouring_and_filter_come_back_from_a_link(page, accented):
    server, web, data = accented
    about, _ = category(data, "Genre")
    value = about["values"][1]
    open_map(page, server.url, f"#colour=category:Genre&only=Genre:{quote(value)}")
    settle(page)
    assert page.evaluate("window.posterMap.view().colouring") == "category:Genre"
    assert page.evaluate("window.posterMap.view().only") == ["Genre", 1]
    assert page.input_value("#category-colours") == "Genre"
    assert page.eval_on_selector_all("#legend button", PRESSED) == [f"{value}{about['sizes'][1]}"]
    assert page.is_hidden("#map-status")
    # a link that names a category or a value this map lacks says so in one line, and shows every poster
    open_map(page, server.url, "#colour=category:Studio&only=Genre:Western")
    page.wait_for_selector("#map-status:not([hidden])")
    said = page.text_content("#map-status")
    assert "“Studio”" in said and "“Western” in Genre" in said
    assert page.evaluate("window.posterMap.view().only") is None
    assert page.evaluate("window.posterMap.view().colouring") is None
    page.watch.assert_clean()


def test_the_panel_and_the_tooltip_show_a_posters_categories(page, accented):
    server, web, data = accented
    about, code_of = category(data, "Genre")
    folder, folder_of = category(data, "folder")
    pid = next(p for p in data["columns"]["id"] if code_of[p] >= 0 and folder_of[p] >= 0)
    open_map(page, server.url)
    settle(page)
    page.evaluate("id => window.posterMap.select(id)", pid)
    page.wait_for_selector("#panel-categories:not([hidden])")
    pairs = page.eval_on_selector_all("#panel-categories dt", "ts => ts.map(t => [t.textContent, "
                                      "t.nextElementSibling.textContent])")
    assert pairs == [["folder", folder["values"][folder_of[pid]]], ["Genre", about["values"][code_of[pid]]]]
    box = page.evaluate("id => window.posterMap.screenBox(id)", pid)
    page.keyboard.press("Escape")
    page.mouse.move((box["x0"] + box["x1"]) / 2, (box["y0"] + box["y1"]) / 2)
    page.wait_for_selector("#tooltip:not([hidden])")
    tip = page.text_content("#tooltip")
    assert about["values"][code_of[pid]] in tip and folder["values"][folder_of[pid]] in tip
    page.watch.assert_clean()


def test_on_a_phone_the_category_menu_is_behind_the_menu_and_its_legend_over_the_map(phone, accented):
    server, web, data = accented
    open_map(phone, server.url)
    settle(phone)
    canvas = phone.evaluate("JSON.stringify(document.getElementById('map').getBoundingClientRect())")
    assert not phone.is_visible("#category-colours")
    phone.tap("#more")
    phone.select_option("#category-colours", "folder")
    phone.wait_for_selector("#legend button[data-value]")
    phone.tap("#more")  # the controls close; the legend stays over the map, which has not moved
    assert phone.is_visible("#legend")
    assert phone.evaluate("JSON.stringify(document.getElementById('map').getBoundingClientRect())") == canvas
    legend = phone.evaluate("JSON.stringify(document.getElementById('legend-box').getBoundingClientRect())")
    box, screen = json.loads(legend), json.loads(canvas)
    assert box["right"] <= screen["right"] + 0.5 and box["height"] < 0.35 * screen["height"]
    phone.tap("#legend button[data-value='0']")
    assert phone.evaluate("window.posterMap.view().only") == ["folder", 0]
    phone.watch.assert_clean()


def test_at_1280_px_a_map_with_every_control_keeps_its_toolbar_to_one_row(page, accented):
    server, web, data = accented
    page.set_viewport_size({"width": 1280, "height": 800})
    open_map(page, server.url)
    settle(page)
    tops = page.evaluate("""() => [...document.querySelectorAll('#bar > *, #controls > *')]
        .filter(e => e.id !== 'controls' && getComputedStyle(e).display !== 'none')
        .map(e => [e.id || e.className, e.getBoundingClientRect().top, e.getBoundingClientRect().bottom])""")
    assert page.is_visible("#category-colours") and page.is_visible("#layouts") and page.is_visible("#show-clusters")
    assert "clear-selection" in {name for name, *_ in tops}  # hidden, its place kept
    middle = [(top + bottom) / 2 for _, top, bottom in tops]
    assert max(middle) - min(middle) < 8, tops
