// The poster map: one <canvas>, d3-zoom for pan and zoom, d3-quadtree for picking.
// No DOM node per poster, and no data string is ever parsed as HTML.
import {
  assetUrl, buildSearchIndex, centreOn, dataUrlFromQuery, decadeColour, hashForPoster, inYearRange,
  levelOfDetail, posterFromHash, searchTitles, slotSize, visibleWorld, yearExtent,
} from "./logic.js";

const d3 = window.d3;
const $ = (id) => document.getElementById(id);
const canvas = $("map");
const ctx = canvas.getContext("2d", { alpha: false });
const OVERVIEW_MAX = 4096; // px: the pre-rendered bitmap used when zoomed out
const BIG_IMAGES_MAX = 200; // at most this many visible posters are drawn from their larger images
const FLY_SIZE = 160; // css px a poster is shown at after "fly to"
const SPRITE_BUDGET = 1500; // most posters drawn one by one in a frame (thousands ran at 7 fps)

const state = {
  dataUrl: "", dataName: "", data: null, points: [], n: 0, atlases: [], side: 0, cell: 64,
  wx: null, wy: null, layouts: {}, layout: "tsne", slot: 1, slots: {}, tree: null,
  transform: d3.zoomIdentity, home: d3.zoomIdentity, dpr: 1, width: 0, height: 0,
  overview: null, overviewScale: 0, overviewOrigin: 0, animating: false,
  selected: -1, hover: -1, yearFrom: -Infinity, yearTo: Infinity, decades: false,
  bigImages: new Map(), loadingBig: 0, pairs: null, searchIndex: [], suggestions: [], active: -1,
  frame: 0, drawStats: { frames: 0, lastMs: 0, lod: "" },
};
const zoom = d3.zoom().on("zoom", (event) => {
  state.transform = event.transform;
  requestDraw();
});

// -- loading ---------------------------------------------------------------------------
// Every URL the page fetches is resolved against this and must stay in its folder.
const PAGE_URL = window.location.href;

// A path from the data file as a URL in the page's folder, or null (and a notice) if it leaves it.
function asset(rel) {
  try {
    return assetUrl(state.dataUrl, rel, PAGE_URL);
  } catch (error) {
    $("notice").textContent = `${error.message} (named in ${state.dataName})`;
    $("notice").hidden = false;
    return null;
  }
}

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

async function fetchJson(url, onProgress) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`cannot load ${url}: HTTP ${response.status}`);
  const total = Number(response.headers.get("Content-Length")) || 0;
  if (!response.body || !total) return response.json();
  const reader = response.body.getReader();
  const chunks = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.length;
    onProgress(received / total);
  }
  const bytes = new Uint8Array(received);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return JSON.parse(new TextDecoder().decode(bytes));
}

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.decoding = "async";
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error(`cannot load ${src}`));
    image.src = src;
  });
}

async function load() {
  try {
    state.dataUrl = dataUrlFromQuery(window.location.search, PAGE_URL);
    state.dataName = decodeURIComponent(new URL(state.dataUrl).pathname.split("/").pop());
  } catch (error) {
    showError(error.message);
    return;
  }
  let data;
  try {
    progress(0, `Loading ${state.dataName}…`);
    data = await fetchJson(state.dataUrl, (f) => progress(f * 0.6));
    if (!data || !Array.isArray(data.points) || !data.meta) throw new Error(`${state.dataName} is not a map data file`);
  } catch (error) {
    showError(error.message);
    return;
  }
  window.posterMap.dataArrived = performance.now();
  const files = data.meta.atlas.files;
  let loaded = 0;
  progress(0.6, `Loading ${files.length} thumbnail sheet${files.length === 1 ? "" : "s"}…`);
  try {
    state.atlases = await Promise.all(files.map((file) => loadImage(assetUrl(state.dataUrl, file, PAGE_URL)).then((img) => {
      loaded += 1;
      progress(0.6 + (0.4 * loaded) / files.length);
      return img;
    })));
  } catch (error) {
    showError(error.message);
    return;
  }
  setUp(data);
}

// -- geometry --------------------------------------------------------------------------
function resize() {
  const rect = canvas.getBoundingClientRect();
  state.dpr = window.devicePixelRatio || 1;
  state.width = Math.max(1, rect.width);
  state.height = Math.max(1, rect.height);
  canvas.width = Math.round(state.width * state.dpr);
  canvas.height = Math.round(state.height * state.dpr);
}

function worldCoords(xs, ys) {
  const wx = new Float64Array(xs.length);
  const wy = new Float64Array(ys.length);
  for (let i = 0; i < xs.length; i++) {
    wx[i] = ((xs[i] + 1) / 2) * state.side;
    wy[i] = ((1 - ys[i]) / 2) * state.side; // y up in the data, down on screen
  }
  return { wx, wy };
}

function setUp(data) {
  state.data = data;
  state.points = data.points;
  state.n = data.points.length;
  state.cell = data.meta.atlas.cell;
  if (data.meta.features && data.meta.features.random_weights) {
    $("notice").textContent = "This map was made with random network weights (a test run): "
      + "its positions and similarities say nothing about the posters.";
    $("notice").hidden = false;
  }
  resize(); // after the notice, which takes room from the canvas
  state.side = Math.min(state.width, state.height) * 0.9;
  const pts = state.points;
  state.layouts.tsne = worldCoords(pts.map((p) => p.x), pts.map((p) => p.y));
  state.slots.tsne = slotSize(state.n, state.side);
  if (data.meta.grid && pts.every((p) => Number.isFinite(p.gx))) {
    state.layouts.grid = worldCoords(pts.map((p) => p.gx), pts.map((p) => p.gy));
    state.slots.grid = (state.side / Math.max(data.meta.grid.side - 1, 1)) * 0.92;
    $("layouts").hidden = false;
  }
  useLayout("tsne");
  state.home = d3.zoomIdentity.translate((state.width - state.side) / 2, (state.height - state.side) / 2);
  const maxK = Math.max(4, (Math.min(state.width, state.height) * 0.85) / state.slot);
  zoom.scaleExtent([0.3, maxK]);
  d3.select(canvas).call(zoom).call(zoom.transform, state.home).on("dblclick.zoom", null);

  const [lo, hi] = yearExtent(pts);
  if (lo !== null) {
    for (const [id, value] of [["year-from", lo], ["year-to", hi]]) {
      $(id).min = String(lo);
      $(id).max = String(hi);
      $(id).value = String(value);
    }
  }
  state.searchIndex = buildSearchIndex(pts);
  state.byId = new Map(pts.map((p, i) => [p.id, i]));
  buildOverview();
  draw();
  $("loading").hidden = true;
  window.posterMap.firstDraw = performance.now();
  window.posterMap.ready = true;
  document.body.dataset.ready = "true";
  restoreFromHash(false);
}

function useLayout(name) {
  state.layout = name;
  state.wx = state.layouts[name].wx;
  state.wy = state.layouts[name].wy;
  state.slot = state.slots[name];
  state.tree = d3.quadtree().x((i) => state.wx[i]).y((i) => state.wy[i]).addAll(d3.range(state.n));
}

function posterBox(i, slot) {
  const p = state.points[i];
  const scale = slot / Math.max(p.aw, p.ah);
  const w = p.aw * scale;
  const h = p.ah * scale;
  return [state.wx[i] - w / 2, state.wy[i] - h / 2, w, h];
}

// Posters outside the year filter first, so that those inside it stay on top.
function drawOrder(indices) {
  if (state.yearFrom === -Infinity && state.yearTo === Infinity) return indices;
  const out = [];
  const kept = [];
  for (const i of indices) (dimmed(state.points[i]) ? out : kept).push(i);
  return out.concat(kept);
}

function dimmed(p) {
  return !inYearRange(p.year, state.yearFrom, state.yearTo);
}

function drawPoster(target, i, slot, image) {
  const p = state.points[i];
  const [x, y, w, h] = posterBox(i, slot);
  const faded = dimmed(p);
  if (faded) target.globalAlpha = 0.12;
  if (image) target.drawImage(image, x, y, w, h);
  else target.drawImage(state.atlases[p.atlas], p.ax, p.ay, p.aw, p.ah, x, y, w, h);
  if (state.decades) {
    target.globalAlpha = faded ? 0.06 : 0.45;
    target.fillStyle = decadeColour(p.year);
    target.fillRect(x, y, w, h);
  }
  target.globalAlpha = 1;
}

// A bitmap of the whole map, drawn once, so that zoomed-out frames cost one drawImage.
function buildOverview() {
  const span = state.side + 2 * state.slot;
  const size = Math.min(OVERVIEW_MAX, Math.ceil(span * state.dpr * 4));
  const scale = size / span;
  if (!state.overview) state.overview = document.createElement("canvas");
  const ov = state.overview;
  ov.width = size;
  ov.height = size;
  const o = ov.getContext("2d", { alpha: false });
  o.fillStyle = "#111";
  o.fillRect(0, 0, size, size);
  o.setTransform(scale, 0, 0, scale, state.slot * scale, state.slot * scale);
  for (const i of drawOrder(d3.range(state.n))) drawPoster(o, i, state.slot, null);
  state.overviewScale = scale;
  state.overviewOrigin = -state.slot;
}

let overviewTimer = 0;
function refreshOverviewSoon() {
  clearTimeout(overviewTimer);
  overviewTimer = setTimeout(() => {
    buildOverview();
    requestDraw();
  }, 60);
}

// -- drawing ---------------------------------------------------------------------------
function requestDraw() {
  if (state.frame) return;
  state.frame = requestAnimationFrame(() => {
    state.frame = 0;
    draw();
  });
}

function draw() {
  const started = performance.now();
  const t = state.transform;
  const { dpr } = state;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = "#111";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (!state.n) return;
  ctx.setTransform(dpr * t.k, 0, 0, dpr * t.k, dpr * t.x, dpr * t.y);
  let lod = state.animating ? "sprites" : levelOfDetail({
    k: t.k, dpr, overviewScale: state.overview ? state.overviewScale : 0, slot: state.slot, cell: state.cell,
  });
  let visible = null;
  if (lod !== "overview") {
    const view = visibleWorld(t, state.width, state.height, state.slot);
    visible = [];
    for (let i = 0; i < state.n; i++) {
      const x = state.wx[i];
      const y = state.wy[i];
      if (x >= view.x0 && x <= view.x1 && y >= view.y0 && y <= view.y1) visible.push(i);
    }
    // Too many posters in view to draw one by one at 30 fps: the overview, a little
    // enlarged, looks nearly the same at this zoom and costs one drawImage.
    if (visible.length > SPRITE_BUDGET && state.overview && !state.animating) lod = "overview";
  }
  if (lod === "overview") {
    const span = state.overview.width / state.overviewScale;
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(state.overview, state.overviewOrigin, state.overviewOrigin, span, span);
  } else {
    const big = lod === "images" && visible.length <= BIG_IMAGES_MAX;
    for (const i of drawOrder(visible)) drawPoster(ctx, i, state.slot, big ? bigImage(i) : null);
  }
  drawHighlights();
  state.drawStats.frames += 1;
  state.drawStats.lastMs = performance.now() - started;
  state.drawStats.lod = lod;
}

function bigImage(i) {
  const p = state.points[i];
  const cached = state.bigImages.get(p.id);
  if (cached) return cached.complete && cached.naturalWidth ? cached : null;
  if (state.loadingBig >= 8) return null;
  const image = new Image();
  state.loadingBig += 1;
  image.onload = () => {
    state.loadingBig -= 1;
    requestDraw();
  };
  image.onerror = () => {
    state.loadingBig -= 1;
  };
  const src = asset(p.thumb);
  if (src) image.src = src;
  state.bigImages.set(p.id, image);
  if (state.bigImages.size > 600) state.bigImages.delete(state.bigImages.keys().next().value);
  return null;
}

function drawHighlights() {
  const k = state.transform.k;
  const line = 2 / k;
  if (state.selected >= 0) {
    const p = state.points[state.selected];
    ctx.strokeStyle = "rgba(107, 140, 255, 0.9)";
    ctx.lineWidth = line;
    for (const id of p.neighbors || []) {
      const j = state.byId.get(id);
      if (j === undefined) continue;
      const [x, y, w, h] = posterBox(j, state.slot);
      ctx.strokeRect(x, y, w, h);
    }
    drawPoster(ctx, state.selected, state.slot, bigImage(state.selected)); // on top of any overlap
    const [x, y, w, h] = posterBox(state.selected, state.slot);
    ctx.strokeStyle = "#ffd24a";
    ctx.lineWidth = line * 2;
    ctx.strokeRect(x - line, y - line, w + 2 * line, h + 2 * line);
  }
  if (state.hover >= 0 && state.hover !== state.selected) {
    const [x, y, w, h] = posterBox(state.hover, state.slot);
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = line;
    ctx.strokeRect(x, y, w, h);
  }
}

// -- picking, selection, flying ---------------------------------------------------------
function pick(clientX, clientY) {
  const rect = canvas.getBoundingClientRect();
  const [x, y] = state.transform.invert([clientX - rect.left, clientY - rect.top]);
  // The poster drawn on top under the pointer: in the year filter beats dimmed, later beats earlier.
  const r = state.slot / 2;
  let best = -1;
  let bestRank = -1;
  state.tree.visit((node, x0, y0, x1, y1) => {
    if (!node.length) {
      for (let leaf = node; leaf; leaf = leaf.next) {
        const i = leaf.data;
        const [bx, by, bw, bh] = posterBox(i, state.slot);
        if (x >= bx && x <= bx + bw && y >= by && y <= by + bh) {
          const rank = (dimmed(state.points[i]) ? 0 : state.n) + i;
          if (rank > bestRank) {
            best = i;
            bestRank = rank;
          }
        }
      }
    }
    return x0 > x + r || x1 < x - r || y0 > y + r || y1 < y - r;
  });
  return best;
}

function flyTo(i, duration = 750) {
  const k = Math.min(zoom.scaleExtent()[1], Math.max(state.transform.k, FLY_SIZE / state.slot));
  const [covered, below] = panelCover();
  const c = centreOn(state.wx[i], state.wy[i], k, state.width - covered, state.height - below);
  const target = d3.zoomIdentity.translate(c.x, c.y).scale(c.k);
  const selection = d3.select(canvas);
  if (duration > 0) selection.transition().duration(duration).call(zoom.transform, target);
  else selection.call(zoom.transform, target);
}

// How much of the canvas the open panel hides: [from the right, from the bottom].
// It is a side panel on wide screens and a bottom sheet on narrow ones (see style.css).
function panelCover() {
  if ($("panel").hidden) return [0, 0];
  if (window.innerWidth > 640) return [$("panel").offsetWidth, 0];
  const top = $("panel").getBoundingClientRect().top;
  return [0, Math.max(0, canvas.getBoundingClientRect().bottom - top)];
}

function select(i, { fly = false, duration = 750 } = {}) {
  state.selected = i;
  if (i < 0) {
    $("panel").hidden = true;
    if (window.location.hash) history.replaceState(null, "", window.location.pathname + window.location.search);
    requestDraw();
    return;
  }
  const p = state.points[i];
  showPanel(p);
  history.replaceState(null, "", hashForPoster(p.id));
  if (fly) flyTo(i, duration);
  requestDraw();
}

function showPanel(p) {
  $("pairs").hidden = true;
  $("panel").hidden = false;
  const image = $("panel-image");
  const full = asset(p.image);
  if (full) {
    image.src = full;
    $("panel-full").href = full;
  } else {
    image.removeAttribute("src");
    $("panel-full").removeAttribute("href");
  }
  image.alt = `${p.title} poster`;
  $("panel-title").textContent = p.title;
  const info = [p.year ?? "year unknown", `version ${p.version}`];
  $("panel-info").textContent = info.join(" · ");
  const page = $("panel-page");
  const safePage = /^https?:\/\//i.test(p.page || "");
  page.hidden = !safePage;
  if (safePage) page.href = p.page;
  else page.removeAttribute("href");
  const similar = $("panel-similar");
  similar.replaceChildren();
  (p.neighbors || []).forEach((id, rank) => {
    const j = state.byId.get(id);
    if (j === undefined) return;
    similar.append(thumbButton(j, p.similarity ? p.similarity[rank] : null));
  });
}

function thumbButton(j, similarity) {
  const q = state.points[j];
  const button = document.createElement("button");
  button.type = "button";
  button.className = "similar";
  button.dataset.id = q.id;
  button.title = similarity == null ? `${q.title} (${q.year ?? "?"})`
    : `${q.title} (${q.year ?? "?"}) · similarity ${similarity.toFixed(3)}`;
  const img = document.createElement("img");
  const src = asset(q.thumb);
  if (src) img.src = src;
  img.alt = q.title;
  img.loading = "lazy";
  button.append(img);
  button.addEventListener("click", () => select(j, { fly: true }));
  return button;
}

function restoreFromHash(animate) {
  const id = posterFromHash(window.location.hash);
  if (!id || !state.byId) return;
  const i = state.byId.get(id);
  if (i !== undefined && i !== state.selected) select(i, { fly: true, duration: animate ? 750 : 0 });
}

// -- layouts ----------------------------------------------------------------------------
function switchLayout(name) {
  if (name === state.layout || !state.layouts[name] || state.animating) return;
  const from = state.layouts[state.layout];
  const to = state.layouts[name];
  const slotFrom = state.slot;
  const slotTo = state.slots[name];
  const wx = new Float64Array(state.n);
  const wy = new Float64Array(state.n);
  state.wx = wx;
  state.wy = wy;
  state.animating = true;
  for (const id of ["layout-tsne", "layout-grid"]) $(id).setAttribute("aria-pressed", String(id === `layout-${name}`));
  const timer = d3.timer((elapsed) => {
    const t = d3.easeCubicInOut(Math.min(1, elapsed / 800));
    for (let i = 0; i < state.n; i++) {
      wx[i] = from.wx[i] + (to.wx[i] - from.wx[i]) * t;
      wy[i] = from.wy[i] + (to.wy[i] - from.wy[i]) * t;
    }
    state.slot = slotFrom + (slotTo - slotFrom) * t;
    draw();
    if (t >= 1) {
      timer.stop();
      state.animating = false;
      useLayout(name);
      buildOverview();
      draw();
    }
  });
}

// -- search -----------------------------------------------------------------------------
function renderSuggestions() {
  const list = $("suggestions");
  list.replaceChildren();
  state.suggestions.forEach((i, rank) => {
    const p = state.points[i];
    const item = document.createElement("li");
    item.role = "option";
    item.dataset.id = p.id;
    item.textContent = p.year ? `${p.title} (${p.year})` : p.title;
    item.setAttribute("aria-selected", String(rank === state.active));
    item.addEventListener("mousedown", (event) => {
      event.preventDefault();
      choose(i);
    });
    list.append(item);
  });
  list.hidden = state.suggestions.length === 0;
}

function choose(i) {
  $("search").value = state.points[i].title;
  $("search").blur(); // hand the keyboard back to the map (Esc, +, -, 0)
  state.suggestions = [];
  renderSuggestions();
  select(i, { fly: true });
}

function wireSearch() {
  const input = $("search");
  input.addEventListener("input", () => {
    state.suggestions = searchTitles(state.searchIndex, input.value, 8);
    state.active = -1;
    renderSuggestions();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const n = state.suggestions.length;
      if (!n) return;
      const down = event.key === "ArrowDown";
      if (state.active < 0) state.active = down ? 0 : n - 1;
      else state.active = (state.active + (down ? 1 : n - 1)) % n;
      renderSuggestions();
    } else if (event.key === "Enter") {
      event.preventDefault();
      const matches = state.suggestions.length ? state.suggestions : searchTitles(state.searchIndex, input.value, 1);
      if (matches.length) choose(matches[Math.max(0, state.active)]);
    } else if (event.key === "Escape") {
      state.suggestions = [];
      renderSuggestions();
    }
    event.stopPropagation();
  });
  input.addEventListener("blur", () => {
    state.suggestions = [];
    renderSuggestions();
  });
}

// -- pairs ------------------------------------------------------------------------------
async function showPairs() {
  $("panel").hidden = true;
  $("pairs").hidden = false;
  if (state.pairs) return;
  const list = $("pairs-list");
  try {
    const doc = await fetchJson(assetUrl(state.dataUrl, state.data.meta.pairs.file, PAGE_URL), () => {});
    state.pairs = doc.pairs;
  } catch (error) {
    const item = document.createElement("li");
    item.textContent = error.message;
    list.replaceChildren(item);
    return;
  }
  list.replaceChildren();
  for (const pair of state.pairs) {
    const a = state.byId.get(pair.a);
    const b = state.byId.get(pair.b);
    if (a === undefined || b === undefined) continue;
    const item = document.createElement("li");
    const row = document.createElement("div");
    row.className = "pair";
    row.append(thumbButton(a, null), thumbButton(b, null));
    const caption = document.createElement("div");
    caption.className = "caption";
    caption.textContent = `${state.points[a].title} — ${state.points[b].title} · ${pair.similarity.toFixed(3)}`;
    item.append(row, caption);
    list.append(item);
  }
}

// -- events -----------------------------------------------------------------------------
function wire() {
  window.addEventListener("resize", () => {
    if (!state.n) return;
    resize();
    draw();
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!state.n || state.animating) return;
    const i = pick(event.clientX, event.clientY);
    const tip = $("tooltip");
    if (i !== state.hover) {
      state.hover = i;
      requestDraw();
    }
    if (i < 0) {
      tip.hidden = true;
      return;
    }
    const p = state.points[i];
    tip.textContent = p.year ? `${p.title} (${p.year})` : p.title;
    const rect = canvas.getBoundingClientRect();
    tip.style.left = `${Math.min(event.clientX - rect.left + 14, rect.width - 200)}px`;
    tip.style.top = `${event.clientY - rect.top + 14}px`;
    tip.hidden = false;
  });
  canvas.addEventListener("pointerleave", () => {
    $("tooltip").hidden = true;
    state.hover = -1;
    requestDraw();
  });
  canvas.addEventListener("click", (event) => {
    if (!state.n) return;
    select(pick(event.clientX, event.clientY));
  });
  $("panel-close").addEventListener("click", () => select(-1));
  $("pairs-close").addEventListener("click", () => { $("pairs").hidden = true; });
  $("show-pairs").addEventListener("click", () => { if (state.n) showPairs(); });
  $("layout-tsne").addEventListener("click", () => switchLayout("tsne"));
  $("layout-grid").addEventListener("click", () => switchLayout("grid"));
  const years = () => {
    const from = Number.parseInt($("year-from").value, 10);
    const to = Number.parseInt($("year-to").value, 10);
    state.yearFrom = Number.isFinite(from) ? from : -Infinity;
    state.yearTo = Number.isFinite(to) ? to : Infinity;
    refreshOverviewSoon();
    requestDraw();
  };
  $("year-from").addEventListener("input", years);
  $("year-to").addEventListener("input", years);
  $("decades").addEventListener("change", (event) => {
    state.decades = event.target.checked;
    refreshOverviewSoon();
    requestDraw();
  });
  window.addEventListener("hashchange", () => restoreFromHash(true));
  window.addEventListener("keydown", (event) => {
    if (!state.n || event.target instanceof HTMLInputElement) return;
    const selection = d3.select(canvas).transition().duration(250);
    if (event.key === "Escape") {
      if (!$("pairs").hidden) $("pairs").hidden = true;
      else select(-1);
    } else if (event.key === "+" || event.key === "=") zoom.scaleBy(selection, 1.5);
    else if (event.key === "-" || event.key === "_") zoom.scaleBy(selection, 1 / 1.5);
    else if (event.key === "0") selection.call(zoom.transform, state.home);
  });
  wireSearch();
}

// Hooks for tests and benchmarks: read-only views and the same actions a user has.
window.posterMap = {
  ready: false,
  state,
  draw,
  select: (id) => select(state.byId.get(id) ?? -1, { fly: true, duration: 0 }),
  screenPosition(id) {
    const i = state.byId.get(id);
    const [x, y] = state.transform.apply([state.wx[i], state.wy[i]]);
    const rect = canvas.getBoundingClientRect();
    return { x: rect.left + x, y: rect.top + y };
  },
  zoomTo(k, x, y) {
    d3.select(canvas).call(zoom.transform, d3.zoomIdentity.translate(x, y).scale(k));
  },
};

wire();
load();
