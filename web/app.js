// The poster map: loading and the shared state. The other modules:
//   loader.js      fetching data.json and images (bounded, prioritised, cached)
//   renderer.js    drawing frames from the tile pyramid, composing tiles and overlays
//   interaction.js zoom and pan, picking, hover, click, keyboard, fly-to, layouts
//   panels.js      the poster panel, search, closest pairs, year filter and colours
//   clusters.js    the clusters panel, colour by cluster, the lasso, selections and their export
//   logic.js       pure functions, unit-tested with node --test
import { clusters } from "./clusters.js";
import { interaction } from "./interaction.js";
import { fetchJson } from "./loader.js";
import { deepestComposedLevel, makePresence, tileUrl, toWorld } from "./geometry.js";
import { assetUrl, dataUrlFromQuery, pathFor, readColumns, validateMap } from "./logic.js";
import { panels } from "./panels.js";
import { Renderer } from "./renderer.js";

const d3 = window.d3;
const $ = (id) => document.getElementById(id);
const canvas = $("map");
// Every URL the page fetches is resolved against this and must stay in its folder.
const PAGE_URL = window.location.href;

const thumbUrls = new Map(); // poster index -> its thumbnail's URL, once resolved

const map = {
  dataUrl: "", dataName: "", meta: null, P: null, n: 0, side: 0, layouts: {}, layout: "tsne",
  transform: d3.zoomIdentity, home: d3.zoomIdentity, dpr: 1, width: 0, height: 0,
  selected: -1, hover: -1, yearFrom: -Infinity, yearTo: Infinity, decades: false, clusterColours: false,
  selection: null, suppressClick: false, clusterTints: [],
  fade: null, thumbSize: 256, renderer: null, frame: 0,
  $, canvas, d3,
  /** A path from the data file as a URL in the page's folder, or null (and a notice) if it leaves it. */
  asset(rel) {
    try {
      return assetUrl(map.dataUrl, rel, PAGE_URL);
    } catch (error) {
      $("notice").textContent = `${error.message} (named in ${map.dataName})`;
      $("notice").hidden = false;
      return null;
    }
  },
  thumbPath(i) {
    return pathFor(map.meta.paths.thumb, map.P.thumb, i, map.P.id[i]);
  },
  thumbUrl(i) {
    // Asked for every frame while a thumbnail loads: resolving and checking the URL each time took
    // tens of ms a frame with hundreds loading, so each is resolved once.
    let url = thumbUrls.get(i);
    if (url === undefined) {
      url = map.asset(map.thumbPath(i)) || "about:blank";
      thumbUrls.set(i, url);
    }
    return url;
  },
  imagePath(i) {
    return pathFor(map.meta.paths.image, map.P.image, i, map.P.id[i]);
  },
  pageUrl(i) {
    if (map.P.page) return map.P.page[i] || "";
    return map.meta.paths.page ? map.meta.paths.page.replaceAll("{id}", map.P.id[i]) : "";
  },
  requestDraw() {
    if (map.frame) return;
    map.frame = requestAnimationFrame(() => {
      map.frame = 0;
      draw();
    });
  },
};
window.posterMap = { ready: false, map };

function draw() {
  if (!map.n) return;
  const complete = map.fade ? map.renderer.draw(map.fade.from, map.fade.to, map.fade.t)
    : map.renderer.draw(map.layout);
  ui.drawHighlights();
  clusterUi.draw(map.renderer.ctx);
  if (complete && !window.posterMap.firstView) window.posterMap.firstView = performance.now();
}

// -- loading ---------------------------------------------------------------------------
function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
  $("loading").hidden = true;
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
    try {
      validateMap(data);
    } catch (error) {
      throw new Error(`${map.dataName}: ${error.message}`);
    }
    for (const pyramid of Object.values(data.meta.tiles)) assetUrl(map.dataUrl, pyramid.path, PAGE_URL);
    window.posterMap.dataArrived = performance.now();
    setUp(data);
  } catch (error) {
    showError(error.message); // whatever went wrong, the page says so instead of "Loading…" for ever
  }
}

// A layout's positions in world units (the map square is side x side css px at zoom 1), its
// quadtree for picking, and its tile pyramid.
function makeLayout(xs, ys, pyramid, { lazyTree = false } = {}) {
  const n = xs.length;
  const wx = new Float64Array(n);
  const wy = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    [wx[i], wy[i]] = toWorld(xs[i], ys[i], map.side);
  }
  const present = makePresence(pyramid.present);
  const slot = pyramid.slot * map.side;
  const spanW = pyramid.span * map.side;
  const maxLevel = deepestComposedLevel(pyramid.levels, pyramid.slot, pyramid.span, map.thumbSize);
  let tree = null;
  const buildTree = () => d3.quadtree().x((i) => wx[i]).y((i) => wy[i]).addAll(d3.range(n));
  if (!lazyTree) tree = buildTree();
  return {
    wx, wy, slot,
    get tree() {
      if (!tree) tree = buildTree(); // the grid's: built when first shown
      return tree;
    },
    pyr: {
      levels: pyramid.levels, maxLevel, originW: pyramid.origin * map.side, spanW, present,
      url: (z, x, y) => map.asset(tileUrl(pyramid.path, z, x, y)) || "about:blank",
    },
  };
}

function setUp(data) {
  map.meta = data.meta;
  map.P = readColumns(data.columns, data.meta);
  map.n = map.P.n;
  map.thumbSize = data.meta.thumb_size || 256;
  if (data.meta.features && data.meta.features.random_weights) {
    $("notice").textContent = "This map was made with random network weights (a test run): "
      + "its positions and similarities say nothing about the posters.";
    $("notice").hidden = false;
  }
  clusterUi.showControls();
  ui.resizeCanvas(); // after the notice and the controls, which take room from the canvas
  map.side = Math.min(map.width, map.height) * 0.9;
  map.layouts.tsne = makeLayout(map.P.x, map.P.y, data.meta.tiles.tsne);
  if (data.meta.tiles.grid && map.P.gx) {
    map.layouts.grid = makeLayout(map.P.gx, map.P.gy, data.meta.tiles.grid, { lazyTree: true });
    $("layouts").hidden = false;
  }
  map.renderer = new Renderer(canvas, map, map.requestDraw);
  map.home = d3.zoomIdentity.translate((map.width - map.side) / 2, (map.height - map.side) / 2);
  ui.setUp();
  panelUi.setUp();
  clusterUi.setUp();
  draw();
  $("loading").hidden = true;
  window.posterMap.firstDraw = performance.now();
  window.posterMap.ready = true;
  document.body.dataset.ready = "true";
  panelUi.restoreFromHash(false);
}

const panelUi = panels(map);
const ui = interaction(map, panelUi);
const clusterUi = clusters(map, panelUi, PAGE_URL);
map.ui = ui;
map.panels = panelUi;
map.clusterUi = clusterUi;

// Hooks for tests and benchmarks: read-only views and the same actions a user has.
Object.assign(window.posterMap, {
  state: map,
  draw,
  select: (id) => panelUi.select(panelUi.indexOf(id), { fly: true, duration: 0 }),
  screenPosition(id) {
    const i = panelUi.indexOf(id);
    const layout = map.layouts[map.layout];
    const [x, y] = map.transform.apply([layout.wx[i], layout.wy[i]]);
    const rect = canvas.getBoundingClientRect();
    return { x: rect.left + x, y: rect.top + y };
  },
  zoomTo(k, x, y) {
    ui.zoomTo(d3.zoomIdentity.translate(x, y).scale(k));
  },
  sharpness: () => map.renderer.sharpness(map.layout),
  settled: () => !!map.renderer && !map.frame && map.renderer.settled() && !map.fade && !clusterUi.busy()
    && !ui.flying(),
  selection: clusterUi.selection, // ids, most central first, as exported
  selectCluster: (id) => clusterUi.selectCluster(id, { duration: 0 }),
  selectRegion: (id) => clusterUi.selectRegion(id, { duration: 0 }),
  outlines: () => clusterUi.shownLevel(), // "regions", "clusters" or null: what the map outlines now
  stats: () => ({ ...map.renderer.stats, tiles: map.renderer.tiles.size, thumbs: map.renderer.thumbs.size,
    composed: map.renderer.composed.size, overlays: map.renderer.overlays.size }),
});

ui.wire();
panelUi.wire();
clusterUi.wire();
load();
