// Unit tests for the page's pure logic: node --test tests/js/
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  buildSearchIndex, centreOn, dataPathFromQuery, decadeColour, hashForPoster, inYearRange, levelOfDetail,
  normalizeTitle, posterFromHash, relativeTo, searchTitles, visibleWorld, yearExtent,
} from "../../web/logic.js";

test("the query names a data file relative to the page", () => {
  assert.equal(dataPathFromQuery(""), "data.json");
  assert.equal(dataPathFromQuery("?data.json"), "data.json");
  assert.equal(dataPathFromQuery("?maps/data-30k.json"), "maps/data-30k.json");
  assert.equal(dataPathFromQuery("?data=other.json"), "other.json");
});

test("absolute URLs, climbing paths and non-JSON files are refused", () => {
  for (const bad of ["?http://evil.example/x.json", "?//evil.example/x.json", "?/etc/x.json", "?../x.json",
    "?a/../../x.json", "?%2e%2e/x.json", "?javascript:alert(1)", "?data.html", "?a\\..\\x.json", "?%E0%A4%A"]) {
    assert.throws(() => dataPathFromQuery(bad), Error, bad);
  }
});

test("paths in data.json resolve from its folder", () => {
  assert.equal(relativeTo("data.json", "assets/a.jpg"), "assets/a.jpg");
  assert.equal(relativeTo("maps/data.json", "assets/a.jpg"), "maps/assets/a.jpg");
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
