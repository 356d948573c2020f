// The poster map: loading, the map's data, and the wiring of the other modules:
//   loader.js      fetching data.json and images (bounded, prioritised, cached)
//   renderer.js    drawing frames from the tile pyramid, composing tiles and overlays, highlights
//   interaction.js zoom and pan, picking, hover, click, keyboard, fly-to, layouts
//   panels.js      the poster panel, search, closest pairs, year filter, colours by decade or category, legend
//   clusters.js    the clusters panel, colour by cluster, the lasso, selections and their export
//   look.js        what the overlays show (years, a category, colouring, selection): the one owner, with setters
//   geometry.js    where posters and tiles lie (the same as stage 3's contracts/geometry.py)
//   logic.js       pure functions, unit-tested with node --test
//
// The modules do not call each other: they announce what happened through these events (a d3.dispatch,
// as d3-zoom uses), and app.js below says who listens, in the order listed:
//   look (what)                 the look changed: "years", "only" (a category), "colouring" or "selection"
//                               -> the renderer (overlays anew), panels and clusters (their controls)
//   pick (i, how)               the map or a thumbnail was clicked: poster i (-1: none), how = {fly}
//                               -> clusters (empty map, no poster chosen: the selection goes), panels (choose it)
//   poster (i, how)             poster i was chosen (-1: none), its panel shown
//                               -> interaction (fly to it, or bring it out from under the panel),
//                                  clusters (the permalink)
//   fit (box, duration, gently) show the world box [x0, y0, x1, y1] whole in the part of the map the panels
//                               leave (gently: move only as much as that takes) -> interaction
//   view (transform, duration)  go back to a view -> interaction
//   lasso (phase)               "start": a lasso is being drawn; "end": it was -> interaction (no tooltip,
//                               and the click that ends it picks no poster)
//   layout (name)               the layout is switching to `name` -> app (the permalink)
//   hash (wanted, animate, missing)  the URL's hash changed, or the map was just made: `wanted` is what it
//                               names (logic.js parseHash); each listener restores its part, and pushes onto
//                               `missing` what names nothing on this map -> interaction (the layout), panels
//                               (years, category, colouring), clusters (the selection), then panels (the poster)
//   escape (handled)            Esc -> panels, then clusters: the first with something open closes it
//   frame (offer)               a frame has budget left -> clusters (a lasso being resolved)
import { clusters } from "./clusters.js";
import { interaction } from "./interaction.js";
import { fetchBytes, fetchJson, fetchTable, readTableFiles } from "./loader.js";
import { deepestComposedLevel, makePresence, posterBox, tileUrl, toWorld } from "./geometry.js";
import {
  assetUrl, columnsFromTable, dataUrlFromQuery, emptyColumns, fillNear, makeHash, parseHash, pathFor, readColumns,
  readPlaces, PointGrid, idleSlices, readShard, SearchIndex, similarOf, tableTiles, tileMembers, TileTitles, validateMap,
  validateMeta,
} from "./logic.js";
import { createLook } from "./look.js";
import { panels } from "./panels.js";
import { Renderer } from "./renderer.js";

const d3 = window.d3;
const $ = (id) => document.getElementById(id);
const canvas = $("map");
// Every URL the page fetches is resolved against this and must stay in its folder.
const PAGE_URL = window.location.href;

const MAX_FULL_PX = 4096;
const thumbUrls = new Map(); // poster index -> its thumbnail's URL, once resolved
const imageUrls = new Map(); // poster index -> its full image's URL, once resolved

// An image's URL, asked for every frame while it loads: resolving and checking it each time took tens of
// ms a frame with hundreds loading, so each is resolved once, into `cache`.
function resolvedOnce(cache, i, pathOf) {
  let url = cache.get(i);
  if (url === undefined) {
    url = map.asset(pathOf(i)) || "about:blank";
    cache.set(i, url);
  }
  return url;
}

const events = d3.dispatch("look", "pick", "poster", "fit", "view", "lasso", "layout", "hash", "escape", "frame");
let byId = null; // poster id -> index

const map = {
  dataUrl: "", dataName: "", meta: null, P: null, n: 0, side: 0, layouts: {}, layout: "tsne",
  transform: d3.zoomIdentity, home: d3.zoomIdentity, dpr: 1, width: 0, height: 0,
  selected: -1, hover: -1, clusterTints: [], saying: 0,
  fade: null, thumbSize: 256, renderer: null, frame: 0,
  $, canvas, d3, events, look: createLook(events),
  /** A word about the map for a few seconds, over the canvas (it never moves the map). */
  say(text, seconds = 5) {
    $("map-status").textContent = text;
    $("map-status").hidden = false;
    clearTimeout(map.saying);
    map.saying = setTimeout(() => { $("map-status").hidden = true; }, seconds * 1000);
  },
  /** The index of poster `id`, or -1. The lookup is built when first asked (a permalink, a search): at
   * 1,000,000 posters it holds tens of MB that a map only looked at never needs. */
  indexOf(id) {
    if (!map.P) return -1;
    if (map.P.id.textColumn) return map.P.id.indexOf(id); // format 3: a hash table over the ids' bytes
    if (!byId) {
      byId = new Map();
      const ids = map.P.id;
      for (let i = 0; i < ids.length; i++) byId.set(ids[i], i);
    }
    return byId.get(id) ?? -1;
  },
  /** A path from the data file as a URL in the page's folder, or null (and a notice) if it leaves it. */
  asset(rel) {
    try {
      return assetUrl(map.dataUrl, rel, PAGE_URL);
    } catch (error) {
      $("notice-text").textContent = `${error.message} (named in ${map.dataName})`;
      $("notice").hidden = false;
      return null;
    }
  },
  thumbPath(i) {
    return pathFor(map.meta.paths.thumb, map.P.thumb, i, map.P.id[i]);
  },
  thumbUrl(i) {
    return resolvedOnce(thumbUrls, i, map.thumbPath);
  },
  /** Poster i's image path as the data file gives it; `id`: its id, where the caller has it already. */
  imagePath(i, id = map.P.id[i]) {
    return pathFor(map.meta.paths.image, map.P.image, i, id);
  },
  /** The full poster's URL. */
  imageUrl(i) {
    return resolvedOnce(imageUrls, i, map.imagePath);
  },
  /** Poster i's title ("" for none), or null while format 3's titles file of its tile is not read (titlesOf). */
  title(i) {
    if (map.P.title) return map.P.title[i];
    return titles.store ? titles.store.get(i) : "";
  },
  /** A promise of the titles of the posters `list`, in its order (format 3 reads their tiles' titles files;
   * one that cannot be read gives "" and a notice). */
  titlesOf(list) {
    if (map.P.title) return Promise.resolve(Array.from(list, (i) => map.P.title[i]));
    return titles.store.of(list).catch((error) => {
      $("notice-text").textContent = `The posters' titles cannot be shown: ${map.dataName}: ${error.message}`;
      $("notice").hidden = false;
      return Array.from(list, () => "");
    });
  },
  /** Format 3's search index from its shards (meta.table.search), each read as it arrives. */
  async searchIndex() {
    const about = map.meta.table;
    if (typeof about.search !== "string") throw new Error("meta.table names its titles files but no search shards");
    const count = Math.ceil(about.rows / about.search_rows);
    const urls = Array.from({ length: count }, (_, k) => map.asset(about.search.replaceAll("{k}", String(k))));
    if (urls.includes(null)) throw new Error("meta.table.search leaves the map's folder");
    const shards = await Promise.all(urls.map(async (url, k) => readShard(await fetchBytes(url, "high"), k, about.rows,
      about.search_rows)));
    return SearchIndex.fromShards(shards, map.P.year, about.search_rows);
  },
  /** A promise of poster i's similar posters, for `similar` (format 3 reads them when asked). */
  nearOf: (i) => nearOf(i),
  /** Poster i's similar posters `[neighbours, similarities]`, or null while they are not read (see nearOf). */
  similar: (i) => similarOf(map.P, i, near.tileOf),
  pageUrl(i, id = null) {
    if (map.P.page) return map.P.page[i] || "";
    return map.meta.paths.page ? map.meta.paths.page.replaceAll("{id}", id ?? map.P.id[i]) : "";
  },
  /** A poster's thumbnail as an <img>, loaded when it comes into view. */
  thumbImage(j) {
    const img = document.createElement("img");
    const src = map.asset(map.thumbPath(j));
    if (src) img.src = src;
    const title = map.title(j);
    img.alt = title ?? "";
    img.loading = "lazy";
    if (title === null) map.titlesOf([j]).then(([read]) => { img.alt = read; });
    return img;
  },
  /** A poster's thumbnail as a button that picks it ("pick", flying to it): similar posters, a selection's. */
  thumbButton(j, similarity) {
    const P = map.P;
    const year = Number.isFinite(P.year[j]) ? P.year[j] : "?";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "similar";
    button.dataset.id = P.id[j];
    const label = (title) => (similarity == null ? `${title} (${year})`
      : `${title} (${year}) · similarity ${similarity.toFixed(3)}`);
    const title = map.title(j);
    button.title = label(title ?? "");
    if (title === null) map.titlesOf([j]).then(([read]) => { button.title = label(read); });
    button.append(map.thumbImage(j));
    button.addEventListener("click", () => events.call("pick", null, j, { fly: true }));
    return button;
  },
  requestDraw() {
    if (map.frame) return;
    map.frame = requestAnimationFrame(() => {
      map.frame = 0;
      draw();
    });
  },
};
window.posterMap = { ready: false };

function draw() {
  if (!map.renderer) return;
  const complete = map.fade ? map.renderer.draw(map.fade.from, map.fade.to, map.fade.t)
    : map.renderer.draw(map.layout);
  if (map.n) clusterUi.draw(map.renderer.ctx);
  if (complete && !window.posterMap.firstView) {
    window.posterMap.firstView = performance.now();
    viewDrawn();
  }
}

// Resolved once the first view is drawn whole: format 3's table is read after it (see readTable).
let viewDrawn = () => {};
const firstViewDrawn = new Promise((resolve) => { viewDrawn = resolve; });
const TABLE_WAITS_MS = 2000;

// -- loading ---------------------------------------------------------------------------
function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
  $("loading").hidden = true;
  $("map-status").hidden = true; // "Reading the map's posters…" is over
  $("map-status").classList.remove("progress");
}

function progress(fraction, label) {
  const pct = Math.round(Math.max(0, Math.min(1, fraction)) * 100);
  $("loading").querySelector(".fill").style.width = `${pct}%`;
  $("loading").setAttribute("aria-valuenow", String(pct));
  if (label) $("loading").querySelector(".label").textContent = label;
}

async function load() {
  try {
    map.dataUrl = dataUrlFromQuery(window.location.search, PAGE_URL);
    map.dataName = decodeURIComponent(new URL(map.dataUrl).pathname.split("/").pop());
  } catch (error) {
    showError(error.message);
    return;
  }
  let data;
  try {
    progress(0, `Loading ${map.dataName}…`);
    try {
      data = await fetchJson(map.dataUrl, (f) => progress(f));
    } catch (error) {
      throw new Error(error.status === 404
        ? `${map.dataName} is not in this folder: make a map with \`make run\` (into web/data.json), or with `
          + `get_data_visu.py -o web/${map.dataName}, then reload`
        : error.message);
    }
    const table = !!(data && !data.columns && data.meta && data.meta.table);
    try {
      if (table) {
        // Format 3: the first view needs only data.json and the pyramid's tiles; it is drawn while the
        // posters' rows load from the map's table.
        validateMeta(data.meta);
        tableTiles(data.meta);
        checkPyramidPaths(data.meta);
        begin(data.meta, readColumns(emptyColumns(data.meta), data.meta));
        map.layouts.tsne = makeLayout(new Float32Array(0), new Float32Array(0), data.meta.tiles.tsne);
        draw();
        await readTable(data);
      }
      validateMap(data);
    } catch (error) {
      throw new Error(`${map.dataName}: ${error.message}`);
    }
    if (!table) checkPyramidPaths(data.meta); // format 3's were checked before its first view
    window.posterMap.dataArrived = performance.now();
    setUp(data);
  } catch (error) {
    showError(error.message); // whatever went wrong, the page says so instead of "Loading…" for ever
  }
}

// Format 3: the rows are in the table's Arrow files, which data.json lists. They are fetched once the first
// view is drawn (or after TABLE_WAITS_MS), so that they do not hold up its tiles on a machine of two cores
// (fetched beside them, the view came 0.3 s later at 100,000 posters), and read into format 2's columns.
async function readTable(data) {
  const tiles = tableTiles(data.meta);
  const urlOf = (z, x, y) => {
    const url = map.asset(tileUrl(data.meta.table.path, z, x, y));
    if (!url) throw new Error(`meta.table.path leaves the map's folder`);
    return url;
  };
  const status = $("map-status");
  const say = (f) => {
    status.textContent = `Reading the map's ${data.meta.table.rows.toLocaleString("en")} posters… ${Math.round(f * 100)}%`;
  };
  say(0);
  status.classList.add("progress");
  status.hidden = false;
  await Promise.race([firstViewDrawn, new Promise((resolve) => { setTimeout(resolve, TABLE_WAITS_MS); })]);
  const files = await fetchTable(tiles, urlOf, say);
  const parts = readTableFiles(files, window.Arrow);
  const tileOf = new Int32Array(data.meta.table.rows);
  data.columns = columnsFromTable(data.meta, parts, data.meta.table.rows, tileOf);
  near.tileOf = tileOf;
  if (typeof data.meta.table.titles === "string" && !data.columns.title) {
    titles.store = new TileTitles(tileOf, tiles, (t) => {
      const [z, x, y, rows] = tiles[t];
      const url = map.asset(tileUrl(data.meta.table.titles, z, x, y));
      if (!url) return Promise.reject(new Error("meta.table.titles leaves the map's folder"));
      return fetchTable([[z, x, y, rows]], () => url, undefined, { priority: "high" })
        .then((files) => readTableFiles(files, window.Arrow)[0]);
    }, TITLE_TILES_KEPT);
  }
  status.hidden = true;
  status.classList.remove("progress");
}

// Format 3's titles, read a tile at a time from its titles file when a poster of it is shown, and kept for the
// TITLE_TILES_KEPT tiles used last (at 1,000,000 posters a tile's are at most about 250 kB).
const titles = { store: null };
const TITLE_TILES_KEPT = 32;

// Format 3's similar posters, read a tile at a time from its near file when a poster of it is chosen, and
// kept for the NEAR_TILES_KEPT tiles used last (at 100,000 posters a tile's are about 200 kB).
const near = { tileOf: null, loads: new Map() };
const NEAR_TILES_KEPT = 64;

/** A promise of poster i's similar posters in map.P (at once where they are already there). */
function nearOf(i) {
  const meta = map.meta;
  if (!near.tileOf || !map.P.k || similarOf(map.P, i, near.tileOf)) return Promise.resolve();
  const t = near.tileOf[i];
  if (!near.loads.has(t)) {
    const [z, x, y, rows] = meta.table.tiles[t];
    const url = map.asset(tileUrl(meta.table.near, z, x, y));
    const fetched = url ? fetchTable([[z, x, y, rows]], () => url, undefined, { priority: "high" })
      : Promise.reject(new Error("meta.table.near leaves the map's folder"));
    near.loads.set(t, fetched
      .then((files) => {
        const gone = fillNear(map.P, readTableFiles(files, window.Arrow)[0], tileMembers(near.tileOf, t), t,
          NEAR_TILES_KEPT);
        for (const u of gone) near.loads.delete(u); // read again when next asked for
        map.requestDraw();
      })
      .catch((error) => {
        $("notice-text").textContent = `The similar posters cannot be shown: ${map.dataName}: ${error.message}`;
        $("notice").hidden = false;
      }));
  }
  return near.loads.get(t);
}

// Throws when a pyramid's tiles would be fetched from outside the map's folder.
function checkPyramidPaths(meta) {
  for (const pyramid of Object.values(meta.tiles)) assetUrl(map.dataUrl, pyramid.path, PAGE_URL);
}

// A layout's positions in world units (the map square is side x side css px at zoom 1), its
// grid of points for picking, and its tile pyramid. `xs` and `ys` (data coordinates, Float32Arrays from
// readPlaces) become the layout's own: they are turned into world units in place.
function makeLayout(xs, ys, pyramid, { lazyPoints = false } = {}) {
  const n = xs.length;
  // Float32: on a map square of up to 2,048 css px its 24-bit mantissa places a poster within 1/16,000 of a
  // css px, 1/250 at 64x zoom; half the memory of Float64 (8 MB at 1,000,000 posters for each layout).
  const wx = xs;
  const wy = ys;
  for (let i = 0; i < n; i++) {
    [wx[i], wy[i]] = toWorld(xs[i], ys[i], map.side);
  }
  const present = makePresence(pyramid.present);
  const slot = pyramid.slot * map.side;
  const spanW = pyramid.span * map.side;
  // Composed tiles go as deep as the tallest image there is shows sharp: the thumbnails, or the full posters
  // where the map gives their heights (up to MAX_FULL_PX: the zoom shows no poster taller than the screen).
  const maxLevel = deepestComposedLevel(pyramid.levels, pyramid.slot, pyramid.span,
    Math.max(map.thumbSize, Math.min(MAX_FULL_PX, map.tallestImage)));
  let points = lazyPoints ? null : new PointGrid(wx, wy);
  return {
    wx, wy, slot,
    /** The layout's PointGrid, for picking and the posters of a tile (the grid's: built when first shown). */
    get points() {
      if (!points) points = new PointGrid(wx, wy);
      return points;
    },
    pyr: {
      levels: pyramid.levels, maxLevel, originW: pyramid.origin * map.side, spanW, present,
      url: (z, x, y) => map.asset(tileUrl(pyramid.path, z, x, y)) || "about:blank",
    },
  };
}

// The map's frame, controls and renderer, from data.json's meta; the posters (`P`: none yet while format 3's
// table loads) may come later, through setUp. Until then the renderer draws the pyramid's tiles at the home
// view (from a layout of no posters), and nothing answers the pointer.
function begin(meta, P) {
  map.meta = meta;
  map.P = P;
  map.thumbSize = meta.thumb_size || 256;
  map.tallestImage = 0;
  if (meta.features && meta.features.random_weights) {
    $("notice-text").textContent = "This map was made with random network weights (a test run): "
      + "its positions and similarities say nothing about the posters.";
    $("notice").hidden = false;
  }
  clusterUi.showControls();
  $("notice-close").addEventListener("click", () => { $("notice").hidden = true; });
  ui.resizeCanvas(); // after the controls, which take room from the canvas
  map.side = Math.min(map.width, map.height) * 0.9;
  map.home = d3.zoomIdentity.translate((map.width - map.side) / 2, (map.height - map.side) / 2);
  map.transform = map.home;
  map.renderer = new Renderer(canvas, map, map.requestDraw);
  $("loading").hidden = true;
}

function setUp(data) {
  const P = readColumns(data.columns, data.meta);
  if (!map.renderer) begin(data.meta, P);
  map.P = P;
  map.n = map.P.n;
  byId = null; // built again when first asked (see indexOf)
  if (P.id.textColumn) idleSlices((count) => P.id.prepareIndex(count), 50_000); // format 3's, when idle
  for (const h of map.P.height || []) if (h > map.tallestImage) map.tallestImage = h; // NaN: not known
  const places = readPlaces(data.columns);
  map.layouts.tsne = makeLayout(...places.tsne, data.meta.tiles.tsne);
  if (data.meta.tiles.grid && places.grid) {
    map.layouts.grid = makeLayout(...places.grid, data.meta.tiles.grid, { lazyPoints: true });
    $("layouts").hidden = false;
  }
  map.renderer.postersChanged();
  ui.setUp();
  panelUi.setUp();
  clusterUi.setUp();
  draw();
  $("loading").hidden = true;
  window.posterMap.firstDraw = performance.now();
  window.posterMap.ready = true;
  document.body.dataset.ready = "true";
  restoreHash(false);
}

// -- the permalink: the URL's hash names the page's state (logic.js makeHash), and a link restores it --------
let restoring = false; // while a link is restored, its parts' changes do not rewrite it half-way

function writeHash() {
  if (restoring || !map.n) return;
  const s = map.look.selection;
  const hash = makeHash({
    layout: map.fade ? map.fade.to : map.layout, colour: map.look.colouring,
    years: [map.look.yearFrom, map.look.yearTo],
    only: map.look.only ? { name: map.look.only.category.name,
      value: map.look.only.code < 0 ? "" : map.look.only.category.values[map.look.only.code] } : null,
    cluster: s?.kind === "cluster" ? s.cluster : null, region: s?.kind === "region" ? s.region : null,
    lasso: s?.kind === "lasso" ? s.lasso : clusterUi.pendingLasso(),
    poster: map.selected >= 0 ? map.P.id[map.selected] : null,
  });
  if (hash !== window.location.hash && (hash || window.location.hash)) {
    history.replaceState(null, "", hash || window.location.pathname + window.location.search);
  }
}

/** Restore what the hash names; say in one line what it names that this map lacks, then write it anew. */
function restoreHash(animate) {
  if (!map.n) return;
  const wanted = parseHash(window.location.hash);
  const missing = wanted.unreadable.map((part) => `an unreadable ${part}`);
  restoring = true;
  try {
    events.call("hash", null, wanted, animate, missing);
  } finally {
    restoring = false;
  }
  if (missing.length) map.say(`This link names what is not on this map: ${missing.join(", ")}`, 8);
  writeHash();
}

const panelUi = panels(map);
const clusterUi = clusters(map, PAGE_URL);
const ui = interaction(map, {
  cover: () => panelUi.cover(), busy: () => clusterUi.busy(), wantsLasso: (event) => clusterUi.wantsLasso(event),
});
// Who listens to what (see the list at the top), in this order.
events.on("look.panels", panelUi.followLook);
events.on("look.clusters", clusterUi.followLook);
events.on("pick.clusters", clusterUi.pickedNothing);
events.on("pick.panels", (i, how = {}) => panelUi.select(i, { fly: !!how.fly }));
events.on("poster.interaction", ui.showPoster);
events.on("poster.hash", writeHash);
events.on("look.hash", writeHash);
events.on("layout.hash", writeHash);
events.on("fit.interaction", ([x0, y0, x1, y1], duration, gently) => (gently ? ui.revealBox : ui.fitBox)(x0, y0, x1, y1,
  duration));
events.on("view.interaction", (transform, duration) => ui.zoomTo(transform, duration));
events.on("lasso.interaction", ui.lasso);
events.on("hash.interaction", ui.restoreLayout);
events.on("hash.look", panelUi.restoreLook);
events.on("hash.clusters", clusterUi.restore);
events.on("hash.panels", panelUi.restoreFromHash);
events.on("escape.panels", panelUi.escape);
events.on("escape.clusters", clusterUi.escape);
events.on("frame.clusters", clusterUi.offerWork);
window.addEventListener("hashchange", () => restoreHash(true));

// The test API: what tests and benchmarks may read and do, the same actions a user has. Nothing else of
// the page's is reached from outside; README.md ("The page's test API") lists it.
Object.assign(window.posterMap, {
  /** A copy of what the view shows: the zoom transform, the canvas's size and the map square's side (css
   * px), a poster's slot at zoom 1, the layout, whether layouts are cross-fading, the year filter, the
   * colouring, the category filter ([name, code]: code -1 is "no value"), the chosen poster's id (or null)
   * and the number of posters. */
  view: () => ({
    transform: { x: map.transform.x, y: map.transform.y, k: map.transform.k }, width: map.width,
    height: map.height, side: map.side, slot: map.layouts[map.layout]?.slot ?? 0, layout: map.layout,
    fading: !!map.fade, years: [map.look.yearFrom, map.look.yearTo], colouring: map.look.colouring,
    only: map.look.only ? [map.look.only.category.name, map.look.only.code] : null,
    selected: map.selected >= 0 ? map.P.id[map.selected] : null, count: map.n,
  }),
  /** Every poster's id, in the map's order (a later poster is drawn on top). At 1,000,000 posters this makes
   * a million strings (and work for the garbage collector after): to name one poster, use idAt. */
  ids: () => Array.from(map.P.id),
  /** Poster i's id (i in the map's order). */
  idAt: (i) => map.P.id[i] ?? null,
  draw,
  select: (id) => panelUi.select(map.indexOf(id), { fly: true, duration: 0 }),
  /** Poster `id`'s centre on screen, in page css px. */
  screenPosition(id) {
    const i = map.indexOf(id);
    const layout = map.layouts[map.layout];
    const [x, y] = map.transform.apply([layout.wx[i], layout.wy[i]]);
    const rect = canvas.getBoundingClientRect();
    return { x: rect.left + x, y: rect.top + y };
  },
  /** Poster `id`'s box on screen {x0, y0, x1, y1}, in page css px. */
  screenBox(id) {
    const i = map.indexOf(id);
    const l = map.layouts[map.layout];
    const t = map.transform;
    const rect = canvas.getBoundingClientRect();
    const [x0, y0, x1, y1] = posterBox(l.wx[i], l.wy[i], map.P.aspect[i], l.slot);
    return { x0: rect.left + t.x + t.k * x0, y0: rect.top + t.y + t.k * y0, x1: rect.left + t.x + t.k * x1,
      y1: rect.top + t.y + t.k * y1 };
  },
  /** Zoom to scale k with poster `id`'s centre at (x, y), css px of the canvas. */
  placePoster(id, k, x, y) {
    const i = map.indexOf(id);
    const l = map.layouts[map.layout];
    ui.zoomTo(d3.zoomIdentity.translate(x - l.wx[i] * k, y - l.wy[i] * k).scale(k));
  },
  /** The ids of the posters whose centre lies within one tile (of the level drawn) and a slot of the view:
   * those whose images the page may fetch now. */
  nearView() {
    const l = map.layouts[map.layout];
    const t = map.transform;
    const grow = l.pyr.spanW / (1 << map.renderer.stats.level) + l.slot;
    const x0 = -t.x / t.k - grow;
    const y0 = -t.y / t.k - grow;
    const x1 = (map.width - t.x) / t.k + grow;
    const y1 = (map.height - t.y) / t.k + grow;
    return map.P.id.filter((id, i) => l.wx[i] >= x0 && l.wx[i] <= x1 && l.wy[i] >= y0 && l.wy[i] <= y1);
  },
  zoomTo(k, x, y) {
    ui.zoomTo(d3.zoomIdentity.translate(x, y).scale(k));
  },
  sharpness: () => map.renderer.sharpness(map.layout),
  settled: () => map.n > 0 && !map.frame && map.renderer.settled() && !map.fade && !clusterUi.busy()
    && !ui.flying(),
  selection: clusterUi.selection, // ids, most central first, as exported
  selectCluster: (id) => clusterUi.selectCluster(id, { duration: 0 }),
  selectRegion: (id) => clusterUi.selectRegion(id, { duration: 0 }),
  outlines: () => clusterUi.shownLevel(), // "regions", "clusters" or null: what the map outlines now
  /** The renderer's counters (frames, the level drawn, whether the view is complete) and the sizes of its
   * caches: tiles, thumbnails, full posters (and those wanted now), composed and overlay tiles, and
   * memberLevels, the levels of the overlay's per-tile poster lists it holds (at most 3). */
  stats: () => ({ ...map.renderer.stats, tiles: map.renderer.tiles.size, thumbs: map.renderer.thumbs.size,
    full: map.renderer.full.size, fullWanted: map.renderer.fullChosen.size, composed: map.renderer.composed.size,
    overlays: map.renderer.overlays.size, memberLevels: map.renderer.buckets.size }),
});

ui.wire();
panelUi.wire();
clusterUi.wire();
load();
