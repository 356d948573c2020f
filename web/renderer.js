// The renderer: what a frame costs follows the screen, not the number of posters.
//
// Imagery comes from the map's tile pyramid (stage 3 renders levels 0 .. levels-1, every poster
// 128-256 px tall at the deepest); deeper levels are composed here, one 256-px tile at a
// time, from the 256-px thumbnails of the posters in that tile. A frame draws, for each tile of
// the level that matches the zoom, that tile if it is ready, else the part of its nearest ready
// ancestor that covers it (enlarged: never blank, never a stall), and asks for what is missing,
// nearest to the centre first. Where a poster is taller on screen than its thumbnail (and its full image
// taller still), the tiles composed here take it from its full image instead, for the posters of the view
// nearest the centre. Year dimming and decade tints are overlay tiles composed the same way. Composing
// runs within a time budget per frame; loading runs off the main thread.
// Where posters and tiles lie (levels, tile ranges and rectangles, boxes, the posters of a tile) is
// geometry.js, shared with stage 3.
import {
  TILE, boxMeets, levelFor, posterBox, posterBoxInto, tileBucketsBuilder, tileRange, tileRect,
} from "./geometry.js";
import { ImageCache } from "./loader.js";
import {
  categoryColour, categoryOf, decadeColour, drawnEnlarged, fullPostersWanted, inYearRange, largestImage, visibleWorld,
} from "./logic.js";

// Per frame, for composing client and overlay tiles: little while the view moves, so that frames stay
// short; more once it has rested, so that the view turns sharp sooner.
const COMPOSE_BUDGET_MS = 6;
const COMPOSE_BUDGET_AT_REST_MS = 12;
const REST_AFTER_MS = 150;
const BG = "#111";
// Overlay tiles of levels up to this one take their posters from one pass per level (at most 4,096
// tiles, each with many posters); deeper, where a tile holds a few posters, from the grid of points, so that
// the passes' lists stay a few times the number of posters in memory, not one per level zoomed through.
const BUCKETED_LEVELS = 6;
// The levels of tile members kept at once, once built (each an Int32Array of about one entry a poster: 4 MB
// at 1,000,000 posters), those used last: a view overlays one level, and a zoom passes through its
// neighbours. A level dropped is made again, a slice a frame, when next needed. A frame overlays one level
// of each layout, so a level is never dropped for the one drawn beside it.
const BUCKET_LEVELS_KEPT = 3;
// Full posters: loaded for the posters of a view nearest its centre first, once the view rests, each decoded
// a little above its height on screen (logic.js fullPostersWanted), until they hold FULL_SCREENS screens of
// pixels (FULL_AT_ONCE posters at most); none while more than FULL_VIEW_MAX posters are in view (a zoom
// where no poster is that tall). The cache keeps one and a half times that, least recently used first.
const FULL_SCREENS = 8;
const FULL_AT_ONCE = 96;
const FULL_VIEW_MAX = 400;

export class Renderer {
  /**
   * `map` gives: P (columns), layouts[name] = {wx, wy, slot, tree, pyr}, thumbUrl(i), thumbSize, the
   * view (transform, width, height, dpr, selected, hover), `look` (look.js: filters, colouring,
   * selection; its "look" event makes the overlays anew) and `events` ("frame" asks other modules for
   * work within a frame's budget).
   */
  constructor(canvas, map, requestDraw) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d", { alpha: false });
    this.map = map;
    this.requestDraw = requestDraw;
    // A frame after each tile that arrives; thumbnails arrive by the hundred, so they ask for a frame
    // at most every 50 ms: a frame per thumbnail took a third of the main thread and slowed loading.
    this.tiles = new ImageCache({ capacity: 400, concurrency: 6, onLoad: requestDraw });
    this.thumbs = new ImageCache({ capacity: 1200, concurrency: 6, onLoad: () => this.drawSoon() });
    this.full = new ImageCache({ capacity: 2 * FULL_AT_ONCE, concurrency: 4, onLoad: requestDraw });
    this.fullChosen = new Map(); // this frame: poster -> the height its full image is wanted at
    this.fullComplete = true; // every full image wanted is here
    this.restTimer = 0; // a frame once the view rests, for the full posters it wants
    this.soon = 0;
    this.composed = new Map(); // client tiles: key -> {canvas, fallbacks: Set}; Map order = recency
    this.composing = new Map(); // client tiles under way: key -> {canvas, members, cursor, fallbacks}
    this.lastView = "";
    this.movedAt = 0;
    this.overlays = new Map(); // overlay tiles: key -> {canvas, done, cursor, items}
    this.overlayVersion = 0;
    this.buckets = new Map(); // "layout/z" -> tileBuckets of that level: see tileMembers
    this.building = new Set(); // this frame: the keys of the levels drawn while still being built
    this.jobs = []; // composing wanted this frame: [priority, fn]
    this.drawn = new Map(); // this frame: target tile key -> level drawn
    this.levels = new Map(); // this frame: layout -> the level of its tiles drawn
    this.stats = { frames: 0, lastMs: 0, level: 0, complete: false, fallbacks: 0 };
    map.events.on("look.renderer", () => this.overlaysChanged());
  }

  /** Call when the map's posters arrive (format 3's table, after the first view): what was composed from
   * none is composed anew. */
  postersChanged() {
    this.buckets.clear();
    this.composed.clear();
    this.composing.clear();
    this.overlaysChanged();
  }

  /** Call when the year filter, the selection or the colouring changes: overlay tiles are composed anew. */
  overlaysChanged() {
    this.overlayVersion += 1;
    this.overlays.clear();
    this.requestDraw();
  }

  overlayActive() {
    return this.map.look.active();
  }

  levelFor(layout) {
    const m = this.map;
    return levelFor(m.transform.k * m.dpr, layout.pyr.spanW, layout.pyr.maxLevel);
  }

  /** Draw a frame of `layoutName` (and, while switching layouts, `fadeTo` over it with alpha `fade`). */
  draw(layoutName, fadeTo = null, fade = 0) {
    const started = performance.now();
    const m = this.map;
    const ctx = this.ctx;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.globalAlpha = 1;
    ctx.fillStyle = BG;
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    this.jobs = [];
    this.drawn.clear();
    const viewKey = `${m.transform.k},${m.transform.x},${m.transform.y},${layoutName},${fadeTo}`;
    if (viewKey !== this.lastView) {
      this.lastView = viewKey;
      this.movedAt = started;
    }
    this.chooseFull(m.fade ? null : m.layouts[layoutName]);
    let complete = this.drawLayout(m.layouts[layoutName], layoutName, 1) && this.fullComplete;
    if (fadeTo) complete = this.drawLayout(m.layouts[fadeTo], fadeTo, fade) && complete;
    // A level still being built that this frame did not draw (a zoom passed through it) is dropped: until
    // done, a level holds 20 bytes a poster (20 MB at 1,000,000), and it would wait for as long as the view
    // stays elsewhere.
    for (const [key, level] of this.buckets) if (!level.done && !this.building.has(key)) this.buckets.delete(key);
    this.building.clear();
    // Before the caches pump: the chosen poster's thumbnail is asked for in this frame, or it would wait
    // for some later frame that nothing requests.
    this.drawHighlights(layoutName);
    this.tiles.pump();
    this.thumbs.pump();
    this.full.pump();
    this.map.events.call("frame", null, (job) => this.jobs.push(job)); // others' work, within the budget
    this.runJobs();
    this.stats.frames += 1;
    this.stats.lastMs = performance.now() - started;
    this.stats.complete = complete;
    if (this.jobs.length) this.requestDraw(); // composing goes on in the next frame; loads call back
    return complete;
  }

  drawSoon() {
    if (this.soon) return;
    this.soon = setTimeout(() => {
      this.soon = 0;
      this.requestDraw();
    }, 50);
  }

  drawLayout(layout, name, alpha) {
    const m = this.map;
    const { pyr } = layout;
    let z = this.levelFor(layout);
    // Full posters are drawn into the tiles composed here: from the first composed level on.
    if (alpha === 1 && this.fullChosen.size && z < pyr.levels && pyr.levels <= pyr.maxLevel) z = pyr.levels;
    this.stats.level = z;
    this.levels.set(name, z);
    const view = visibleWorld(m.transform, m.width, m.height, 0);
    const range = tileRange(view, z, pyr.originW, pyr.spanW);
    if (range.empty) return true;
    const cx = (range.x0 + range.x1) / 2;
    const cy = (range.y0 + range.y1) / 2;
    const overlay = this.overlayActive() && alpha === 1;
    let complete = true;
    this.ctx.globalAlpha = alpha;
    // The top levels are always wanted, so that every tile has an ancestor to fall back on.
    for (let a = 0; a < Math.min(pyr.levels, 3); a++) {
      const shift = Math.max(0, z - a);
      for (let y = range.y0 >> shift; y <= range.y1 >> shift; y++) {
        for (let x = range.x0 >> shift; x <= range.x1 >> shift; x++) {
          if (a < z && pyr.present(a, x, y)) this.tiles.want(`${name}/${a}/${x}/${y}`, pyr.url(a, x, y), -1e6 + a);
        }
      }
    }
    for (let y = range.y0; y <= range.y1; y++) {
      for (let x = range.x0; x <= range.x1; x++) {
        if (!pyr.present(z, x, y)) continue;
        const priority = Math.hypot(x - cx, y - cy);
        const got = this.tileImage(layout, name, z, x, y, priority);
        let level = z;
        let source = got;
        if (!got) {
          // A tile that failed to load stays drawn from its ancestor: nothing more will come.
          if (z >= pyr.levels || !this.tiles.failed(`${name}/${z}/${x}/${y}`)) complete = false;
          [level, source] = this.ancestor("base", layout, name, z, x, y);
        }
        this.drawn.set(`${name}/${z}/${x}/${y}`, source ? level : -1);
        if (source) this.blit(source, pyr, z, x, y, level);
        if (overlay) {
          const over = this.overlayTile(layout, name, z, x, y, priority);
          if (over) this.blit(over, pyr, z, x, y, z);
          else complete = false;
        }
      }
    }
    this.ctx.globalAlpha = 1;
    return complete;
  }

  /**
   * The full posters the view of `layout` wants (none: null, while layouts cross-fade): where a poster in
   * view is taller on screen than its thumbnail and its full image taller still (the map gives each
   * image's height: a map without them is drawn from thumbnails), the posters nearest the view's centre
   * within FULL_SCREENS screens of pixels (logic.js fullPostersWanted), asked for once the view rests.
   * Sets fullChosen (poster -> height) and fullComplete.
   */
  chooseFull(layout) {
    const m = this.map;
    const P = m.P;
    const t = m.transform;
    this.fullChosen = new Map();
    this.fullComplete = true;
    const perUnit = t.k * m.dpr;
    const budget = FULL_SCREENS * this.canvas.width * this.canvas.height;
    this.full.capacityPixels = 1.5 * budget;
    if (!layout || !P.height || layout.slot * perUnit <= m.thumbSize) return; // no poster that tall
    const view = visibleWorld(t, m.width, m.height, 0);
    const visible = this.posterIndices(layout, view.x0, view.y0, view.x1, view.y1);
    if (visible.length > FULL_VIEW_MAX) return;
    const cx = (view.x0 + view.x1) / 2;
    const cy = (view.y0 + view.y1) / 2;
    const tall = [];
    for (const i of visible) {
      const [, by, , by1] = posterBox(layout.wx[i], layout.wy[i], P.aspect[i], layout.slot);
      const thumb = this.thumbPx(i);
      const onScreen = (by1 - by) * perUnit;
      if (onScreen > thumb * 1.01 && largestImage(thumb, P.height[i]) > thumb) {
        tall.push({ i, onScreen, aspect: P.aspect[i], height: P.height[i],
          distance: Math.hypot(layout.wx[i] - cx, layout.wy[i] - cy) });
      }
    }
    if (!tall.length) return;
    this.fullChosen = fullPostersWanted(tall, budget, FULL_AT_ONCE);
    // Asked for once the view rests: a zoom passing through would otherwise fetch the posters of every
    // view on its way.
    const resting = performance.now() - this.movedAt >= REST_AFTER_MS;
    let rank = 0;
    for (const [i, height] of this.fullChosen) {
      const key = `f${i}@${height}`;
      rank += 1;
      if (this.full.get(key) || this.full.failed(key)) continue;
      this.fullComplete = false;
      if (resting) this.full.want(key, m.imageUrl(i), rank, height);
    }
    if (!this.fullComplete && !resting && !this.restTimer) {
      this.restTimer = setTimeout(() => {
        this.restTimer = 0;
        this.requestDraw();
      }, REST_AFTER_MS);
    }
  }

  /** The full image poster i is to be drawn from: at the height wanted, else at a step beside it (decoded
   * for a zoom nearby) while that one loads; null when none is ready or it is not wanted. */
  fullFor(i) {
    const height = this.fullChosen.get(i);
    if (height === undefined) return null;
    const step = Math.round(2 * Math.log2(height));
    for (const h of [height, Math.round(2 ** ((step + 1) / 2)), Math.round(2 ** ((step - 1) / 2))]) {
      const image = this.full.get(`f${i}@${h}`);
      if (image && image.height > this.thumbPx(i)) return image;
    }
    return null;
  }

  /** Poster i's height in its thumbnail, px. */
  thumbPx(i) {
    const m = this.map;
    return m.P.aspect[i] >= 1 ? m.thumbSize / m.P.aspect[i] : m.thumbSize;
  }

  /** The ready image of tile (z, x, y), asking for it if needed; null while it is not ready. */
  tileImage(layout, name, z, x, y, priority) {
    const { pyr } = layout;
    if (z < pyr.levels) {
      const key = `${name}/${z}/${x}/${y}`;
      const image = this.tiles.get(key);
      if (!image && !this.tiles.failed(key)) this.tiles.want(key, pyr.url(z, x, y), priority);
      return image;
    }
    return this.clientTile(layout, name, z, x, y, priority);
  }

  /**
   * The one registry of tiles ready to draw: tile (z, x, y) of `layer`, "base" (the server's tiles, then,
   * past the pyramid's levels, those composed here from thumbnails) or "overlay" (dimming and tints,
   * composed here), or null while it is not ready.
   */
  ready(layer, layout, name, z, x, y) {
    const key = `${name}/${z}/${x}/${y}`;
    if (layer === "overlay") {
      const entry = this.overlays.get(key);
      return entry && entry.done ? entry.canvas : null;
    }
    return (z < layout.pyr.levels ? this.tiles.get(key) : this.composed.get(key)?.canvas) || null;
  }

  /** The one fallback rule, for every layer: [level, image] of the nearest ready ancestor of (z, x, y), or [-1, null]. */
  ancestor(layer, layout, name, z, x, y) {
    for (let a = z - 1; a >= 0; a--) {
      const d = z - a;
      const image = this.ready(layer, layout, name, a, x >> d, y >> d);
      if (image) return [a, image];
    }
    return [-1, null];
  }

  /** Draw tile (z, x, y) from `image`, a tile of level `level` <= z that contains it, edges on device pixels. */
  blit(image, pyr, z, x, y, level) {
    const m = this.map;
    const t = m.transform;
    const [wx0, wy0, size] = tileRect(z, x, y, pyr.originW, pyr.spanW);
    const X0 = Math.round(m.dpr * (t.x + t.k * wx0));
    const Y0 = Math.round(m.dpr * (t.y + t.k * wy0));
    const X1 = Math.round(m.dpr * (t.x + t.k * (wx0 + size)));
    const Y1 = Math.round(m.dpr * (t.y + t.k * (wy0 + size)));
    const d = z - level;
    const part = TILE / (1 << d);
    const sx = (x - ((x >> d) << d)) * part;
    const sy = (y - ((y >> d) << d)) * part;
    this.ctx.drawImage(image, sx, sy, part, part, X0, Y0, X1 - X0, Y1 - Y0);
  }

  // -- tiles composed here, from thumbnails --------------------------------------------------
  /** The posters whose boxes meet the rectangle (wx0, wy0)-(wx1, wy1), from the layout's grid of points. */
  posterIndices(layout, wx0, wy0, wx1, wy1) {
    const r = layout.slot / 2; // a box lies within half a slot of its centre
    const P = this.map.P;
    const out = [];
    layout.points.visit(wx0 - r, wy0 - r, wx1 + r, wy1 + r, (i) => {
      if (boxMeets(posterBox(layout.wx[i], layout.wy[i], P.aspect[i], layout.slot), wx0, wy0, wx1, wy1)) out.push(i);
    });
    return out;
  }

  /**
   * A tile composed here from thumbnails, and from the full images of the posters the view wants them for
   * (chooseFull). Only the posters that show in the view need their thumbnails: a poster of the tile
   * outside the view is drawn from the server's deepest tile (it does not show), and the tile is composed
   * again if the view comes to show it, or when a full image it wants arrives.
   */
  clientTile(layout, name, z, x, y, priority) {
    const key = `${name}/${z}/${x}/${y}`;
    const view = visibleWorld(this.map.transform, this.map.width, this.map.height, 0);
    const P = this.map.P;
    const shows = (i) => boxMeets(posterBox(layout.wx[i], layout.wy[i], P.aspect[i], layout.slot),
      view.x0, view.y0, view.x1, view.y1);
    const done = this.composed.get(key);
    if (done) {
      let stale = false;
      for (const i of done.fallbacks) {
        if (shows(i) && !this.thumbs.failed(`t${i}`)) {
          stale = true;
          break;
        }
      }
      // A full image that came since, taller than the image the poster was drawn from.
      for (const i of this.fullChosen.keys()) {
        if (stale) break;
        const used = done.used.get(i);
        if (used !== undefined && shows(i) && (this.fullFor(i)?.height ?? 0) > used) stale = true;
      }
      if (!stale) {
        this.composed.delete(key);
        this.composed.set(key, done);
        return done.canvas;
      }
    }
    const [wx0, wy0, size] = tileRect(z, x, y, layout.pyr.originW, layout.pyr.spanW);
    const members = this.posterIndices(layout, wx0, wy0, wx0 + size, wy0 + size);
    let missing = 0;
    const cx = (view.x0 + view.x1) / 2;
    const cy = (view.y0 + view.y1) / 2;
    for (const i of members) {
      const thumbKey = `t${i}`;
      if (!shows(i) || this.thumbs.get(thumbKey) || this.thumbs.failed(thumbKey)) continue;
      missing += 1;
      // Nearest the centre of the view first, poster by poster.
      this.thumbs.want(thumbKey, this.map.thumbUrl(i), Math.hypot(layout.wx[i] - cx, layout.wy[i] - cy));
    }
    if (!missing) {
      this.jobs.push([priority, (stop) => {
        if (this.composed.get(key) === done) this.composed.delete(key); // replaced when the new one is ready
        this.compose(layout, name, key, z, x, y, members, stop);
      }]);
    }
    return done ? done.canvas : null; // the older composition, still right where it shows, meanwhile
  }

  /** Compose client tile `key` from its posters' thumbnails, resuming where the last frame's budget ran out. */
  compose(layout, name, key, z, x, y, members, stop) {
    let job = this.composing.get(key);
    if (!job) {
      const canvas = document.createElement("canvas");
      canvas.width = TILE;
      canvas.height = TILE;
      const c = canvas.getContext("2d", { alpha: false });
      c.fillStyle = BG;
      c.fillRect(0, 0, TILE, TILE);
      members.sort((a, b) => a - b); // index order: a later poster on top, as on the server's tiles
      job = { canvas, c, members, cursor: 0, fallbacks: new Set(), used: new Map(), fromFull: new Set() };
      this.composing.set(key, job);
      // Tiles left half-done when the view moved on: keep a few, forget the oldest.
      while (this.composing.size > 64) this.composing.delete(this.composing.keys().next().value);
    }
    const { c, fallbacks, used, fromFull } = job;
    const [wx0, wy0, size] = tileRect(z, x, y, layout.pyr.originW, layout.pyr.spanW);
    const scale = TILE / size;
    const P = this.map.P;
    while (job.cursor < job.members.length) {
      if (job.cursor % 16 === 0 && job.cursor && performance.now() > stop) return;
      const i = job.members[job.cursor++];
      const [bx, by, bx1, by1] = posterBox(layout.wx[i], layout.wy[i], P.aspect[i], layout.slot);
      const bw = bx1 - bx;
      const bh = by1 - by;
      const full = this.fullFor(i);
      const own = full || this.thumbs.get(`t${i}`); // its full image where one is wanted and here
      if (own) {
        c.drawImage(own, (bx - wx0) * scale, (by - wy0) * scale, bw * scale, bh * scale);
        used.set(i, own.height);
        if (full) fromFull.add(i);
        continue;
      }
      fallbacks.add(i); // no thumbnail: its part of the deepest server tile, enlarged
      const deepest = layout.pyr.levels - 1;
      const d = z - deepest;
      const image = this.tiles.get(`${name}/${deepest}/${x >> d}/${y >> d}`);
      if (image) {
        const [ax0, ay0, asize] = tileRect(deepest, x >> d, y >> d, layout.pyr.originW, layout.pyr.spanW);
        const k = TILE / asize;
        c.drawImage(image, (bx - ax0) * k, (by - ay0) * k, bw * k, bh * k,
          (bx - wx0) * scale, (by - wy0) * scale, bw * scale, bh * scale);
      } else {
        c.fillStyle = "#5a5a5a";
        c.fillRect((bx - wx0) * scale, (by - wy0) * scale, bw * scale, bh * scale);
      }
    }
    this.composing.delete(key);
    this.composed.set(key, { canvas: job.canvas, fallbacks, used, fromFull });
    while (this.composed.size > 300) this.composed.delete(this.composed.keys().next().value);
  }

  runJobs() {
    this.jobs.sort((a, b) => a[0] - b[0]);
    const now = performance.now();
    const stop = now + (now - this.movedAt > REST_AFTER_MS ? COMPOSE_BUDGET_AT_REST_MS : COMPOSE_BUDGET_MS);
    let done = 0;
    for (const [, job] of this.jobs) {
      if (done > 0 && performance.now() > stop) break;
      job(stop);
      done += 1;
    }
    this.jobs = this.jobs.slice(done);
    if (done) this.requestDraw();
  }

  // -- overlays: dimming (years, a category, a selection) and tints (decades, clusters, a category) ----
  /**
   * The posters whose box meets tile (z, x, y), ascending (a later poster on top). Down to
   * BUCKETED_LEVELS every tile of a level is filled at once, once per level (a walk per tile cost tens
   * of ms a frame whenever a selection or a colouring changed every overlay tile at once), and a slice
   * at a time, as a job within the frame's budget (a level of 1,000,000 posters takes 40-60 ms). null
   * until the level is done: the overlay's ancestor stands in meanwhile.
   */
  tileMembers(layout, name, z, x, y, priority) {
    if (z > BUCKETED_LEVELS) {
      const [wx0, wy0, size] = tileRect(z, x, y, layout.pyr.originW, layout.pyr.spanW);
      return this.posterIndices(layout, wx0, wy0, wx0 + size, wy0 + size).sort((a, b) => a - b);
    }
    const levelKey = `${name}/${z}`;
    let level = this.buckets.get(levelKey);
    if (level) {
      this.buckets.delete(levelKey); // the levels used last are kept: see BUCKET_LEVELS_KEPT
    } else {
      const { pyr, wx, wy, slot } = layout;
      const { aspect } = this.map.P;
      level = tileBucketsBuilder(wx.length, (i, out) => posterBoxInto(out, wx[i], wy[i], aspect[i], slot), z,
        pyr.originW, pyr.spanW);
      // The level used longest ago goes, built or not: a frame overlays one level of each layout.
      while (this.buckets.size >= BUCKET_LEVELS_KEPT) this.buckets.delete(this.buckets.keys().next().value);
    }
    this.buckets.set(levelKey, level);
    if (!level.done) {
      this.building.add(levelKey);
      this.jobs.push([priority, (stop) => level.step(() => performance.now() < stop)]);
      return null;
    }
    const k = y * (1 << z) + x;
    return level.members.subarray(level.starts[k], level.starts[k + 1]);
  }

  overlayTile(layout, name, z, x, y, priority) {
    const key = `${name}/${z}/${x}/${y}`;
    let entry = this.overlays.get(key);
    if (entry && entry.done) return entry.canvas;
    const items = entry ? null : this.tileMembers(layout, name, z, x, y, priority);
    if (!entry && items) {
      const [wx0, wy0, size] = tileRect(z, x, y, layout.pyr.originW, layout.pyr.spanW);
      const canvas = document.createElement("canvas");
      canvas.width = TILE;
      canvas.height = TILE;
      // A canvas on the CPU (read back below): see composeOverlay.
      const c = canvas.getContext("2d", { willReadFrequently: true });
      entry = { canvas, c, done: false, cursor: 0, items, wx0, wy0, scale: TILE / size };
      this.overlays.set(key, entry);
      while (this.overlays.size > 400) this.overlays.delete(this.overlays.keys().next().value);
    }
    if (entry) this.jobs.push([priority, (stop) => this.composeOverlay(layout, entry, stop)]);
    // Until it is done, the nearest finished ancestor stands in.
    const [level, up] = this.ancestor("overlay", layout, name, z, x, y);
    if (up) this.blit(up, layout.pyr, z, x, y, level);
    return null;
  }

  composeOverlay(layout, entry, stop) {
    const m = this.map;
    const { look } = m;
    const P = m.P;
    const { c, wx0, wy0, scale, items } = entry;
    const mask = look.selection ? look.selection.mask : null;
    const decades = look.colouring === "decades";
    const clusterOf = look.colouring === "clusters" ? P.cluster : null; // tints by cluster id: m.clusterTints
    const category = categoryOf(P.categories, look.colouring);
    const categoryTints = category ? category.values.map((_, c) => categoryColour(category, c, m.palette)) : null;
    while (entry.cursor < items.length) {
      const end = Math.min(items.length, entry.cursor + 500);
      for (let n = entry.cursor; n < end; n++) {
        const i = items[n];
        const [bx, by, bx1, by1] = posterBox(layout.wx[i], layout.wy[i], P.aspect[i], layout.slot);
        const bw = bx1 - bx;
        const bh = by1 - by;
        const dim = !inYearRange(P.year[i], look.yearFrom, look.yearTo) || (mask !== null && !mask[i])
          || !look.passes(i);
        const x = (bx - wx0) * scale;
        const y = (by - wy0) * scale;
        // Each poster's box takes its own overlay, over what lay under it: a later poster is on top, as
        // in the tiles, and tints of overlapping posters do not pile up into a solid colour.
        c.clearRect(x, y, bw * scale, bh * scale);
        if (dim) {
          c.fillStyle = "rgba(17, 17, 17, 0.88)";
          c.fillRect(x, y, bw * scale, bh * scale);
        }
        const tint = decades ? decadeColour(P.year[i], m.palette, m.firstDecade)
          : clusterOf ? m.clusterTints[clusterOf[i]] ?? null
            : category ? categoryTints[category.codes[i]] ?? "#888888" : null;
        if (tint && mask !== null && mask[i]) {
          // A chosen poster keeps its picture: its colour is a frame round it, not a wash over it.
          const w = Math.max(1.5, 0.06 * Math.min(bw, bh) * scale);
          c.strokeStyle = tint;
          c.lineWidth = w;
          c.strokeRect(x + w / 2, y + w / 2, bw * scale - w, bh * scale - w);
        } else if (tint) {
          c.globalAlpha = dim ? 0.06 : 0.45;
          c.fillStyle = tint;
          c.fillRect(x, y, bw * scale, bh * scale);
          c.globalAlpha = 1;
        }
      }
      entry.cursor = end;
      // Drawing calls are only recorded here; the pixels are made when the canvas is used. Read a pixel
      // back so that they are made now, inside this frame's budget: otherwise a tile of 100,000 posters
      // was rasterised at once in the frame that first showed it (46 ms on top of the budget).
      c.getImageData(0, 0, 1, 1);
      if (performance.now() > stop) return;
    }
    entry.done = true;
  }

  // -- highlights: the chosen poster, its similar posters, the one under the pointer -----------
  drawHighlights(layoutName) {
    const m = this.map;
    if (m.fade) return;
    const ctx = this.ctx;
    const t = m.transform;
    const l = m.layouts[layoutName];
    const P = m.P;
    ctx.setTransform(m.dpr * t.k, 0, 0, m.dpr * t.k, m.dpr * t.x, m.dpr * t.y);
    const line = 2 / t.k;
    const box = (i) => {
      const [x0, y0, x1, y1] = posterBox(l.wx[i], l.wy[i], P.aspect[i], l.slot);
      return [x0, y0, x1 - x0, y1 - y0]; // as the canvas wants it: x, y, width, height
    };
    if (m.selected >= 0) {
      ctx.strokeStyle = "rgba(107, 140, 255, 0.9)";
      ctx.lineWidth = line;
      for (const j of m.similar(m.selected)?.[0] ?? []) {
        if (j < 0 || j >= m.n) continue;
        const [x, y, w, h] = box(j);
        ctx.strokeRect(x, y, w, h);
      }
      // The chosen poster on top of any overlap, from its full image when the view drew it, else from its
      // thumbnail once loaded.
      const [x, y, w, h] = box(m.selected);
      const thumb = this.fullFor(m.selected) || this.thumbs.get(`t${m.selected}`);
      if (thumb) ctx.drawImage(thumb, x, y, w, h);
      else this.thumbs.want(`t${m.selected}`, m.thumbUrl(m.selected), -1e9);
      ctx.strokeStyle = "#ffd24a";
      ctx.lineWidth = line * 2;
      ctx.strokeRect(x - line, y - line, w + 2 * line, h + 2 * line);
    }
    if (m.hover >= 0 && m.hover !== m.selected) {
      const [x, y, w, h] = box(m.hover);
      ctx.strokeStyle = "#fff";
      ctx.lineWidth = line;
      ctx.strokeRect(x, y, w, h);
    }
    ctx.setTransform(1, 0, 0, 1, 0, 0);
  }

  // -- what a person sees --------------------------------------------------------------------
  /**
   * Of the posters in view, how many are drawn from an image smaller than their size on
   * screen (device pixels), below the thumbnail's own size: 0 once a view has settled.
   */
  sharpness(layoutName) {
    const m = this.map;
    const layout = m.layouts[layoutName];
    const { pyr } = layout;
    const P = m.P;
    const z = this.levels.get(layoutName) ?? this.levelFor(layout);
    const view = visibleWorld(m.transform, m.width, m.height, 0);
    const visible = this.posterIndices(layout, view.x0, view.y0, view.x1, view.y1);
    let enlarged = 0;
    let full = 0;
    const size = pyr.spanW / (1 << z);
    for (const i of visible) {
      const [bx, by, bx1, by1] = posterBox(layout.wx[i], layout.wy[i], P.aspect[i], layout.slot);
      const bh = by1 - by;
      // The tile under the middle of the poster's visible part: the one it was drawn from.
      const mx = (Math.max(bx, view.x0) + Math.min(bx1, view.x1)) / 2;
      const my = (Math.max(by, view.y0) + Math.min(by1, view.y1)) / 2;
      const tx = Math.floor((mx - pyr.originW) / size);
      const ty = Math.floor((my - pyr.originW) / size);
      const level = this.drawn.get(`${layoutName}/${z}/${tx}/${ty}`) ?? -1;
      const thumbPx = this.thumbPx(i);
      let sourcePx = level < 0 ? 0 : (bh * TILE * (1 << level)) / pyr.spanW;
      if (level >= pyr.levels) {
        const composed = this.composed.get(`${layoutName}/${level}/${tx >> (z - level)}/${ty >> (z - level)}`);
        if (composed && composed.fromFull.has(i)) {
          sourcePx = Math.min(sourcePx, composed.used.get(i)); // its full image, composed into the tile
          full += 1;
        } else {
          const fromThumb = composed && !composed.fallbacks.has(i);
          sourcePx = fromThumb ? Math.min(sourcePx, thumbPx)
            : Math.min(sourcePx, (bh * TILE * (1 << (pyr.levels - 1))) / pyr.spanW);
        }
      }
      // The largest image there is: its full image where the map gives its height and it is taller than
      // the thumbnail (whose own height is no more than the image's); else the thumbnail, as before full
      // posters were drawn.
      const height = P.height ? P.height[i] : NaN;
      const cap = P.height ? largestImage(Math.min(thumbPx, height || Infinity), height) : thumbPx;
      if (drawnEnlarged(sourcePx, bh * m.transform.k * m.dpr, cap)) enlarged += 1;
    }
    return { visible: visible.length, enlarged, level: z, full };
  }

  /** Nothing left to load or compose for the current view. */
  settled() {
    return this.stats.complete && !this.jobs.length && !this.tiles.pending && !this.thumbs.pending
      && !this.full.pending;
  }
}
