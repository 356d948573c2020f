// Clusters and selections: the "Clusters" panel (regions, each opening to its clusters), colour by
// cluster with outlines and names (regions at the first view, clusters as you zoom in), the lasso,
// the selection's panel with its years against the map's, its CSV export, and its permalink.
//
// A selection (a region, a cluster, or the posters inside a lasso) is look.selection = {kind, members,
// mask, xs, ys, region | cluster | lasso} (look.js): members in index order, mask[i] = 1 for a member, xs and
// ys the places (world units) of the layout it was made on, for its centre and its export. It
// announces views to show ("fit", "view") and a lasso begun ("lasso"): see the events in app.js. The renderer dims the
// rest with its overlay tiles (composed within its frame budget), so a selection costs the same
// frames as the year filter, whatever the number of posters. Outlines, numbers and the lasso are
// vectors drawn over each frame: a few hundred points at most.
import { toData, toWorld } from "./geometry.js";
import {
  boxOf, centralOrder, clusterColour, grownOutline, insidePolygon, mostCentral, regionName,
  centreOf, csvLines, exportHeader, extentOf, folderPaths, LIMITS, selectionRows, simplifyPath, thinPath, yearBins, yearCounts,
} from "./logic.js";

// Outlines and names while a poster is drawn smaller than this, or the map at most twice its first size.
// Below REGIONS_BELOW_ZOOM a map with regions (fewer than its clusters) outlines its regions, from there
// its clusters: countries, then towns.
const OUTLINES_BELOW_PX = 48;
const OUTLINES_UP_TO_ZOOM = 2;
const REGIONS_BELOW_ZOOM = 1.5;
const REGION_OUTLINE = "rgba(255, 255, 255, 0.85)";
// Thumbnails listed in the selection's panel, a page at a time: 60 arriving at once took a frame of
// 80-130 ms at 100,000 posters (decoded and painted on the main thread); 20 stay under 50 ms.
const SHOWN_PAGE = 20;
const SHOWN_MAX = 200;
const EXPORT_SLICE_MS = 30; // an export's rows made per task: the page answers between two

export function clusters(map, pageUrl) {
  const { $, canvas } = map;
  let list = []; // meta.clusters, with members (indices) and world outlines
  let regions = []; // meta.regions, likewise, with their clusters' entries
  let lassoMode = false;
  let drawing = null; // the lasso being drawn: [x, y, ...] in css px of the canvas
  let pending = null; // a lasso being resolved, a chunk per frame
  let before = null; // the view before flying to a cluster, for Esc
  const jobs = []; // the selection panel's parts still to come, [selection, job] (see later())
  let exporting = null; // the selection an export is being made of

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
    yearCounts(P.year); // the map's own year counts, once, before any selection's histogram asks for them
    const meta = map.meta.clusters;
    list = [];
    regions = [];
    map.clusterTints = []; // by cluster id, for the renderer's overlay tiles
    if (P.cluster && Array.isArray(meta)) {
      const clusterCounts = countGroups(P.cluster);
      for (const c of meta) map.clusterTints[c.id] = clusterColour(c.id, map.palette);
      list = meta.map((c) => ({ ...shape(c, "cluster", clusterCounts), region: Number.isInteger(c.region) ? c.region
        : null }));
      const byId = new Map(list.map((c) => [c.id, c]));
      if (P.region && Array.isArray(map.meta.regions)) {
        const regionCounts = countGroups(P.region);
        regions = map.meta.regions.map((r) => ({ ...shape(r, "region", regionCounts), name: regionName(r.id),
          clusters: (r.clusters || []).map((id) => byId.get(id)).filter(Boolean) }));
      }
    }
  }

  /** How many posters each number of `column` (P.cluster or P.region) has, and the first of them. */
  function countGroups(column) {
    const count = new Int32Array(LIMITS.clusters);
    const first = new Int32Array(LIMITS.clusters).fill(-1);
    for (let i = 0; i < map.n; i++) {
      const g = column[i];
      if (g < 0) continue;
      if (count[g]++ === 0) first[g] = i;
    }
    return { count, first };
  }

  /**
   * A cluster or region of meta (`column`: which of P's columns numbers its posters), with its size and its
   * outline and centre in world units. Its members are found when it is chosen (membersOf), not kept: at
   * 1,000,000 posters the clusters' and the regions' lists held 7 MB.
   */
  function shape(c, column, { count, first }) {
    const centres = [];
    for (const [x, y] of c.outline || []) centres.push(...world(x, y));
    const centroid = world(...(c.centroid || [0, 0]));
    // The outline joins the centres of the outermost posters: move it out by half a poster's diagonal.
    const outline = grownOutline(centres, centroid[0], centroid[1], 0.75 * map.layouts.tsne.slot);
    const face = map.indexOf(c.face);
    const firstMember = first[c.id] ?? -1; // a number no poster has (validateMap bounds the posters')
    return { id: c.id, column, size: count[c.id] ?? 0, years: c.years,
      face: face >= 0 ? face : firstMember >= 0 ? firstMember : undefined, outline, centroid };
  }

  /** The posters of a cluster or region (as shape made it), in index order. */
  function membersOf(group) {
    const column = map.P[group.column];
    const out = new Int32Array(group.size);
    let r = 0;
    for (let i = 0; r < out.length && i < column.length; i++) if (column[i] === group.id) out[r++] = i;
    return r === out.length ? out : out.subarray(0, r);
  }

  const regionOf = (c) => regions.find((r) => r.id === c.region) || null;

  const world = (x, y) => toWorld(x, y, map.side);

  // -- the clusters panel ---------------------------------------------------------------------
  function showList() {
    $("pairs").hidden = true;
    $("clusters").hidden = false;
    $("selection-view").hidden = true;
    $("cluster-list-view").hidden = false;
    const ol = $("clusters-list");
    if (ol.childElementCount) return;
    $("clusters-made").textContent = made();
    if (!regions.length) {
      $("clusters-hint").textContent = "Groups of look-alike posters, largest first. Click one to go to it.";
      for (const c of list) ol.append(clusterItem(c));
      return;
    }
    $("clusters-hint").textContent = `${regions.length} regions of neighbouring clusters, largest first. Click one `
      + "to go to it; open it to see its clusters.";
    for (const r of regions) {
      const item = document.createElement("li");
      item.className = "region";
      const button = entryButton(r, `Region ${r.name}`, null);
      button.dataset.region = String(r.id);
      button.addEventListener("click", () => selectRegion(r.id));
      const open = document.createElement("button");
      open.type = "button";
      open.className = "open";
      open.setAttribute("aria-expanded", "false");
      open.textContent = `${r.clusters.length} cluster${r.clusters.length === 1 ? "" : "s"} ▸`;
      const inner = document.createElement("ol");
      inner.className = "region-clusters";
      inner.hidden = true;
      open.addEventListener("click", () => {
        if (!inner.childElementCount) for (const c of r.clusters) inner.append(clusterItem(c));
        inner.hidden = !inner.hidden;
        open.setAttribute("aria-expanded", String(!inner.hidden));
        open.textContent = `${r.clusters.length} cluster${r.clusters.length === 1 ? "" : "s"} ${inner.hidden ? "▸" : "▾"}`;
      });
      item.append(button, open, inner);
      ol.append(item);
    }
  }

  /** How the clusters were made, in a line: the seed of the map, the setting and the counts. */
  function made() {
    const c = map.meta.clustering;
    if (!c) return "";
    const parts = [`Found by HDBSCAN on the t-SNE map${Number.isInteger(c.seed) ? ` (seed ${c.seed})` : ""}`];
    if (c.chosen && Number.isInteger(c.chosen.scale)) {
      parts.push(`density over ${c.chosen.scale} neighbours, valleys at most ${c.chosen.valley} of the density `
        + "on each side (the setting the others agreed with most)");
    }
    parts.push(`at least ${c.min_cluster_size} posters a cluster; ${c.unclustered} posters in none`);
    const islands = Array.isArray(c.left_out) ? c.left_out.filter((island) => Number.isInteger(island?.size)) : [];
    const apart = islands.reduce((sum, island) => sum + island.size, 0);
    if (apart) {
      parts.push(`${apart} of them on ${islands.length === 1 ? "an island" : "islands"} whose posters look alike no `
        + "more than chance says (no cluster)");
    }
    return `${parts.join("; ")}.`;
  }

  function entryButton(entry, name, tint) {
    const button = document.createElement("button");
    button.type = "button";
    const img = document.createElement("img");
    const src = map.asset(map.thumbPath(entry.face));
    if (src) img.src = src;
    img.alt = "";
    img.loading = "lazy";
    const text = document.createElement("span");
    text.textContent = `${name} · ${entry.size} posters${entry.years ? ` · ${years(entry.years)}` : ""}`;
    button.append(img);
    if (tint) {
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = tint;
      button.append(swatch);
    }
    button.append(text);
    return button;
  }

  function clusterItem(c) {
    const item = document.createElement("li");
    const button = entryButton(c, `#${c.id}`, map.clusterTints[c.id]);
    button.className = "cluster";
    button.dataset.cluster = String(c.id);
    button.addEventListener("click", () => selectCluster(c.id));
    item.append(button);
    return item;
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
    map.look.setSelection(selection && { ...selection, n: map.n }); // "look": app.js writes the permalink
    map.requestDraw();
  }

  function selectCluster(id, { fly = true, duration = 750 } = {}) {
    const c = list.find((entry) => entry.id === id);
    if (!c) return false;
    selectGroup({ kind: "cluster", cluster: id }, c, fly, duration);
    return true;
  }

  function selectRegion(id, { fly = true, duration = 750 } = {}) {
    const r = regions.find((entry) => entry.id === id);
    if (!r) return false;
    selectGroup({ kind: "region", region: id }, r, fly, duration);
    return true;
  }

  function selectGroup(what, group, fly, duration) {
    if (!map.look.selection) before = map.transform;
    const { wx, wy } = map.layouts.tsne; // a region's or cluster's places are its t-SNE ones, whatever is shown
    const members = membersOf(group);
    setSelection({ ...what, members, xs: wx, ys: wy });
    showSelection();
    if (fly) fitMembers(map.layout, members, duration); // the grid's places too
  }

  /** Show `members` whole on `layout` in the part of the map the panels leave ("fit"); `gently`: move only
   * as much as that takes. */
  function fitMembers(layoutName, members, duration, gently = false) {
    const l = map.layouts[layoutName];
    if (!l || !members.length) return;
    const [x0, x1] = extentOf(l.wx, members); // not a copy of 300,000 places: one frame less
    const [y0, y1] = extentOf(l.wy, members);
    if (!(x0 <= x1 && y0 <= y1)) return; // no member has a place on this layout
    map.events.call("fit", null, [x0 - l.slot, y0 - l.slot, x1 + l.slot, y1 + l.slot], duration, gently);
  }

  /** The posters inside `points` (data coordinates of `layout`), a chunk of them per frame. */
  function selectLasso(layoutName, points) {
    const l = map.layouts[layoutName];
    if (!l) return;
    const inWorld = []; // the layout's places are in world units (app.js makeLayout)
    for (let i = 0; i + 1 < points.length; i += 2) inWorld.push(...world(points[i], points[i + 1]));
    pending = { layout: layoutName, points, xs: l.wx, ys: l.wy, inWorld, box: boxOf(inWorld), next: 0, found: [] };
    $("selection-status").textContent = "Selecting…";
    map.requestDraw();
  }

  /** Goes on with a pending lasso until `stop`: a job of the renderer's, within its frame budget. */
  function work(stop) {
    if (pending.next >= map.n) return; // done: its selection is on the way (below)
    const { xs, ys, inWorld, box, found } = pending;
    let i = pending.next;
    while (i < map.n) {
      const end = Math.min(map.n, i + 2048);
      for (const j of insidePolygon(xs, ys, inWorld, i, end, box)) found.push(j);
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
      if (!done.found.length) { // nothing inside: the selection (if any) stays as it was, and the page says so
        $("selection-status").textContent = "";
        map.say("No poster inside the lasso: nothing selected");
        return;
      }
      if (!map.look.selection) before = null;
      setSelection({ kind: "lasso", lasso: { layout: done.layout, points: done.points },
        members: Int32Array.from(done.found), xs: done.xs, ys: done.ys });
      showSelection();
      // The selection's posters out from under the panel that just opened (a lasso by the right edge).
      if (done.layout === (map.fade ? map.fade.to : map.layout)) fitMembers(done.layout, done.found, 400, true);
    }, 0);
  }

  function showSelection() {
    const s = map.look.selection;
    const P = map.P;
    $("pairs").hidden = true;
    $("clusters").hidden = false;
    $("cluster-list-view").hidden = true;
    $("selection-view").hidden = false;
    $("selection-title").textContent = title(s);
    const [lo, hi] = extentOf(P.year, s.members); // a poster with no year (NaN) is left out
    const count = `${s.members.length} poster${s.members.length === 1 ? "" : "s"}`;
    $("selection-count").textContent = lo <= hi ? `${count} · ${years([lo, hi])}` : count;
    $("selection-export").disabled = s.members.length === 0;
    $("selection-back").hidden = !available();
    $("selection-years").hidden = true;
    $("selection-list").replaceChildren();
    $("selection-more").hidden = true;
    $("selection-status").textContent = "";
    // The histogram and the thumbnails, each a task of its own after this one: at 100,000 posters a
    // region's took 10-25 ms each, which in the click's own task made a frame of 66 ms.
    later(s, () => showYears(s));
    later(s, () => {
      s.central = mostCentral(s.members, s.xs, s.ys, SHOWN_MAX);
      showMore();
    });
  }

  /**
   * Run `job` in a task of its own once a frame has been drawn, one job a frame, unless the selection has
   * changed meanwhile. Tasks queued at once all ran before the next frame: at 1,000,000 posters the click,
   * the histogram and the central posters (about 45 ms together) made a frame of 50-83 ms.
   */
  function later(s, job) {
    jobs.push([s, job]);
    if (jobs.length === 1) afterFrame(nextJob);
  }

  function nextJob() {
    const [s, job] = jobs[0];
    try {
      if (map.look.selection === s) job();
    } finally { // a job that fails does not hold up the others
      jobs.shift();
      if (jobs.length) afterFrame(nextJob);
      else map.requestDraw(); // so that settled() is asked again
    }
  }

  /** `fn` in a task after the next frame is drawn: a frame callback runs just before it is. */
  function afterFrame(fn) {
    requestAnimationFrame(() => setTimeout(fn, 0));
  }

  function title(s) {
    if (s.kind === "region") return `Region ${regionName(s.region)}`;
    if (s.kind !== "cluster") return "Lasso selection";
    const r = regionOf(list.find((c) => c.id === s.cluster) || {});
    return `Cluster #${s.cluster}${r ? ` · region ${r.name}` : ""}`;
  }

  /** The selection's years against the whole map's: d3 bars (its share a bin) and a step line (the map's). */
  function showYears(s) {
    const figure = $("selection-years");
    const got = yearBins(map.P.year, s.members);
    figure.hidden = !got || got.dated === 0;
    if (figure.hidden) return;
    const { d3 } = map;
    const width = 300;
    const height = 90;
    const pad = { left: 4, right: 4, top: 6, bottom: 16 };
    const svg = d3.select($("selection-years-chart")).attr("viewBox", `0 0 ${width} ${height}`);
    svg.selectAll("*").remove();
    const x = d3.scaleBand().domain(got.bins.map((b) => b.from)).range([pad.left, width - pad.right]).padding(0.1);
    const top = d3.max(got.bins, (b) => Math.max(b.share, b.mapShare)) || 1;
    const y = d3.scaleLinear().domain([0, top]).range([height - pad.bottom, pad.top]);
    const label = (b) => (b.from === b.to ? `${b.from}` : `${b.from}–${b.to}`);
    svg.append("g").selectAll("rect").data(got.bins).join("rect")
      .attr("class", "bar").attr("x", (b) => x(b.from)).attr("width", x.bandwidth())
      .attr("y", (b) => y(b.share)).attr("height", (b) => y(0) - y(b.share))
      .attr("data-from", (b) => b.from).attr("data-to", (b) => b.to)
      .on("click", (event, b) => map.look.setYears(b.from, b.to))
      .append("title").text((b) => `${label(b)}: ${b.count} poster${b.count === 1 ? "" : "s"} `
        + `(${Math.round(100 * b.share)}%; the map: ${Math.round(100 * b.mapShare)}%)`);
    const step = [];
    for (const b of got.bins) step.push([x(b.from), y(b.mapShare)], [x(b.from) + x.step(), y(b.mapShare)]);
    svg.append("path").attr("class", "map-share").attr("d", d3.line()(step));
    const first = got.bins[0];
    const last = got.bins[got.bins.length - 1];
    svg.append("text").attr("x", pad.left).attr("y", height - 3).text(first.from);
    svg.append("text").attr("x", width - pad.right).attr("y", height - 3).attr("text-anchor", "end").text(last.to);
  }

  /** The next page of the selection's most central posters. */
  function showMore() {
    const s = map.look.selection;
    const grid = $("selection-list");
    const from = grid.childElementCount;
    for (const i of s.central.slice(from, from + SHOWN_PAGE)) grid.append(map.thumbButton(i, null));
    $("selection-more").hidden = grid.childElementCount >= s.central.length;
    $("selection-status").textContent = shownNote(s);
  }

  /** What the selection's status line says once its thumbnails are shown. */
  function shownNote(s) {
    const shown = $("selection-list").childElementCount;
    return s.members.length > shown ? `The ${shown} most central are shown; Export has all ${s.members.length}.` : "";
  }

  function clear({ flyBack = true } = {}) {
    pending = null;
    const wasGroup = map.look.selection?.kind === "cluster" || map.look.selection?.kind === "region";
    setSelection(null);
    if (flyBack && wasGroup && before) map.events.call("view", null, before, 500);
    before = null;
  }

  /**
   * The selection as a CSV file, most central first. Its rows are made a slice per task, with the page
   * answering between them: 300,000 posters in one task froze the page for 7 s. A new selection meanwhile
   * stops it.
   */
  function exportCsv() {
    const s = map.look.selection;
    if (!s || exporting) return;
    exporting = s;
    const button = $("selection-export");
    const status = $("selection-status");
    button.disabled = true;
    status.textContent = "Exporting…";
    const inFolder = folderPaths(map.dataUrl, pageUrl);
    let refused = false;
    let [last, lastId] = [-1, null]; // a row's id, decoded once for its image and its page
    const idOf = (i) => {
      if (i !== last) [last, lastId] = [i, map.P.id[i]];
      return lastId;
    };
    const image = (i) => {
      const rel = map.imagePath(i, idOf(i));
      const path = inFolder(rel);
      if (path !== null) return path;
      if (!refused) map.asset(rel); // its notice, once
      refused = true;
      return "";
    };
    const page = (i) => map.pageUrl(i, idOf(i));
    const place = (i) => toData(s.xs[i], s.ys[i], map.side); // the selection's places are in world units
    // A Blob a slice at a time: each slice's text is encoded in its own task, not all at the end (70 ms).
    let blob = new Blob([csvLines([exportHeader(map.P.categories)])], { type: "text/csv" });
    let order = null;
    let centre = null;
    let titles = null; // the order's titles (format 3 reads them from the titles files of its tiles)
    let next = 0;
    const finish = () => {
      exporting = null;
      const now = map.look.selection; // s, or what came meanwhile: its panel is as showSelection made it
      button.disabled = !now || now.members.length === 0;
      if (now === s) status.textContent = s.central ? shownNote(s) : ""; // as showMore says (or will)
      else if (status.textContent.startsWith("Exporting")) status.textContent = ""; // a new selection's own stays
      if (!jobs.length) map.requestDraw(); // so that settled() is asked again
    };
    const slice = () => {
      if (map.look.selection !== s) {
        finish();
        return;
      }
      const stop = performance.now() + EXPORT_SLICE_MS;
      if (!order) { // the order, in a task of its own, then its titles
        order = ordered(s);
        centre = toData(...centreOf(order, s.xs, s.ys), map.side);
        map.titlesOf(order).then((read) => {
          titles = read;
          setTimeout(slice, 0);
        });
        return;
      }
      const parts = [blob];
      while (next < order.length && performance.now() < stop) {
        const to = Math.min(order.length, next + 1000);
        const from = next;
        parts.push(csvLines(selectionRows(order.subarray(from, to), map.P, place, image, page, centre,
          (i, r) => titles[from + r])));
        next = to;
      }
      blob = new Blob(parts, { type: "text/csv" });
      if (next < order.length) {
        status.textContent = `Exporting… ${Math.floor((100 * next) / order.length)}%`;
        setTimeout(slice, 0);
        return;
      }
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = s.kind === "cluster" ? `cluster-${s.cluster}.csv`
        : s.kind === "region" ? `region-${regionName(s.region)}.csv` : `selection-${s.members.length}.csv`;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 0);
      finish();
    };
    setTimeout(slice, 0);
  }

  // -- the permalink (app.js writes it) -----------------------------------------------------------
  /** The lasso being resolved into a selection, or null: the permalink names it already. */
  function pendingLasso() {
    return pending ? { layout: pending.layout, points: pending.points } : null;
  }

  /** "hash": the selection a link names, if it differs from the one shown; what it names that this map
   * lacks goes onto `missing`. */
  function restore(wanted, animate, missing) {
    const { cluster, region, lasso } = wanted;
    const s = map.look.selection;
    const duration = animate ? 750 : 0;
    if (cluster !== null) {
      if ((s?.kind === "cluster" && s.cluster === cluster) || selectCluster(cluster, { duration })) return;
      missing.push(`cluster ${cluster}`);
    } else if (region !== null) {
      if ((s?.kind === "region" && s.region === region) || selectRegion(region, { duration })) return;
      missing.push(`region ${regionName(region)}`);
    } else if (lasso && map.layouts[lasso.layout]) {
      const same = s?.kind === "lasso" && s.lasso.points.join() === lasso.points.join();
      if (!same) selectLasso(lasso.layout, lasso.points);
      return;
    }
    if (s || pending) clear({ flyBack: false });
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
    // × clears what its panel shows: a selection goes with its panel (a phone has no Esc).
    $("clusters-close").addEventListener("click", () => {
      if (!$("selection-view").hidden && (map.look.selection || pending)) clear();
      $("clusters").hidden = true;
    });
    // Always in the toolbar while something is selected, whatever panel is open or closed.
    $("clear-selection").addEventListener("click", () => {
      clear();
      if (!$("selection-view").hidden) $("clusters").hidden = true;
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
      if (map.look.selection) showMore();
    });
    $("cluster-colours").addEventListener("change", (event) => {
      map.look.setColouring(event.target.checked ? "clusters" : null);
    });
    $("lasso").addEventListener("click", () => setLassoMode(!lassoMode));
    canvas.addEventListener("pointerdown", (event) => {
      if (!map.n || map.fade || event.button !== 0 || !wantsLasso(event)) return;
      event.preventDefault();
      canvas.setPointerCapture(event.pointerId);
      drawing = point(event);
      map.events.call("lasso", null, "start");
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
      map.events.call("lasso", null, "end"); // the click that ends the drag picks no poster
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
    const s = map.look.selection;
    const tsne = map.layout === "tsne" && !map.fade;
    ctx.setTransform(map.dpr * t.k, 0, 0, map.dpr * t.k, map.dpr * t.x, map.dpr * t.y);
    const line = 1 / t.k;
    const level = shownLevel();
    if (level) {
      ctx.lineWidth = (level === "regions" ? 2 : 1.5) * line;
      const shown = level === "regions" ? regions : list;
      for (const c of shown) {
        if (c.outline.length < 6) continue;
        ctx.strokeStyle = level === "regions" ? REGION_OUTLINE : map.clusterTints[c.id];
        trace(ctx, c.outline);
        ctx.stroke();
      }
      ctx.setTransform(map.dpr, 0, 0, map.dpr, 0, 0);
      ctx.font = level === "regions" ? "bold 13px system-ui, sans-serif" : "11px system-ui, sans-serif";
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      for (const c of shown) {
        const x = t.x + t.k * c.centroid[0];
        const y = t.y + t.k * c.centroid[1];
        if (x < -20 || y < -20 || x > map.width + 20 || y > map.height + 20) continue;
        const label = level === "regions" ? c.name : String(c.id);
        const w = ctx.measureText(label).width + 8;
        const h = level === "regions" ? 18 : 16;
        ctx.fillStyle = "rgba(0, 0, 0, 0.75)";
        ctx.fillRect(x - w / 2, y - h / 2, w, h);
        ctx.fillStyle = "#fff";
        ctx.fillText(label, x, y);
      }
      ctx.setTransform(map.dpr * t.k, 0, 0, map.dpr * t.k, map.dpr * t.x, map.dpr * t.y);
    }
    if (s && (s.kind === "cluster" || s.kind === "region") && tsne) {
      const c = s.kind === "cluster" ? list.find((entry) => entry.id === s.cluster)
        : regions.find((entry) => entry.id === s.region);
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

  /** Which outlines the map shows now, with colour by cluster on: "regions", "clusters" or null (see above). */
  function shownLevel() {
    const t = map.transform;
    if (map.look.colouring !== "clusters" || map.layout !== "tsne" || map.fade) return null;
    if (!(map.layouts.tsne.slot * t.k < OUTLINES_BELOW_PX || t.k <= OUTLINES_UP_TO_ZOOM)) return null;
    return regions.length && regions.length < list.length && t.k < REGIONS_BELOW_ZOOM ? "regions" : "clusters";
  }

  /** "frame": a lasso being resolved takes its chunk first, before any composing. */
  function offerWork(offer) {
    if (pending) offer([-Infinity, work]);
  }

  /** "look": the cluster box follows the colouring, whoever set it. */
  function followLook() {
    $("cluster-colours").checked = map.look.colouring === "clusters";
    $("clear-selection").hidden = !map.look.selection;
  }

  /** "pick", before panels.js: a click on empty map with no poster chosen clears the selection. */
  function pickedNothing(i) {
    if (i < 0 && map.selected < 0 && (map.look.selection || pending)) {
      clear({ flyBack: false });
      if (!$("selection-view").hidden) $("clusters").hidden = true;
    }
  }

  /** "escape", after panels.js: the lasso being drawn, then the selection (the map comes back), then the panel. */
  function escape(handled) {
    if (handled.done) return;
    handled.done = true;
    if (drawing || lassoMode) {
      drawing = null;
      setLassoMode(false);
      map.requestDraw();
    } else if (map.look.selection || pending) {
      clear();
      if (available() && !$("clusters").hidden) showList();
      else $("clusters").hidden = true;
    } else if (!$("clusters").hidden) {
      $("clusters").hidden = true;
    } else {
      handled.done = false;
    }
  }

  return {
    setUp, showControls, wire, draw, escape, restore, pendingLasso, wantsLasso, selectCluster, selectRegion, shownLevel,
    offerWork, followLook, pickedNothing,
    busy: () => !!pending || !!drawing || jobs.length > 0 || !!exporting,
    selection: () => (map.look.selection ? Array.from(ordered(map.look.selection), (i) => map.P.id[i]) : null),
  };
}
