// The page's reader of the map's table (data.json format 3) against the golden fixture that
// posters_cnn/contracts/maptable.py is checked against too (tests/make_table_fixture.py).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { Table, Utf8, tableFromIPC, vectorFromArray } from "apache-arrow";

import { tileUrl } from "../../web/geometry.js";
import { columnsFromTable, tableTiles, validateMap } from "../../web/logic.js";

const root = new URL("../fixtures/table/", import.meta.url);
const data = JSON.parse(readFileSync(new URL("data.json", root)));
const expected = JSON.parse(readFileSync(new URL("columns.json", root)));
const read = (t) => tableFromIPC(readFileSync(new URL(tileUrl(data.meta.table.path, t[0], t[1], t[2]), root)));
const parts = () => tableTiles(data.meta).map(read);

test("the table's files read back into format 2's columns, in any order", () => {
  for (const order of [parts(), parts().reverse()]) {
    const columns = columnsFromTable(data.meta, order, data.meta.table.rows);
    for (const [name, values] of Object.entries(expected)) {
      if (name === "aspect" || name === "similarity") {
        // float32 in the table: the same number as JSON's decimal, to float32's precision
        assert.deepEqual(Array.from(columns[name], (v) => Math.fround(v)), values.map(Math.fround), name);
      } else if (name === "categories") {
        assert.deepEqual(columns[name].map((c) => Array.from(c)), values, name);
      } else {
        // numbers in typed arrays, where the table's null is NaN
        assert.deepEqual(Array.from(columns[name], (v) => (Number.isNaN(v) ? null : v)), values, name);
      }
    }
    assert.deepEqual(Object.keys(columns).sort(), Object.keys(expected).sort());
  }
});

test("a map read from its table passes the page's checks", () => {
  const columns = columnsFromTable(data.meta, parts(), data.meta.table.rows);
  const meta = { ...data.meta, tiles: { tsne: { ...data.meta.tiles.tsne } } };
  assert.doesNotThrow(() => validateMap({ meta, columns }));
});

test("text beyond ASCII, of one to four bytes a character, is cut where each string ends", () => {
  const columns = columnsFromTable(data.meta, parts(), data.meta.table.rows);
  assert.equal(columns.title[0], "Poster 0 — été");
  assert.equal(columns.title[22], "Poster 22 — été 🎬");
  assert.equal(columns.title[21], "Poster 21 — été");
  assert.equal(columns.title[3], null);
});

test("a column of another type than the contract's is refused", () => {
  const noCategories = { ...data.meta, categories: [] };
  const few = parts().map((p) => p.select(["index", "id", "x"]));
  assert.equal(columnsFromTable(noCategories, few, data.meta.table.rows).x[1], expected.x[1]);
  assert.throws(() => columnsFromTable(data.meta, few, data.meta.table.rows), /categories the table does not hold/);
  const floats = new Table({ index: vectorFromArray(Int32Array.of(0)), id: vectorFromArray(["1990/a"], new Utf8()),
    x: vectorFromArray(Float32Array.of(0.5)) });
  assert.throws(() => columnsFromTable(noCategories, [floats], 1), /x is Float32, not Float64/);
  assert.throws(() => columnsFromTable({ ...data.meta, neighbors: 4 }, parts(), data.meta.table.rows),
    /neighbors is FixedSizeList\[3\]<Int32>, not FixedSizeList\[4\]<Int32>/);
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
