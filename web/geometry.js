// The map's geometry, shared with stage 3: where each poster and each tile lies.
//
// This module and posters_cnn/contracts/geometry.py say the same thing in two languages; both are
// checked against one golden fixture, tests/fixtures/geometry.json (tests/js/geometry.test.js and
// tests/test_geometry.py). The frames and rules are stated in the Python module's docstring:
// data (x, y in [-1, 1], y up), unit (u, v in [0, 1], y down); the page's world frame is the unit
// frame times the map square's side in css pixels, and every function here but levelFor is the same
// in any multiple of the unit frame. A box is [x0, y0, x1, y1]; tile (z, x, y) is the half-open square
// of side span / 2^z from origin + (x, y) * side; a poster lies in the tiles its box meets; the poster
// picked at a point is the highest index whose box holds it, edges included.

export const TILE = 256;

/** Data frame to unit frame. */
export function toUnit(x, y) {
  return [(x + 1) / 2, (1 - y) / 2];
}

/** Unit frame to data frame: the inverse of toUnit. */
export function unitToData(u, v) {
  return [2 * u - 1, 1 - 2 * v];
}

/** A data point in world units: the unit frame scaled to a map square of `side` css px. */
export function toWorld(x, y, side) {
  const [u, v] = toUnit(x, y);
  return [u * side, v * side];
}

/** The inverse of toWorld. */
export function toData(wx, wy, side) {
  return unitToData(wx / side, wy / side);
}

/** A poster's box [x0, y0, x1, y1]: fitted in a square slot, centred on (cx, cy). */
export function posterBox(cx, cy, aspect, slot) {
  return posterBoxInto([0, 0, 0, 0], cx, cy, aspect, slot);
}

/** posterBox written into `out` (an array of 4), which it returns: no allocation in a pass over every poster. */
export function posterBoxInto(out, cx, cy, aspect, slot) {
  const w = aspect >= 1 ? slot : slot * aspect;
  const h = aspect >= 1 ? slot / aspect : slot;
  out[0] = cx - w / 2;
  out[1] = cy - h / 2;
  out[2] = cx + w / 2;
  out[3] = cy + h / 2;
  return out;
}

/** Whether box [x0, y0, x1, y1] overlaps the rectangle (x0, y0)-(x1, y1) by more than an edge. */
export function boxMeets(box, x0, y0, x1, y1) {
  return box[2] > x0 && box[0] < x1 && box[3] > y0 && box[1] < y1;
}

/** Whether box [x0, y0, x1, y1] holds the point (px, py), edges included: picking's rule. */
export function boxHolds(box, px, py) {
  return px >= box[0] && px <= box[2] && py >= box[1] && py <= box[3];
}

/**
 * The deepest level the page draws: past the pyramid's own levels it composes tiles from thumbnails
 * until a slot is as tall as a thumbnail (no sharper image of a poster exists).
 */
export function deepestComposedLevel(levels, slot, span, thumbSize) {
  const tallAt0 = (slot * TILE) / span;
  return Math.max(levels - 1, Math.ceil(Math.log2(thumbSize / tallAt0)));
}

/**
 * The level to draw when a unit of the frame that `span` is measured in is `pxPerUnit` device pixels
 * on screen: the first whose pixels are at least as fine as the screen's, within [0, maxLevel].
 */
export function levelFor(pxPerUnit, span, maxLevel) {
  const need = Math.log2((pxPerUnit * span) / TILE);
  return Math.max(0, Math.min(maxLevel, Math.ceil(need - 1e-9)));
}

/** [x0, y0, size]: tile (z, x, y)'s corner and side. */
export function tileRect(z, x, y, origin, span) {
  const size = span / (1 << z);
  return [origin + x * size, origin + y * size, size];
}

/** The tiles [x0, x1] x [y0, y1] of level z that meet the rectangle `view` {x0, y0, x1, y1}. */
export function tileRange(view, z, origin, span) {
  const n = 1 << z;
  const size = span / n;
  const cell = (v) => Math.max(0, Math.min(n - 1, Math.floor((v - origin) / size)));
  return {
    x0: cell(view.x0), x1: cell(view.x1), y0: cell(view.y0), y1: cell(view.y1),
    empty: view.x1 < origin || view.y1 < origin || view.x0 > origin + span || view.y0 > origin + span,
  };
}

/** [tx0, ty0, tx1, ty1]: the tiles of level z that box [x0, y0, x1, y1] meets, inclusive. */
export function tilesOfBox(box, z, origin, span) {
  return tilesOfBoxInto([0, 0, 0, 0], box, z, origin, span);
}

/** tilesOfBox written into `out` (an array of 4), which it returns. */
export function tilesOfBoxInto(out, box, z, origin, span) {
  const n = 1 << z;
  const size = span / n;
  const tx0 = Math.floor((box[0] - origin) / size);
  const ty0 = Math.floor((box[1] - origin) / size);
  const tx1 = Math.max(tx0, Math.ceil((box[2] - origin) / size) - 1);
  const ty1 = Math.max(ty0, Math.ceil((box[3] - origin) / size) - 1);
  out[0] = Math.max(0, Math.min(n - 1, tx0));
  out[1] = Math.max(0, Math.min(n - 1, ty0));
  out[2] = Math.max(0, Math.min(n - 1, tx1));
  out[3] = Math.max(0, Math.min(n - 1, ty1));
  return out;
}

/**
 * Every tile of level z with its posters, in one counting pass and one filling pass over `n` posters:
 * tile (x, y)'s posters, ascending, are `members.subarray(starts[k], starts[k + 1])` with k = y * 2^z + x,
 * the same as postersInTile gives. `boxInto(i, out)` writes poster i's box into `out`.
 */
export function tileBuckets(n, boxInto, z, origin, span) {
  const build = tileBucketsBuilder(n, boxInto, z, origin, span);
  build.step(() => true);
  return build;
}

/**
 * tileBuckets a slice at a time: `step(more)` goes on while `more()` is true (asked every few thousand
 * posters) and returns whether the buckets are done; `starts` and `members` are there once they are. At
 * 1,000,000 posters a level takes 40-60 ms, too long for one frame.
 */
export function tileBucketsBuilder(n, boxInto, z, origin, span) {
  const SLICE = 8192;
  const side = 1 << z;
  const tiles = side * side;
  let ranges = new Int32Array(4 * n); // each poster's tiles as tilesOfBox gives them: x0, y0, x1, y1
  const counts = new Int32Array(tiles + 1);
  const box = [0, 0, 0, 0];
  const range = [0, 0, 0, 0];
  const out = { starts: null, members: null, done: false, step };
  let counted = 0;
  let filled = 0;
  let next = null;
  function count(to) {
    for (let i = counted; i < to; i++) {
      boxInto(i, box);
      tilesOfBoxInto(range, box, z, origin, span);
      if (!(range[0] <= range[2] && range[1] <= range[3])) {
        ranges[4 * i] = 1; // in no tile (a box with no shape): an empty range
        continue;
      }
      ranges[4 * i] = range[0];
      ranges[4 * i + 1] = range[1];
      ranges[4 * i + 2] = range[2];
      ranges[4 * i + 3] = range[3];
      for (let ty = range[1]; ty <= range[3]; ty++) {
        for (let tx = range[0]; tx <= range[2]; tx++) counts[ty * side + tx + 1] += 1;
      }
    }
    counted = to;
  }
  function fill(to) {
    const { members } = out;
    for (let i = filled; i < to; i++) {
      const x0 = ranges[4 * i];
      const x1 = ranges[4 * i + 2];
      for (let ty = ranges[4 * i + 1]; ty <= ranges[4 * i + 3]; ty++) {
        for (let tx = x0; tx <= x1; tx++) members[next[ty * side + tx]++] = i;
      }
    }
    filled = to;
  }
  function step(more) {
    while (!out.done) {
      if (counted < n) {
        count(Math.min(n, counted + SLICE));
      } else if (!out.members) {
        for (let k = 0; k < tiles; k++) counts[k + 1] += counts[k];
        out.starts = counts;
        out.members = new Int32Array(counts[tiles]);
        next = counts.slice(0, tiles);
      } else {
        fill(Math.min(n, filled + SLICE));
        out.done = filled === n;
        if (out.done) [ranges, next] = [null, null];
      }
      if (!out.done && !more()) break;
    }
    return out.done;
  }
  return out;
}

/** The posters, ascending, whose boxes (boxOf(i) for i < n) meet tile (z, x, y). */
export function postersInTile(n, boxOf, z, x, y, origin, span) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const [tx0, ty0, tx1, ty1] = tilesOfBox(boxOf(i), z, origin, span);
    if (tx0 <= x && x <= tx1 && ty0 <= y && y <= ty1) out.push(i);
  }
  return out;
}

/** The poster drawn on top at (px, py) among `candidates` (indices): the highest whose box holds it; -1. */
export function pick(candidates, boxOf, px, py) {
  let best = -1;
  for (const i of candidates) if (i > best && boxHolds(boxOf(i), px, py)) best = i;
  return best;
}

/** A tile's path from its pyramid's template, such as `.../tiles/tsne/{z}/{x}-{y}.jpg`. */
export function tileUrl(template, z, x, y) {
  return template.replace("{z}", z).replace("{x}", x).replace("{y}", y);
}

/**
 * Whether tile (z, x, y) exists, from the levels' base64 `present` bitsets (bit y * 2^z + x); past the
 * deepest level, whether its ancestor there does (the page composes those tiles where there is imagery).
 */
export function makePresence(present) {
  const bits = present.map((b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
  const deepest = bits.length - 1;
  return (z, x, y) => {
    if (z > deepest) {
      const d = z - deepest;
      [z, x, y] = [deepest, x >> d, y >> d];
    }
    const side = 1 << z;
    if (x < 0 || y < 0 || x >= side || y >= side) return false;
    const bit = y * side + x;
    return ((bits[z][bit >> 3] >> (bit & 7)) & 1) === 1;
  };
}
