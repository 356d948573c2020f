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
  const w = aspect >= 1 ? slot : slot * aspect;
  const h = aspect >= 1 ? slot / aspect : slot;
  return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2];
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
  const n = 1 << z;
  const size = span / n;
  const clamp = (v) => Math.max(0, Math.min(n - 1, v));
  const tx0 = Math.floor((box[0] - origin) / size);
  const ty0 = Math.floor((box[1] - origin) / size);
  const tx1 = Math.max(tx0, Math.ceil((box[2] - origin) / size) - 1);
  const ty1 = Math.max(ty0, Math.ceil((box[3] - origin) / size) - 1);
  return [clamp(tx0), clamp(ty0), clamp(tx1), clamp(ty1)];
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
