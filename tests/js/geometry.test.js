// web/geometry.js against the golden fixture that posters_cnn/contracts/geometry.py is checked against too.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import {
  boxHolds, boxMeets, deepestComposedLevel, levelFor, makePresence, pick, posterBox, posterBoxInto, postersInTile,
  tileBuckets, tileBucketsBuilder, tileRange, tileRect, tilesOfBox, tileUrl, toData, toUnit, toWorld, unitToData,
} from "../../web/geometry.js";

const F = JSON.parse(readFileSync(new URL("../fixtures/geometry.json", import.meta.url)));
const M = F.map;
const boxOf = (i) => {
  const [u, v] = toUnit(M.x[i], M.y[i]);
  return posterBox(u, v, M.aspect[i], M.slot);
};

test("frames: data to unit and back, and the page's world frame", () => {
  for (const c of F.frames) {
    assert.deepEqual(toUnit(...c.data), c.unit);
    const back = unitToData(...c.unit);
    assert.ok(Math.abs(back[0] - c.data[0]) < 1e-12 && Math.abs(back[1] - c.data[1]) < 1e-12);
  }
  assert.deepEqual(toWorld(-1, 1, 500), [0, 0]);
  assert.deepEqual(toWorld(1, -1, 500), [500, 500]);
  assert.deepEqual(toData(250, 125, 500), [0, 0.5]);
});

test("poster boxes as stage 3 computed them", () => {
  for (let i = 0; i < M.n; i++) assert.deepEqual(boxOf(i), M.boxes[i], `poster ${i}`);
  assert.deepEqual(posterBox(10, 10, 0.5, 4), [9, 8, 11, 12]); // tall: fills the slot's height
  assert.deepEqual(posterBox(10, 10, 2, 4), [8, 9, 12, 11]); // wide: its width
});

test("the level for a zoom is the first as sharp as the screen, within the levels there are", () => {
  // A 512-unit map square in 256-px tiles: level 1 is 1 px per unit.
  assert.equal(levelFor(1, 512, 9), 1);
  assert.equal(levelFor(1.01, 512, 9), 2);
  assert.equal(levelFor(2, 512, 9), 2); // a high-DPI screen (dpr 2) needs twice the pixels
  assert.equal(levelFor(0.1, 512, 9), 0);
  assert.equal(levelFor(1000, 512, 9), 9);
  assert.deepEqual(tileRange({ x0: 10, y0: 10, x1: 300, y1: 100 }, 1, 0, 512), { x0: 0, x1: 1, y0: 0, y1: 0, empty: false });
  assert.equal(tileRange({ x0: 600, y0: 10, x1: 700, y1: 100 }, 1, 0, 512).empty, true);
});

test("tile presence bitsets and deeper levels", () => {
  // Level 0: one tile; level 1: tile (1, 0) of four (bit 1 -> byte 2), not (0, 1): x and y cannot be swapped.
  const present = makePresence([Buffer.from([1]).toString("base64"), Buffer.from([2]).toString("base64")]);
  assert.equal(present(0, 0, 0), true);
  assert.deepEqual([present(1, 0, 0), present(1, 1, 0), present(1, 0, 1), present(1, 1, 1)], [false, true, false, false]);
  assert.equal(present(3, 5, 1), true); // inside level 1's tile (1, 0)
  assert.equal(present(3, 1, 1), false);
  assert.equal(present(1, 2, 0), false);
});

test("levels: deepest composed and the level for a zoom", () => {
  for (const c of F.deepest_composed_level) {
    assert.equal(deepestComposedLevel(c.levels, c.slot, c.span, c.thumb_size), c.level);
  }
  for (const c of F.level_for) assert.equal(levelFor(c.px_per_unit, c.span, c.max_level), c.level, JSON.stringify(c));
});

test("tiles: rectangles, ranges, the tiles of a box, the posters of a tile, presence, URLs", () => {
  for (const c of F.tile_rect) assert.deepEqual(tileRect(c.z, c.x, c.y, M.origin, M.span), c.rect);
  for (const c of F.tile_range) {
    const [x0, y0, x1, y1] = c.view;
    assert.deepEqual(tileRange({ x0, y0, x1, y1 }, c.z, M.origin, M.span), c.range);
  }
  for (const [z, ranges] of Object.entries(F.tiles_of_boxes)) {
    for (let i = 0; i < M.n; i++) assert.deepEqual(tilesOfBox(M.boxes[i], Number(z), M.origin, M.span), ranges[i]);
  }
  for (const c of F.edge_boxes) assert.deepEqual(tilesOfBox(c.box, c.z, c.origin, c.span), c.tiles);
  for (const c of F.posters_in_tile) {
    assert.deepEqual(postersInTile(M.n, boxOf, c.z, c.x, c.y, M.origin, M.span), c.posters, JSON.stringify(c));
    // The renderer's test for a candidate from its quadtree gives the same posters.
    const [x0, y0, size] = tileRect(c.z, c.x, c.y, M.origin, M.span);
    const meets = [];
    for (let i = 0; i < M.n; i++) if (boxMeets(boxOf(i), x0, y0, x0 + size, y0 + size)) meets.push(i);
    assert.deepEqual(meets, c.posters, JSON.stringify(c));
  }
  const present = makePresence(M.present);
  for (const c of F.present) assert.equal(present(c.z, c.x, c.y), c.present, JSON.stringify(c));
  for (const c of F.tile_url) assert.equal(tileUrl(c.template, c.z, c.x, c.y), c.url);
});

test("every tile of a level at once (tileBuckets) holds what postersInTile gives for each tile", () => {
  const inTile = (buckets, z, x, y) => {
    const k = y * (1 << z) + x;
    return Array.from(buckets.members.subarray(buckets.starts[k], buckets.starts[k + 1]));
  };
  const fixtureBox = (i, out) => {
    for (let j = 0; j < 4; j++) out[j] = M.boxes[i][j];
  };
  for (const z of Object.keys(F.tiles_of_boxes).map(Number)) {
    const buckets = tileBuckets(M.n, fixtureBox, z, M.origin, M.span);
    for (let y = 0; y < 1 << z; y++) {
      for (let x = 0; x < 1 << z; x++) {
        assert.deepEqual(inTile(buckets, z, x, y), postersInTile(M.n, boxOf, z, x, y, M.origin, M.span), `${z}/${x}/${y}`);
      }
    }
  }
  // Posters the fixture does not have: on tile edges, straddling four tiles, off the map, with no shape.
  let seed = 7;
  const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
  const n = 3000;
  const x = Float32Array.from({ length: n }, (_, i) => (i % 10 === 0 ? Math.round(random() * 8) * 16 : random() * 140 - 6));
  const y = Float32Array.from({ length: n }, (_, i) => (i % 7 === 0 ? Math.round(random() * 8) * 16 : random() * 140 - 6));
  const aspect = Float32Array.from({ length: n }, (_, i) => (i === 5 ? NaN : 0.3 + 2 * random()));
  const slot = 3;
  const own = (i) => posterBox(x[i], y[i], aspect[i], slot);
  for (const z of [0, 1, 3, 5]) {
    const buckets = tileBuckets(n, (i, out) => posterBoxInto(out, x[i], y[i], aspect[i], slot), z, 0, 128);
    let total = 0;
    for (let ty = 0; ty < 1 << z; ty++) {
      for (let tx = 0; tx < 1 << z; tx++) {
        const got = inTile(buckets, z, tx, ty);
        assert.deepEqual(got, postersInTile(n, own, z, tx, ty, 0, 128), `${z}/${tx}/${ty}`);
        total += got.length;
      }
    }
    assert.equal(total, buckets.members.length);
    if (z === 0) assert.equal(total, n - 1); // every poster once (off the map: the edge tile), but the one with no shape
    // A slice at a time (one a frame in the page) gives the same buckets.
    const sliced = tileBucketsBuilder(n, (i, out) => posterBoxInto(out, x[i], y[i], aspect[i], slot), z, 0, 128);
    let steps = 0;
    while (!sliced.step(() => false)) steps += 1;
    assert.ok(steps >= 1, `level ${z}: done in one step`);
    assert.deepEqual([sliced.starts, sliced.members], [buckets.starts, buckets.members]);
  }
});

test("picking: the poster on top under a point", () => {
  const all = Array.from({ length: M.n }, (_, i) => i);
  for (const c of F.pick) assert.equal(pick(all, boxOf, ...c.point), c.poster, JSON.stringify(c));
  const overlap = [[0, 0, 2, 2], [1, 1, 3, 3]];
  assert.equal(pick([1, 0], (i) => overlap[i], 1.5, 1.5), 1); // the order candidates come in does not matter
  assert.ok(boxHolds([0, 0, 2, 2], 2, 2) && !boxMeets([0, 0, 2, 2], 2, 0, 3, 2));
});
