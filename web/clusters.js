// Clusters and selections: the "Clusters" panel, colour by cluster with outlines and numbers,
// the lasso, the selection's panel, its CSV export, and the permalink of a selection.
//
// A selection (a cluster, or the posters inside a lasso) is map.selection = {kind, members, mask,
// cluster | lasso}: members in index order, mask[i] = 1 for a member. The renderer dims the
// rest with its overlay tiles (composed within its frame budget), so a selection costs the same
// frames as the year filter, whatever the number of posters. Outlines, numbers and the lasso are
// vectors drawn over each frame: a few hundred points at most.
import {
  boxOf, centralOrder, clusterColour, grownOutline, insidePolygon, makeHash, mostCentral, parseHash, relativeToPage,
  LIMITS, simplifyPath, thinPath, toCsv, toData, toWorld,
} from "./logic.js";

// Outlines and numbers while a poster is drawn smaller than this, or the map at most twice its first size.
const OUTLINES_BELOW_PX = 48;
const OUTLINES_UP_TO_ZOOM = 2;
// Thumbnails listed in the selection's panel, a page at a time: 60 arriving at once took a frame of
// 80-130 ms at 100,000 posters (decoded and painted on the main thread); 20 stay under 50 ms.
const SHOWN_PAGE = 20;
const SHOWN_MAX = 200;

export function clusters(map, panels, pageUrl) {
  const { $, canvas } = map;
  let list = []; // meta.clusters, with members (indices) and world outlines
  let lassoMode = false;
  let drawing = null; // the lasso being drawn: [x, y, ...] in css px of the canvas
  let pending = null; // a lasso being resolved, a chunk per frame
  let before = null; // the view before flying to a cluster, for Esc

  function available() {
    return list.length > 0;
  }

  /** Before the canvas takes its size: the bar may wrap onto another line once these show. */
  function showControls() {
    const has = !!map.P.cluster && Array.isArray(map.meta.clusters) && map.meta.clusters.length > 0;
    $("show-clusters").hidden = !has;
    $("cluster-colours-label").hidden = !has;
  }

  function setUp() {
    const P = map.P;
    const meta = map.meta.clusters;
    list = [];
    map.clusterTints = []; // by cluster id, for the renderer's overlay tiles
    map.renderer.background.push(() => (pending ? [-Infinity, work] : null)); // before any composing
    if (P.cluster && Array.isArray(meta)) {
      const buckets = meta.map(() => []);
      const slot = new Map(meta.map((c, k) => [c.id, k]));
      for (let i = 0; i < map.n; i++) {
        const k = slot.get(P.cluster[i]);
        if (k !== undefined) buckets[k].push(i);
      }
      for (const c of meta) map.clusterTints[c.id] = clusterColour(c.id, map.palette);
      list = meta.map((c, k) => {
        const centres = [];
        for (const [x, y] of c.outline || []) centres.push(...world(x, y));
        const centroid = world(...(c.centroid || [0, 0]));
        // The outline joins the centres of the outermost posters: move it out by half a poster's diagonal.
        const outline = grownOutline(centres, centroid[0], centroid[1], 0.75 * map.layouts.tsne.slot);
        const members = Int32Array.from(buckets[k]);
        const face = panels.indexOf(c.face);
        return { id: c.id, size: members.length, years: c.years, face: face >= 0 ? face : members[0], members,
          outline, centroid };
      });
    }
  }

  const world = (x, y) => toWorld(x, y, map.side);

  // -- the clusters panel ---------------------------------------------------------------------
  function showList() {
    $("pairs").hidden = true;
    $("clusters").hidden = false;
    $("selection-view").hidden = true;
    $("cluster-list-view").hidden = false;
    const ol = $("clusters-list");
    if (ol.childElementCount) return;
    for (const c of list) {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "cluster";
      button.dataset.cluster = String(c.id);
      const img = document.createElement("img");
      const src = map.asset(map.thumbPath(c.face));
      if (src) img.src = src;
      img.alt = "";
      img.loading = "lazy";
      const text = document.createElement("span");
      text.textContent = `#${c.id} · ${c.size} posters${c.years ? ` · ${years(c.years)}` : ""}`;
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = map.clusterTints[c.id];
      button.append(img, swatch, text);
      button.addEventListener("click", () => selectCluster(c.id));
      item.append(button);
      ol.append(item);
    }
  }

  function years([a, b]) {
    return a === b ? `${a}` : `${a}–${b}`;
  }

  // -- selections -----------------------------------------------------------------------------
  // members are in index order; ordered() sorts them most central first when first needed (an
  // export, a test), as sorting 100,000 of them within a frame would stall it.
  function ordered(s) {
    if (!s.order) s.order = centralOrder(s.members, s.xs, s.ys);
    return s.order;
  }

  function setSelection(selection) {
    map.selection = selection;
    if (selection) {
      selection.mask = new Uint8Array(map.n);
      for (const i of selection.members) selection.mask[i] = 1;
    }
    if (map.renderer) map.renderer.overlaysChanged();
    writeHash();
    map.requestDraw();
  }

  function selectCluster(id, { fly = true, duration = 750 } = {}) {
    const c = list.find((entry) => entry.id === id);
    if (!c) return;
    if (!map.selection) before = map.transform;
    setSelection({ kind: "cluster", cluster: id, members: c.members, xs: map.P.x, ys: map.P.y });
    showSelection();
    if (fly && c.members.length) {
      const l = map.layouts[map.layout]; // the grid's places too
      const places = new Float64Array(2 * c.members.length);
      c.members.forEach((i, r) => {
        places[2 * r] = l.wx[i];
        places[2 * r + 1] = l.wy[i];
      });
      const [x0, y0, x1, y1] = boxOf(places);
      map.ui.fitBox(x0 - l.slot, y0 - l.slot, x1 + l.slot, y1 + l.slot, duration);
    }
  }

  /** The posters inside `points` (data coordinates of `layout`), a chunk of them per frame. */
  function selectLasso(layoutName, points) {
    const P = map.P;
    const xs = layoutName === "grid" ? P.gx : P.x;
    const ys = layoutName === "grid" ? P.gy : P.y;
    if (!xs) return;
    pending = { layout: layoutName, points, xs, ys, box: boxOf(points), next: 0, found: [] };
    $("selection-status").textContent = "Selecting…";
    map.requestDraw();
  }

  /** Goes on with a pending lasso until `stop`: a job of the renderer's, within its frame budget. */
  function work(stop) {
    if (pending.next >= map.n) return; // done: its selection is on the way (below)
    const { xs, ys, points, box, found } = pending;
    let i = pending.next;
    while (i < map.n) {
      const end = Math.min(map.n, i + 2048);
      for (const j of insidePolygon(xs, ys, points, i, end, box)) found.push(j);
      i = end;
      if (performance.now() > stop) break;
    }
    pending.next = i;
    if (i < map.n) return; // the renderer asks for another frame
    // The selection, its panel and its overlay tiles: a task of their own, after this frame.
    const done = pending;
    setTimeout(() => {
      if (pending !== done) return; // cleared, or another lasso, meanwhile
      pending = null;
      if (!map.selection) before = null;
      setSelection({ kind: "lasso", lasso: { layout: done.layout, points: done.points },
        members: Int32Array.from(done.found), xs: done.xs, ys: done.ys });
      showSelection();
    }, 0);
  }

  function showSelection() {
    const s = map.selection;
    const P = map.P;
    $("pairs").hidden = true;
    $("clusters").hidden = false;
    $("cluster-list-view").hidden = true;
    $("selection-view").hidden = false;
    $("selection-title").textContent = s.kind === "cluster" ? `Cluster #${s.cluster}` : "Lasso selection";
    let lo = Infinity;
    let hi = -Infinity;
    for (const i of s.members) {
      if (Number.isFinite(P.year[i])) {
        lo = Math.min(lo, P.year[i]);
        hi = Math.max(hi, P.year[i]);
      }
    }
    const count = `${s.members.length} poster${s.members.length === 1 ? "" : "s"}`;
    $("selection-count").textContent = lo <= hi ? `${count} · ${years([lo, hi])}` : count;
    $("selection-export").disabled = s.members.length === 0;
    $("selection-back").hidden = !available();
    $("selection-list").replaceChildren();
    s.central = mostCentral(s.members, s.xs, s.ys, SHOWN_MAX);
    showMore();
  }

  /** The next page of the selection's most central posters. */
  function showMore() {
    const s = map.selection;
    const grid = $("selection-list");
    const from = grid.childElementCount;
    for (const i of s.central.slice(from, from + SHOWN_PAGE)) grid.append(panels.thumbButton(i, null));
    const shown = grid.childElementCount;
    $("selection-more").hidden = shown >= s.central.length;
    $("selection-status").textContent = s.members.length > shown
      ? `The ${shown} most central are shown; Export has all ${s.members.length}.` : "";
  }

  function clear({ flyBack = true } = {}) {
    pending = null;
    const wasCluster = map.selection?.kind === "cluster";
    setSelection(null);
    if (flyBack && wasCluster && before) map.ui.zoomTo(before, 500);
    before = null;
  }

  function exportCsv() {
    const s = map.selection;
    if (!s) return;
    const P = map.P;
    const rows = Array.from(ordered(s), (i) => {
      const url = map.asset(map.imagePath(i));
      const year = Number.isFinite(P.year[i]) ? P.year[i] : "";
      return [P.id[i], P.title[i], year, url ? relativeToPage(url, pageUrl) : ""];
    });
    const blob = new Blob([toCsv(["poster_id", "title", "year", "image"], rows)], { type: "text/csv" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = s.kind === "cluster" ? `cluster-${s.cluster}.csv` : `selection-${s.members.length}.csv`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 0);
  }

  // -- the permalink --------------------------------------------------------------------------
  function writeHash() {
    const s = map.selection;
    const hash = makeHash({
      poster: map.selected >= 0 ? map.P.id[map.selected] : null,
      cluster: s?.kind === "cluster" ? s.cluster : null,
      lasso: s?.kind === "lasso" ? s.lasso : null,
    });
    if (hash !== window.location.hash && (hash || window.location.hash)) {
      history.replaceState(null, "", hash || window.location.pathname + window.location.search);
    }
  }

  /** The selection the hash names, if it differs from the one shown. */
  function restore(animate) {
    const { cluster, lasso } = parseHash(window.location.hash);
    const s = map.selection;
    if (cluster !== null && available()) {
      if (s?.kind !== "cluster" || s.cluster !== cluster) selectCluster(cluster, { duration: animate ? 750 : 0 });
    } else if (lasso && map.layouts[lasso.layout]) {
      const same = s?.kind === "lasso" && s.lasso.points.join() === lasso.points.join();
      if (!same) selectLasso(lasso.layout, lasso.points);
    } else if (s) {
      clear({ flyBack: false });
    }
  }

  // -- the lasso ------------------------------------------------------------------------------
  function wantsLasso(event) {
    return lassoMode || event.shiftKey;
  }

  function setLassoMode(on) {
    lassoMode = on;
    $("lasso").setAttribute("aria-pressed", String(on));
    canvas.classList.toggle("lassoing", on);
  }

  function point(event) {
    const rect = canvas.getBoundingClientRect();
    return [event.clientX - rect.left, event.clientY - rect.top];
  }

  function wire() {
    $("show-clusters").addEventListener("click", () => {
      if (!map.n) return;
      if (!$("clusters").hidden && !$("cluster-list-view").hidden) $("clusters").hidden = true;
      else showList();
    });
    $("clusters-close").addEventListener("click", () => {
      $("clusters").hidden = true;
    });
    $("selection-back").addEventListener("click", () => {
      clear();
      showList();
    });
    $("selection-clear").addEventListener("click", () => {
      clear();
      $("clusters").hidden = true;
    });
    $("selection-export").addEventListener("click", exportCsv);
    $("selection-more").addEventListener("click", () => {
      if (map.selection) showMore();
    });
    $("cluster-colours").addEventListener("change", (event) => {
      map.clusterColours = event.target.checked;
      if (map.clusterColours && map.decades) {
        map.decades = false;
        $("decades").checked = false;
        $("legend").hidden = true;
      }
      if (map.renderer) map.renderer.overlaysChanged();
    });
    $("decades").addEventListener("change", (event) => {
      if (event.target.checked && map.clusterColours) {
        map.clusterColours = false;
        $("cluster-colours").checked = false;
        if (map.renderer) map.renderer.overlaysChanged();
      }
    });
    $("lasso").addEventListener("click", () => setLassoMode(!lassoMode));
    canvas.addEventListener("pointerdown", (event) => {
      map.suppressClick = false;
      if (!map.n || map.fade || event.button !== 0 || !wantsLasso(event)) return;
      event.preventDefault();
      canvas.setPointerCapture(event.pointerId);
      drawing = point(event);
      map.ui.hideTooltip();
      map.requestDraw();
    });
    canvas.addEventListener("pointermove", (event) => {
      if (!drawing) return;
      drawing.push(...point(event));
      map.requestDraw();
    });
    const finish = (event) => {
      if (!drawing) return;
      const path = thinPath(simplifyPath(drawing, 3), LIMITS.lasso); // a permalink can hold it
      drawing = null;
      map.suppressClick = true; // the click that ends a drag selects no poster
      setLassoMode(false);
      if (event.type === "pointercancel" || path.length < 6) {
        map.requestDraw();
        return;
      }
      const t = map.transform;
      const points = [];
      for (let i = 0; i < path.length; i += 2) {
        points.push(...toData((path[i] - t.x) / t.k, (path[i + 1] - t.y) / t.k, map.side).map((v) => +v.toFixed(4)));
      }
      selectLasso(map.layout, points);
    };
    canvas.addEventListener("pointerup", finish);
    canvas.addEventListener("pointercancel", finish);
  }

  // -- drawn over each frame ------------------------------------------------------------------
  /** Trace the path [x0, y0, x1, y1, ...], closed into a polygon unless `close` is false. */
  function trace(ctx, points, close = true) {
    ctx.beginPath();
    for (let i = 0; i < points.length; i += 2) {
      if (i === 0) ctx.moveTo(points[i], points[i + 1]);
      else ctx.lineTo(points[i], points[i + 1]);
    }
    if (close) ctx.closePath();
  }

  function draw(ctx) {
    const t = map.transform;
    const s = map.selection;
    const tsne = map.layout === "tsne" && !map.fade;
    ctx.setTransform(map.dpr * t.k, 0, 0, map.dpr * t.k, map.dpr * t.x, map.dpr * t.y);
    const line = 1 / t.k;
    const small = map.layouts.tsne.slot * t.k < OUTLINES_BELOW_PX || t.k <= OUTLINES_UP_TO_ZOOM;
    if (tsne && map.clusterColours && small) {
      ctx.lineWidth = 1.5 * line;
      for (const c of list) {
        if (c.outline.length < 6) continue;
        ctx.strokeStyle = map.clusterTints[c.id];
        trace(ctx, c.outline);
        ctx.stroke();
      }
      ctx.setTransform(map.dpr, 0, 0, map.dpr, 0, 0);
      ctx.font = "11px system-ui, sans-serif";
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      for (const c of list) {
        const x = t.x + t.k * c.centroid[0];
        const y = t.y + t.k * c.centroid[1];
        if (x < -20 || y < -20 || x > map.width + 20 || y > map.height + 20) continue;
        const label = String(c.id);
        const w = ctx.measureText(label).width + 8;
        ctx.fillStyle = "rgba(0, 0, 0, 0.75)";
        ctx.fillRect(x - w / 2, y - 8, w, 16);
        ctx.fillStyle = "#fff";
        ctx.fillText(label, x, y);
      }
      ctx.setTransform(map.dpr * t.k, 0, 0, map.dpr * t.k, map.dpr * t.x, map.dpr * t.y);
    }
    if (s && s.kind === "cluster" && tsne) {
      const c = list.find((entry) => entry.id === s.cluster);
      if (c && c.outline.length >= 6) {
        ctx.strokeStyle = "#fff";
        ctx.lineWidth = 2 * line;
        trace(ctx, c.outline);
        ctx.stroke();
      }
    }
    if (s && s.kind === "lasso" && s.lasso.layout === map.layout && !map.fade) {
      const points = [];
      const p = s.lasso.points;
      for (let i = 0; i < p.length; i += 2) points.push(...world(p[i], p[i + 1]));
      ctx.strokeStyle = "#ffd24a";
      ctx.lineWidth = 1.5 * line;
      ctx.setLineDash([6 * line, 4 * line]);
      trace(ctx, points);
      ctx.stroke();
      ctx.setLineDash([]);
    }
    ctx.setTransform(map.dpr, 0, 0, map.dpr, 0, 0);
    if (drawing && drawing.length >= 4) {
      ctx.strokeStyle = "#ffd24a";
      ctx.lineWidth = 2;
      trace(ctx, drawing, false);
      ctx.stroke();
    }
    ctx.setTransform(1, 0, 0, 1, 0, 0);
  }

  /** Esc: the lasso being drawn, then the selection (the map comes back), then the panel. */
  function escape() {
    if (drawing || lassoMode) {
      drawing = null;
      setLassoMode(false);
      map.requestDraw();
      return true;
    }
    if (map.selection || pending) {
      clear();
      if (available() && !$("clusters").hidden) showList();
      else $("clusters").hidden = true;
      return true;
    }
    if (!$("clusters").hidden) {
      $("clusters").hidden = true;
      return true;
    }
    return false;
  }

  return {
    setUp, showControls, wire, draw, escape, restore, writeHash, wantsLasso, selectCluster,
    busy: () => !!pending || !!drawing,
    selection: () => (map.selection ? Array.from(ordered(map.selection), (i) => map.P.id[i]) : null),
  };
}
