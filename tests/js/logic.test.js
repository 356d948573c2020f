// Unit tests for the page's pure logic: node --test tests/js/
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import {
  assetUrl, buildSearchIndex, centreOn, dataUrlFromQuery, decadeColour, hashForPoster, inYearRange, levelOfDetail,
  normalizeTitle, posterFromHash, resolveInFolder, searchTitles, visibleWorld, yearExtent,
} from "../../web/logic.js";

const PAGE = "http://127.0.0.1:8000/maps/index.html?data.json";

test("the query names a data file relative to the page", () => {
  assert.equal(dataUrlFromQuery("", PAGE), "http://127.0.0.1:8000/maps/data.json");
  assert.equal(dataUrlFromQuery("?data.json", PAGE), "http://127.0.0.1:8000/maps/data.json");
  assert.equal(dataUrlFromQuery("?sub/data-30k.json", PAGE), "http://127.0.0.1:8000/maps/sub/data-30k.json");
  assert.equal(dataUrlFromQuery("?data=other.json", PAGE), "http://127.0.0.1:8000/maps/other.json");
  assert.equal(dataUrlFromQuery("?caf%C3%A9.json", PAGE), "http://127.0.0.1:8000/maps/caf%C3%A9.json");
});

// Each of these would, if accepted, make the page fetch from another host or from outside its folder.
const HOSTILE_QUERIES = JSON.parse(readFileSync(new URL("../hostile_queries.json", import.meta.url))).queries;

test("hostile queries are refused: nothing outside the page's folder, nothing but .json", () => {
  for (const bad of HOSTILE_QUERIES) assert.throws(() => dataUrlFromQuery(bad, PAGE), Error, bad);
});

test("paths in data.json resolve from its folder and must stay in the page's folder", () => {
  const data = "http://127.0.0.1:8000/maps/sub/data.json";
  assert.equal(assetUrl(data, "assets/a.jpg", PAGE), "http://127.0.0.1:8000/maps/sub/assets/a.jpg");
  assert.equal(assetUrl("http://127.0.0.1:8000/maps/data.json", "assets/a.jpg", PAGE),
    "http://127.0.0.1:8000/maps/assets/a.jpg");
  for (const bad of ["../../x.jpg", "/x.jpg", "//evil.example/x.jpg", "\t//evil.example/x.jpg",
    "http://evil.example/x.jpg", "%2e%2e/%2e%2e/x.jpg", "a/..%2F..%2F..%2Fx.jpg", "javascript:alert(1)", "",
    "data:image/png;base64,AAAA", null, 42]) {
    assert.throws(() => assetUrl(data, bad, PAGE), Error, String(bad));
  }
  assert.throws(() => resolveInFolder("x.jpg", "http://127.0.0.1:8000/other/", PAGE), Error);
});

test("title search ranks prefixes first and ignores case and accents", () => {
  const points = [{ title: "The Net", year: 1995 }, { title: "Léon", year: 1994 }, { title: "Net Force", year: 1999 },
    { title: "Internet Story", year: 2010 }];
  const index = buildSearchIndex(points);
  assert.deepEqual(searchTitles(index, "net"), [2, 0, 3]);
  assert.deepEqual(searchTitles(index, "LEON"), [1]);
  assert.deepEqual(searchTitles(index, "   "), []);
  assert.equal(normalizeTitle("Ça & Co!"), "ca co");
});

test("the hash keeps the selected poster", () => {
  assert.equal(posterFromHash(hashForPoster("1995/rob_roy")), "1995/rob_roy");
  assert.equal(hashForPoster("1995/rob_roy"), "#poster=1995/rob_roy");
  assert.equal(posterFromHash("#poster=a%20b/c"), "a b/c");
  assert.equal(posterFromHash(""), null);
  assert.equal(posterFromHash("#other=1"), null);
});

test("year filter and decade colours", () => {
  assert.ok(inYearRange(1995, 1990, 2000));
  assert.ok(!inYearRange(1989, 1990, 2000));
  assert.ok(inYearRange(null, 1990, 2000));
  assert.equal(decadeColour(1991), decadeColour(1999));
  assert.notEqual(decadeColour(1991), decadeColour(2001));
  assert.deepEqual(yearExtent([{ year: 2001 }, { year: null }, { year: 1990 }]), [1990, 2001]);
});

test("geometry helpers", () => {
  assert.deepEqual(visibleWorld({ x: -100, y: 0, k: 2 }, 200, 100), { x0: 50, y0: 0, x1: 150, y1: 50 });
  const c = centreOn(10, 20, 2, 100, 100);
  assert.deepEqual([50 - 10 * 2, 50 - 20 * 2], [c.x, c.y]);
  assert.equal(levelOfDetail({ k: 1, dpr: 1, overviewScale: 4, slot: 10, cell: 64 }), "overview");
  assert.equal(levelOfDetail({ k: 5, dpr: 1, overviewScale: 4, slot: 10, cell: 64 }), "sprites");
  assert.equal(levelOfDetail({ k: 20, dpr: 1, overviewScale: 4, slot: 10, cell: 64 }), "images");
});
