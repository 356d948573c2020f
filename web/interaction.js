// Interaction: d3-zoom for pan and zoom (mouse, wheel, touch), a grid of points for picking,
// hover, click, keyboard, fly-to and the layout switch. It announces a poster picked ("pick") and Esc
// ("escape"), and moves the view when told to ("poster", "fit", "view"): see the events in app.js.
import { pick as topmost, posterBox } from "./geometry.js";
import { categoryValues, centreOn, keepsKeys } from "./logic.js";

const FLY_SIZE = 160; // css px a poster is shown at after "fly to"

/**
 * `asks` are the questions this module puts to others, given by app.js: cover() (how much of the canvas
 * the open panels hide, [right, bottom]), busy() (a lasso is being drawn or computed) and
 * wantsLasso(event) (whether a drag draws a lasso rather than pans).
 */
export function interaction(map, asks) {
  const { $, canvas, d3 } = map;
  // A shift-drag, or any drag in lasso mode, draws a lasso (clusters.js) instead of panning.
  const zoom = d3.zoom().filter((event) => {
    if ((event.type === "mousedown" || event.type === "touchstart") && asks.wantsLasso(event)) return false;
    return (!event.ctrlKey || event.type === "wheel") && !event.button;
  }).on("zoom", (event) => {
    map.transform = event.transform;
    // What is under the pointer changes with the view: the tooltip goes until the pointer moves again.
    if (!$("tooltip").hidden) hideTooltip();
    map.requestDraw();
  });

  function layout() {
    return map.layouts[map.layout];
  }

  function setUp() {
    const maxK = Math.max(4, (Math.min(map.width, map.height) * 0.85) / layout().slot);
    zoom.scaleExtent([0.3, maxK]);
    d3.select(canvas).call(zoom).call(zoom.transform, map.home).on("dblclick.zoom", null);
  }

  // Animated changes of view (fly-to, keys): the view is not settled before the last one's end.
  let flyingUntil = 0;
  function animated(duration) {
    flyingUntil = Math.max(flyingUntil, performance.now() + duration + 50); // it starts on the next tick
    return d3.select(canvas).transition().duration(duration);
  }

  function zoomTo(transform, duration = 0) {
    if (duration > 0) animated(duration).call(zoom.transform, transform);
    else d3.select(canvas).call(zoom.transform, transform);
  }

  // The poster drawn on top under the pointer: the later one where posters overlap.
  function pick(clientX, clientY) {
    const rect = canvas.getBoundingClientRect();
    const [x, y] = map.transform.invert([clientX - rect.left, clientY - rect.top]);
    const l = layout();
    const r = l.slot / 2; // a box lies within half a slot of its centre
    const near = [];
    l.points.visit(x - r, y - r, x + r, y + r, (i) => near.push(i));
    return topmost(near, (i) => posterBox(l.wx[i], l.wy[i], map.P.aspect[i], l.slot), x, y);
  }

  function flyTo(i, duration = 750) {
    const l = layout();
    const k = Math.min(zoom.scaleExtent()[1], Math.max(map.transform.k, FLY_SIZE / l.slot));
    const [covered, below] = asks.cover();
    const c = centreOn(l.wx[i], l.wy[i], k, map.width - covered, map.height - below);
    zoomTo(d3.zoomIdentity.translate(c.x, c.y).scale(c.k), duration);
  }

  /** Zoom to show the world box [x0, x1] x [y0, y1] whole, in the part of the map the panels leave. */
  function fitBox(x0, y0, x1, y1, duration = 750) {
    const [covered, below] = asks.cover();
    const w = map.width - covered;
    const h = map.height - below;
    const [lo, hi] = zoom.scaleExtent();
    const k = Math.max(lo, Math.min(hi, 0.9 * Math.min(w / Math.max(x1 - x0, 1e-9), h / Math.max(y1 - y0, 1e-9))));
    const c = centreOn((x0 + x1) / 2, (y0 + y1) / 2, k, w, h);
    zoomTo(d3.zoomIdentity.translate(c.x, c.y).scale(c.k), duration);
  }

  // Pan, at the same zoom, just enough for poster i to be wholly in the part of the map the
  // panel leaves (centred there when it does not fit).
  function reveal(i, duration = 300) {
    const l = layout();
    const [bx, by, bx1, by1] = posterBox(l.wx[i], l.wy[i], map.P.aspect[i], l.slot);
    revealBox(bx, by, bx1, by1, duration);
  }

  /** The world box wholly in the part of the map the panels leave: panned just enough at the same zoom, or,
   * when it is larger than that part, fitted into it. */
  function revealBox(bx, by, bx1, by1, duration = 300) {
    const t = map.transform;
    const [covered, below] = asks.cover();
    const w = map.width - covered;
    const h = map.height - below;
    const margin = 8;
    const x0 = t.x + bx * t.k;
    const y0 = t.y + by * t.k;
    const x1 = t.x + bx1 * t.k;
    const y1 = t.y + by1 * t.k;
    if (x1 - x0 > w - 2 * margin || y1 - y0 > h - 2 * margin) {
      fitBox(bx, by, bx1, by1, duration);
      return;
    }
    const shift = (lo, hi, size) => {
      if (lo < margin) return margin - lo;
      if (hi > size - margin) return size - margin - hi;
      return 0;
    };
    const dx = shift(x0, x1, w);
    const dy = shift(y0, y1, h);
    if (dx || dy) zoomTo(d3.zoomIdentity.translate(t.x + dx, t.y + dy).scale(t.k), duration);
  }

  // Switching layouts: the two pyramids cross-fade while the view stays put (each frame costs
  // two layers of tiles, whatever the number of posters).
  function switchLayout(name, { instant = false } = {}) {
    if (name === map.layout || !map.layouts[name] || map.fade) return;
    for (const id of ["layout-tsne", "layout-grid"]) $(id).setAttribute("aria-pressed", String(id === `layout-${name}`));
    hideTooltip();
    if (instant) {
      map.layout = name;
      map.events.call("layout", null, name);
      map.requestDraw();
      return;
    }
    map.fade = { from: map.layout, to: name, t: 0 };
    map.events.call("layout", null, name);
    const timer = d3.timer((elapsed) => {
      map.fade.t = d3.easeCubicInOut(Math.min(1, elapsed / 800));
      map.requestDraw();
      if (elapsed >= 800) {
        timer.stop();
        map.fade = null;
        map.layout = name;
        map.requestDraw();
      }
    });
  }

  /** "hash": the layout a link names (or its lasso was drawn on); t-SNE when it names none. */
  function restoreLayout(wanted, animate, missing) {
    const name = wanted.layout ?? wanted.lasso?.layout ?? "tsne";
    if (!map.layouts[name]) {
      missing.push(`the ${name} layout`);
      return;
    }
    if (name !== (map.fade ? map.fade.to : map.layout)) switchLayout(name, { instant: !animate });
  }

  function hideTooltip() {
    $("tooltip").hidden = true;
    if (map.hover >= 0) {
      map.hover = -1;
      map.requestDraw();
    }
  }

  let tipPoint = [0, 0]; // where the pointer was on the canvas when the tooltip was last placed
  let lassoEnded = false; // a lasso was drawn since the pointer went down: its click picks nothing

  /** "lasso": no tooltip while one is drawn, and no poster picked by the click that ends it. */
  function lasso(phase) {
    if (phase === "start") hideTooltip();
    else lassoEnded = true;
  }

  function wire() {
    canvas.addEventListener("pointerdown", () => {
      lassoEnded = false;
    });
    // The canvas changes size with the window, and when the bar above it wraps onto another line
    // (a notice, the layout buttons, the legend): keep its sizes true. The view is left as it is:
    // moving it here would cut short a zoom under way (a key press, a fly-to).
    new ResizeObserver(() => {
      if (!map.n) return;
      const rect = canvas.getBoundingClientRect();
      if (rect.width === map.width && rect.height === map.height && (window.devicePixelRatio || 1) === map.dpr) return;
      resizeCanvas();
      map.requestDraw();
    }).observe(canvas);
    canvas.addEventListener("pointermove", (event) => {
      if (!map.n || map.fade || asks.busy()) return;
      const i = pick(event.clientX, event.clientY);
      const tip = $("tooltip");
      if (i !== map.hover) {
        map.hover = i;
        map.requestDraw();
      }
      if (i < 0) {
        tip.hidden = true;
        return;
      }
      const rect = canvas.getBoundingClientRect();
      tipPoint = [event.clientX - rect.left, event.clientY - rect.top];
      const title = map.title(i);
      showTip(i, title ?? "");
      // Format 3 reads the title from its tile's titles file: said once it is in, if the pointer is still there.
      if (title === null) map.titlesOf([i]).then(([read]) => { if (map.hover === i && !tip.hidden) showTip(i, read); });
    });
    canvas.addEventListener("pointerleave", hideTooltip);

    // The tooltip of poster i, beside the pointer (tipPoint), inside the canvas: left of it near the right edge,
    // above it near the bottom. An empty title (one not read yet) leaves the year and categories.
    function showTip(i, title) {
      const P = map.P;
      const tip = $("tooltip");
      const about = categoryValues(P.categories, i, false).map(([, value]) => value);
      const year = Number.isFinite(P.year[i]) ? `(${P.year[i]})` : "";
      tip.textContent = [[title, year].filter(Boolean).join(" "), ...about].filter(Boolean).join(" · ") || "…";
      tip.hidden = false;
      const rect = canvas.getBoundingClientRect();
      const [x, y] = tipPoint;
      const left = x + 14 + tip.offsetWidth <= rect.width ? x + 14 : Math.max(0, x - 14 - tip.offsetWidth);
      const top = y + 14 + tip.offsetHeight <= rect.height ? y + 14 : Math.max(0, y - 14 - tip.offsetHeight);
      tip.style.left = `${left}px`;
      tip.style.top = `${top}px`;
    }
    canvas.addEventListener("click", (event) => {
      if (!map.n || map.fade || lassoEnded) return;
      hideTooltip();
      map.events.call("pick", null, pick(event.clientX, event.clientY));
    });
    $("layout-tsne").addEventListener("click", () => switchLayout("tsne"));
    $("layout-grid").addEventListener("click", () => switchLayout("grid"));
    window.addEventListener("keydown", (event) => {
      if (!map.n) return;
      if (event.key === "Escape") { // always: whatever has the focus (search handles its own first)
        map.events.call("escape", null, { done: false });
        return;
      }
      if (keepsKeys(event.target)) return; // text typed in a field; checkboxes and buttons keep none
      // About the middle of the part of the map the panels leave, where a chosen poster or selection is.
      const [covered, below] = asks.cover();
      const middle = [(map.width - covered) / 2, (map.height - below) / 2];
      if (event.key === "+" || event.key === "=") zoom.scaleBy(animated(250), 1.5, middle);
      else if (event.key === "-" || event.key === "_") zoom.scaleBy(animated(250), 1 / 1.5, middle);
      else if (event.key === "0") animated(250).call(zoom.transform, map.home);
    });
  }

  /** The canvas's backing store to its size on screen, in device pixels. */
  function resizeCanvas() {
    const rect = canvas.getBoundingClientRect();
    map.dpr = window.devicePixelRatio || 1;
    map.width = Math.max(1, rect.width);
    map.height = Math.max(1, rect.height);
    canvas.width = Math.round(map.width * map.dpr);
    canvas.height = Math.round(map.height * map.dpr);
  }

  /** "poster": fly to the poster chosen, or at least bring it out from under the panel. */
  function showPoster(i, { fly = false, duration = 750 } = {}) {
    if (i < 0) return;
    if (fly) flyTo(i, duration);
    else reveal(i); // never left under the panel or the bottom sheet
  }

  return {
    setUp, wire, pick, showPoster, fitBox, revealBox, zoomTo, switchLayout, restoreLayout, hideTooltip, lasso, resizeCanvas,
    flying: () => performance.now() < flyingUntil,
  };
}
