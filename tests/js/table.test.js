// The page's reader of the map's table (data.json format 3) against the golden fixture that
// posters_cnn/contracts/maptable.py is checked against too (tests/make_table_fixture.py).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { Table, Utf8, tableFromIPC, vectorFromArray } from "apache-arrow";

import { tileUrl } from "../../web/geometry.js";
import {
  buildSearchIndex, columnsFromTable, fillNear, readColumns, readPlaces, readShard, SearchIndex, searchTitles,
  similarOf, tableTiles, textColumn, tileMembers, TileTitles, validateMap,
} from "../../web/logic.js";

const root = new URL("../fixtures/table/", import.meta.url);
const oldRoot = new URL("../fixtures/table-titles-in-rows/", import.meta.url); // format 3 before the titles files
const data = JSON.parse(readFileSync(new URL("data.json", root)));
const oldData = JSON.parse(readFileSync(new URL("data.json", oldRoot)));
const expected = JSON.parse(readFileSync(new URL("columns.json", root)));
const read = (template, from = root) => (t) => tableFromIPC(readFileSync(new URL(tileUrl(template, t[0], t[1], t[2]), from)));
const parts = () => tableTiles(data.meta).map(read(data.meta.table.path));
const oldParts = () => tableTiles(oldData.meta).map(read(oldData.meta.table.path, oldRoot));
const nearParts = () => tableTiles(data.meta).map(read(data.meta.table.near));
const titleParts = () => tableTiles(data.meta).map(read(data.meta.table.titles));
const shards = () => [0, 1, 2].map((k) => readFileSync(new URL(data.meta.table.search.replace("{k}", k), root)));
const readShards = (files, rows = data.meta.table.search_rows) =>
  files.map((bytes, k) => readShard(new Uint8Array(bytes), k, data.meta.table.rows, rows));
const NEAR = ["neighbors", "similarity"];

/** TileTitles over the fixture's titles files, counting the files it reads. */
function titleStore(keep = 32, files = titleParts()) {
  const tileOf = new Int32Array(data.meta.table.rows);
  columnsFromTable(data.meta, parts(), data.meta.table.rows, tileOf);
  const reads = [];
  const store = new TileTitles(tileOf, data.meta.table.tiles, async (t) => {
    reads.push(t);
    return files[t];
  }, keep);
  return { store, reads, tileOf };
}

test("the table's rows' files read back into format 2's columns, in any order, the titles in their own files", () => {
  for (const [order, meta] of [[parts(), data.meta], [parts().reverse(), data.meta], [oldParts(), oldData.meta]]) {
    const columns = columnsFromTable(meta, order, meta.table.rows);
    for (const [name, values] of Object.entries(expected)) {
      if (NEAR.includes(name)) continue; // in the near files
      if (name === "title" && meta.table.titles) continue; // in the titles files
      if (name === "aspect" || name === "similarity") {
        // float32 in the table: the same number as JSON's decimal, to float32's precision
        assert.deepEqual(Array.from(columns[name], (v) => Math.fround(v)), values.map(Math.fround), name);
      } else if (name === "categories") {
        assert.deepEqual(columns[name].map((c) => Array.from(c)), values, name);
      } else if (columns[name].textColumn) {
        assert.deepEqual(Array.from(columns[name]), values, name);
      } else {
        // numbers in Float32Arrays (the table's null is NaN): JSON's decimals to float32's precision
        assert.deepEqual(Array.from(columns[name], (v) => (Number.isNaN(v) ? null : v)),
          values.map((v) => (v === null ? null : Math.fround(v))), name);
      }
    }
    assert.deepEqual(Object.keys(columns).sort(), Object.keys(expected)
      .filter((k) => !NEAR.includes(k) && (k !== "title" || !meta.table.titles)).sort());
  }
});

test("the titles files give each poster's title, a tile read once however many ask, none read before asked", async () => {
  const { store, reads, tileOf } = titleStore();
  assert.equal(store.get(0), null);
  assert.deepEqual(reads, []);
  const all = Array.from({ length: data.meta.table.rows }, (_, i) => i);
  const [first, again] = await Promise.all([store.of(all.slice().reverse()), store.of([22, 0, 3])]);
  assert.deepEqual(first, expected.title.map((t) => t ?? "").reverse());
  assert.deepEqual(again, ["Poster 22 — été 🎬", "Poster 0 — été", ""]); // four bytes a character; null is ""
  assert.deepEqual(reads.slice().sort((a, b) => a - b), [...new Set(tileOf)].sort((a, b) => a - b));
  assert.equal(store.get(21), "Poster 21 — été");
});

test("at most the title tiles asked to be kept are, and a list of more tiles is read whole all the same", async () => {
  const { store, reads, tileOf } = titleStore(2);
  const all = Array.from({ length: data.meta.table.rows }, (_, i) => i);
  assert.deepEqual(await store.of(all), expected.title.map((t) => t ?? ""));
  assert.equal(store.held.size, 2);
  const held = all.filter((i) => store.get(i) !== null);
  assert.ok(held.length > 0 && held.length < all.length);
  const gone = all.find((i) => !held.includes(i));
  reads.length = 0;
  assert.equal(await store.of([gone]).then(([t]) => t), expected.title[gone] ?? "");
  assert.deepEqual(reads, [tileOf[gone]]);
});

test("a titles file that is not its tile's is refused, and nothing is kept from it", async () => {
  const files = titleParts();
  const rows = data.meta.table.tiles.map((t) => t[3]);
  const [a, b] = [rows.indexOf(1), rows.indexOf(1, rows.indexOf(1) + 1)]; // two tiles of one poster each
  for (const [t, other, said] of [[a, b, /not hold the posters of its tile/], [0, 1, /holds 1 posters, not its tile's 4/]]) {
    const { store, tileOf } = titleStore(32, files.map((part, u) => (u === t ? files[other] : part)));
    const inIt = tileOf.findIndex((u) => u === t);
    await assert.rejects(store.of([inIt]), said);
    assert.equal(store.get(inIt), null);
  }
  const { store: bare } = titleStore(32, files.map((part) => part.select(["index"])));
  await assert.rejects(bare.of([0]), /without the columns index and title/);
});

test("the search shards give the index that the titles would, and doctored shards are refused", () => {
  const years = Float32Array.from(expected.year, (y) => y ?? NaN);
  const rows = data.meta.table.search_rows;
  const fromShards = SearchIndex.fromShards(readShards(shards()), years, rows);
  const fromTitles = buildSearchIndex(expected.title.map((t) => t ?? ""), years);
  assert.equal(fromShards.text, fromTitles.text);
  assert.deepEqual(Array.from(fromShards.starts), Array.from(fromTitles.starts));
  for (const q of ["poster", "poster 2", "ete", "21", "été poster 1", "zzz", ""]) {
    assert.deepEqual(searchTitles(fromShards, q), searchTitles(fromTitles, q), q);
  }
  assert.deepEqual(searchTitles(fromShards, "poster 22"), [22]);
  const [a, b, c] = shards();
  const bad = (list, said) => assert.throws(() => readShards(list), said);
  bad([a, b, c.subarray(0, c.length - 1)], /shard 2 does not hold its 3 posters' keys/);
  bad([a, b, Buffer.concat([c, Buffer.from("x\n")])], /shard 2 holds more than its 3 posters/);
  bad([Buffer.from(a.toString().replace("poster 0", "Poster 0")), b, c], /shard 0 holds a character that is not/);
  bad([a, b, Buffer.from([0xff, 10, 10, 10])], /shard 2 holds a character that is not/); // not UTF-8
  bad([a, Buffer.from("x\n"), c], /shard 1 does not hold its 10 posters' keys/);
  const read = readShards([a, b, c]);
  assert.throws(() => SearchIndex.fromShards(read.slice(0, 2), years, rows), /2 search shards for 23 posters/);
  assert.throws(() => SearchIndex.fromShards([read[1], read[0], read[2]], years, rows), /shard 0 is not in its place/);
});

test("the near files fill each tile's similar posters, and only what they hold", () => {
  const tileOf = new Int32Array(data.meta.table.rows);
  const rowParts = parts();
  const columns = columnsFromTable(data.meta, rowParts, data.meta.table.rows, tileOf);
  const P = readColumns(columns, data.meta);
  const k = data.meta.neighbors;
  const all = (p) => Array.from({ length: P.n }, (_, i) => similarOf(p, i, tileOf));
  assert.ok(all(P).every((s) => s === null)); // not known until read
  const near = nearParts();
  const members = (p) => rowParts[p].getChild("index").toArray();
  // What the page hands fillNear, found from tileOf alone: each tile's posters as its rows' file lists them.
  rowParts.forEach((_, p) => assert.deepEqual(Array.from(tileMembers(tileOf, p)), Array.from(members(p))));
  const t = tileOf[7];
  fillNear(P, near[t], members(t), t);
  const [js, sims] = similarOf(P, 7, tileOf);
  assert.deepEqual(Array.from(js), expected.neighbors.slice(7 * k, 8 * k));
  assert.deepEqual(Array.from(sims), expected.similarity.slice(7 * k, 8 * k).map(Math.fround));
  const other = tileOf.findIndex((p) => p !== t);
  assert.equal(similarOf(P, other, tileOf), null);
  // A tile's near file given for another tile is refused, and fills nothing.
  const u = tileOf[other];
  assert.throws(() => fillNear(P, near[t], members(u), u), /posters of its tile/);
  assert.equal(similarOf(P, other, tileOf), null);
  for (let p = 0; p < near.length; p++) fillNear(P, near[p], members(p), p);
  assert.deepEqual(all(P).flatMap((s) => Array.from(s[0])), expected.neighbors);
});

test("at most the tiles asked to be kept are, the least recently used let go first", () => {
  const tileOf = new Int32Array(data.meta.table.rows);
  const rowParts = parts();
  const P = readColumns(columnsFromTable(data.meta, rowParts, data.meta.table.rows, tileOf), data.meta);
  const near = nearParts();
  assert.ok(near.length >= 3);
  const members = (p) => rowParts[p].getChild("index").toArray();
  const first = (p) => tileOf.findIndex((q) => q === p);
  assert.deepEqual(fillNear(P, near[0], members(0), 0, 2), []);
  assert.deepEqual(fillNear(P, near[1], members(1), 1, 2), []);
  assert.ok(similarOf(P, first(0), tileOf)); // tile 0 used: now tile 1 is the least recently used
  assert.deepEqual(fillNear(P, near[2], members(2), 2, 2), [1]);
  assert.deepEqual([...P.near.keys()].sort(), [0, 2]);
  assert.equal(similarOf(P, first(1), tileOf), null);
  assert.ok(similarOf(P, first(2), tileOf));
});

test("a map read from its table passes the page's checks", () => {
  const columns = columnsFromTable(data.meta, parts(), data.meta.table.rows);
  const meta = { ...data.meta, tiles: { tsne: { ...data.meta.tiles.tsne } } };
  assert.doesNotThrow(() => validateMap({ meta, columns }));
});

test("text beyond ASCII, of one to four bytes a character, is cut where each string ends", () => {
  const columns = columnsFromTable(oldData.meta, oldParts(), oldData.meta.table.rows);
  assert.equal(columns.title[0], "Poster 0 — été");
  assert.equal(columns.title[22], "Poster 22 — été 🎬");
  assert.equal(columns.title[21], "Poster 21 — été");
  assert.equal(columns.title[3], null);
});

test("the places are handed to the layouts once, not kept among the columns as well", () => {
  const columns = columnsFromTable(data.meta, parts(), data.meta.table.rows);
  const places = readPlaces(columns);
  assert.equal(places.tsne[0], columns.x); // the table's own arrays: a layout turns them into world units in place
  assert.equal(places.tsne[1], columns.y);
  assert.deepEqual(Array.from(places.tsne[0]), expected.x.map(Math.fround));
  const P = readColumns(columns, data.meta);
  assert.ok(!("x" in P) && !("y" in P) && !("gx" in P) && !("gy" in P));
  // Format 2's lists become Float32Arrays; no grid without both of its columns.
  const listed = readPlaces({ id: ["a", "b"], x: [0.5, -1], y: [1, 0], gx: [0, 0] });
  assert.ok(listed.tsne[0] instanceof Float32Array);
  assert.deepEqual(Array.from(listed.tsne[1]), [1, 0]);
  assert.equal(listed.grid, null);
});

test("a column of another type than the contract's is refused", () => {
  const noCategories = { ...data.meta, categories: [] };
  const few = parts().map((p) => p.select(["index", "id", "x"]));
  assert.equal(columnsFromTable(noCategories, few, data.meta.table.rows).x[1], Math.fround(expected.x[1]));
  assert.throws(() => columnsFromTable(data.meta, few, data.meta.table.rows), /categories the table does not hold/);
  const floats = new Table({ index: vectorFromArray(Int32Array.of(0)), id: vectorFromArray(["1990/a"], new Utf8()),
    x: vectorFromArray(Float32Array.of(0.5)) });
  assert.throws(() => columnsFromTable(noCategories, [floats], 1), /x is Float32, not Float64/);
  const three = { ...data.meta, categories: [...data.meta.categories, data.meta.categories[0]] };
  assert.throws(() => columnsFromTable(three, parts(), data.meta.table.rows),
    /categories is FixedSizeList\[2\]<Int16>, not FixedSizeList\[3\]<Int16>/);
  const P = readColumns(columnsFromTable(data.meta, parts(), data.meta.table.rows), { ...data.meta, neighbors: 4 });
  assert.throws(() => fillNear(P, nearParts()[0], parts()[0].getChild("index").toArray()), /without the columns/);
});

test("a table that misses a poster, or holds one twice, is refused", () => {
  const all = parts();
  assert.throws(() => columnsFromTable(data.meta, all.slice(1), data.meta.table.rows), /does not hold all/);
  assert.throws(() => columnsFromTable(data.meta, [...all, all[0]], data.meta.table.rows), /twice/);
});

test("a doctored meta.table is refused before anything is fetched", () => {
  const cases = [
    [{ ...data.meta.table, tiles: [[2, 4, 0, 5]] }, /tiles holds/],
    [{ ...data.meta.table, tiles: [[0, 0, 0, 22]] }, /hold 22 rows, not 23/],
    [{ ...data.meta.table, rows: 1e9 }, /rows is/],
    [{ ...data.meta.table, tiles: "many" }, /meta.table.tiles/],
    [{ ...data.meta.table, path: 3 }, /no meta.table/],
  ];
  for (const [table, said] of cases) assert.throws(() => tableTiles({ ...data.meta, table }), said);
});

test("a text column read from the table answers as an array of its strings, and holds only their bytes", () => {
  const columns = columnsFromTable(data.meta, parts(), data.meta.table.rows);
  const ids = columns.id;
  assert.ok(ids.textColumn && Array.isArray(ids));
  assert.equal(ids.length, expected.id.length);
  assert.deepEqual(Array.from(ids), expected.id);
  assert.deepEqual([...ids], expected.id);
  assert.equal(ids[3], expected.id[3]);
  assert.equal(ids[ids.length], undefined);
  assert.equal(ids["03"], undefined);
  assert.ok(2 in ids && !(ids.length in ids));
  assert.deepEqual(ids.filter((id, i) => i % 5 === 0), expected.id.filter((id, i) => i % 5 === 0));
  assert.deepEqual(ids.map((id) => id.length), expected.id.map((id) => id.length));
  assert.equal(ids.firstBad(false, false), -1);
  const old = columnsFromTable(oldData.meta, oldParts(), oldData.meta.table.rows);
  assert.equal(JSON.stringify(Array.from(old.title)), JSON.stringify(expected.title));
});

test("a text column keeps null, says where the first null or empty text is, and can read null as another value", () => {
  const encode = (texts) => {
    const bytes = new TextEncoder().encode(texts.map((t) => t ?? "").join(""));
    const offsets = new Int32Array(texts.length + 1);
    texts.forEach((t, i) => { offsets[i + 1] = offsets[i] + new TextEncoder().encode(t ?? "").length; });
    return [bytes, offsets, Uint8Array.from(texts, (t) => (t === null ? 0 : 1))];
  };
  const column = textColumn(...encode(["été", null, "", "🎬 x"]));
  assert.deepEqual(Array.from(column), ["été", null, "", "🎬 x"]);
  // Short ASCII texts take a short cut; long ones, and any with another character, the decoder.
  const mixed = ["tt0111161", `${"a".repeat(300)}é`, "a".repeat(300), "x\u007f", "naïve"];
  assert.deepEqual(Array.from(textColumn(...encode(mixed))), mixed);
  assert.equal(column.firstBad(false, true), 1);
  assert.equal(column.firstBad(true, false), 2);
  assert.equal(column.firstBad(true, true), -1);
  assert.deepEqual(Array.from(column.withNullAs("")), ["été", "", "", "🎬 x"]);
  const P = readColumns({ ...columnsFromTable(oldData.meta, oldParts(), oldData.meta.table.rows) }, oldData.meta);
  assert.ok(P.title.textColumn && P.title.every((t) => typeof t === "string"));
  assert.equal(readColumns(columnsFromTable(data.meta, parts(), data.meta.table.rows), data.meta).title, null);
});

test("a text column finds a poster by its text as a Map of its strings would, first one first", () => {
  const texts = ["a", "b", "été", "a", "", null, "🎬", "b2"];
  const bytes = new TextEncoder().encode(texts.map((t) => t ?? "").join(""));
  const offsets = new Int32Array(texts.length + 1);
  texts.forEach((t, i) => { offsets[i + 1] = offsets[i] + new TextEncoder().encode(t ?? "").length; });
  const column = textColumn(bytes, offsets, Uint8Array.from(texts, (t) => (t === null ? 0 : 1)));
  const first = new Map();
  texts.forEach((t, i) => { if (typeof t === "string" && !first.has(t)) first.set(t, i); });
  for (const t of ["a", "b", "été", "", "🎬", "b2", "c", "ét", null, 3]) {
    assert.equal(column.indexOf(t), first.get(t) ?? -1, String(t));
  }
  const ids = columnsFromTable(data.meta, parts(), data.meta.table.rows).id;
  expected.id.forEach((id, i) => assert.equal(ids.indexOf(id), i));
});

test("a text column's id table can be filled a slice at a time, and finds the same posters", () => {
  const ids = columnsFromTable(data.meta, parts(), data.meta.table.rows).id;
  assert.equal(ids.prepareIndex(3), false);
  assert.equal(ids.indexOf(expected.id[ids.length - 1]), ids.length - 1); // a lookup fills the rest first
  assert.equal(ids.prepareIndex(3), true);
  expected.id.forEach((id, i) => assert.equal(ids.indexOf(id), i));
});

test("the search index reads a text column's bytes into the same keys as normalising each title", () => {
  const titles = ["The Lord of the Rings", "  --Léon: the PROFESSIONAL!!  ", null, "", "Ocean's 11", "ÉTÉ 85",
    "½ Moon", "a", "...", "R2-D2 & C-3PO", "Ünïcödé", "x\ty\nz", "Die Hard 2: Die Harder"];
  const encoder = new TextEncoder();
  const bytes = encoder.encode(titles.map((t) => t ?? "").join(""));
  const offsets = new Int32Array(titles.length + 1);
  titles.forEach((t, i) => { offsets[i + 1] = offsets[i] + encoder.encode(t ?? "").length; });
  const column = textColumn(bytes, offsets, Uint8Array.from(titles, (t) => (t === null ? 0 : 1)), "");
  const years = titles.map((_, i) => 1990 + i);
  const fromBytes = new SearchIndex(column, years);
  while (!fromBytes.grow(2));
  const fromStrings = buildSearchIndex(titles.map((t) => t ?? ""), years);
  assert.equal(fromBytes.text, fromStrings.text);
  assert.deepEqual(Array.from(fromBytes.starts), Array.from(fromStrings.starts));
  assert.equal(fromBytes.key(1), "leon the professional");
  for (const q of ["lord", "leon", "ocean s", "2", "moon", "r2 d2", "unicode"]) {
    assert.deepEqual(searchTitles(fromBytes, q), searchTitles(fromStrings, q), q);
  }
});
