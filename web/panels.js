// Panels and controls: the poster panel, search, closest pairs, the year filter and decade colours.
// No data string is ever parsed as HTML: titles go in with textContent.
import { fetchJson } from "./loader.js";
import {
  buildSearchIndex, decadeColour, decadeOf, decadesOf, posterFromHash, posterInfo, readPairs, searchTitles, yearExtent, yearRange,
} from "./logic.js";

export function panels(map) {
  const { $ } = map;
  let byId = null;
  let searchIndex = null; // built on the first search: not on the way to the first view
  let suggestions = [];
  let active = -1;
  let pairs = null;
  let morePairs = 0; // listed in the pairs file past LIMITS.pairs, or unreadable: not shown

  function indexOf(id) {
    return byId?.get(id) ?? -1;
  }

  function setUp() {
    const P = map.P;
    byId = new Map(P.id.map((id, i) => [id, i]));
    const [lo, hi] = yearExtent(P.year);
    if (lo !== null) {
      for (const [id, value] of [["year-from", lo], ["year-to", hi]]) {
        $(id).min = String(lo);
        $(id).max = String(hi);
        $(id).value = String(value);
      }
    }
    map.palette = map.d3.schemeTableau10;
    map.firstDecade = lo === null ? 1900 : decadeOf(lo);
    buildLegend(lo, hi);
  }

  // The decade legend: a swatch per decade; clicking one filters the map to it.
  function buildLegend(lo, hi) {
    const legend = $("legend");
    legend.replaceChildren();
    for (const decade of decadesOf(lo, hi)) {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.decade = String(decade);
      button.title = `show only ${decade}-${decade + 9}`;
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = decadeColour(decade, map.palette, map.firstDecade);
      button.append(swatch, `${decade}s`);
      button.addEventListener("click", () => {
        $("year-from").value = String(decade);
        $("year-to").value = String(decade + 9);
        applyYears();
      });
      item.append(button);
      legend.append(item);
    }
  }

  function applyYears() {
    const range = yearRange($("year-from").value, $("year-to").value);
    map.yearFrom = range.from;
    map.yearTo = range.to;
    if (map.renderer) map.renderer.overlaysChanged();
    return range;
  }

  // How much of the canvas the open panels hide: [from the right, from the bottom].
  // Each is a side panel on wide screens and a bottom sheet on narrow ones (see style.css).
  function cover() {
    const open = ["panel", "clusters", "pairs"].map($).filter((element) => !element.hidden);
    if (!open.length) return [0, 0];
    if (window.innerWidth > 640) return [Math.max(...open.map((element) => element.offsetWidth)), 0];
    const top = Math.min(...open.map((element) => element.getBoundingClientRect().top));
    return [0, Math.max(0, map.canvas.getBoundingClientRect().bottom - top)];
  }

  function select(i, { fly = false, duration = 750 } = {}) {
    map.selected = i;
    map.clusterUi.writeHash();
    if (i < 0) {
      $("panel").hidden = true;
      map.requestDraw();
      return;
    }
    showPanel(i);
    if (fly) map.ui.flyTo(i, duration);
    else map.ui.reveal(i); // never left under the panel or the bottom sheet
    map.requestDraw();
  }

  function showPanel(i) {
    const P = map.P;
    $("pairs").hidden = true;
    $("panel").hidden = false;
    const image = $("panel-image");
    const full = map.asset(map.imagePath(i));
    if (full) {
      image.src = full;
      $("panel-full").href = full;
    } else {
      image.removeAttribute("src");
      $("panel-full").removeAttribute("href");
    }
    image.alt = `${P.title[i]} poster`;
    $("panel-title").textContent = P.title[i];
    const page = $("panel-page");
    const url = map.pageUrl(i);
    const safePage = /^https?:\/\//i.test(url);
    $("panel-info").textContent = posterInfo(P.year[i], P.version[i], map.imagePath(i), safePage);
    page.hidden = !safePage;
    if (safePage) page.href = url;
    else page.removeAttribute("href");
    const similar = $("panel-similar");
    similar.replaceChildren();
    for (let r = 0; r < P.k; r++) {
      const j = P.neighbors[i * P.k + r];
      if (j >= 0 && j < map.n) similar.append(thumbButton(j, P.similarity[i * P.k + r]));
    }
  }

  function thumbButton(j, similarity) {
    const P = map.P;
    const year = Number.isFinite(P.year[j]) ? P.year[j] : "?";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "similar";
    button.dataset.id = P.id[j];
    button.title = similarity == null ? `${P.title[j]} (${year})`
      : `${P.title[j]} (${year}) · similarity ${similarity.toFixed(3)}`;
    const img = document.createElement("img");
    const src = map.asset(map.thumbPath(j));
    if (src) img.src = src;
    img.alt = P.title[j];
    img.loading = "lazy";
    button.append(img);
    button.addEventListener("click", () => select(j, { fly: true }));
    return button;
  }

  function restoreFromHash(animate) {
    if (!byId) return;
    map.clusterUi.restore(animate);
    const id = posterFromHash(window.location.hash);
    const i = id ? indexOf(id) : -1;
    if (i >= 0 && i !== map.selected) select(i, { fly: true, duration: animate ? 750 : 0 });
  }

  // Esc: the closest pairs, then the poster's panel, then the lasso, the selection and the clusters panel.
  function escape() {
    if (!$("pairs").hidden) $("pairs").hidden = true;
    else if (map.selected >= 0) select(-1);
    else map.clusterUi.escape();
  }

  // -- search -----------------------------------------------------------------------------
  function renderSuggestions() {
    const list = $("suggestions");
    list.replaceChildren();
    const P = map.P;
    const label = (i) => (Number.isFinite(P.year[i]) ? `${P.title[i]} (${P.year[i]})` : P.title[i]);
    suggestions.forEach((i, rank) => {
      const item = document.createElement("li");
      item.role = "option";
      item.dataset.id = P.id[i];
      // Versions of one film read alike: say which version, and show each one's thumbnail.
      const twin = suggestions.some((j) => j !== i && label(j) === label(i));
      const thumb = document.createElement("img");
      const src = map.asset(map.thumbPath(i));
      if (src) thumb.src = src;
      thumb.alt = "";
      const text = document.createElement("span");
      text.textContent = twin || P.version[i] > 1 ? `${label(i)} · version ${P.version[i]}` : label(i);
      item.append(thumb, text);
      item.setAttribute("aria-selected", String(rank === active));
      item.addEventListener("mousedown", (event) => {
        event.preventDefault();
        choose(i);
      });
      list.append(item);
    });
    list.hidden = suggestions.length === 0;
  }

  function choose(i) {
    $("search").value = map.P.title[i];
    $("search").blur(); // hand the keyboard back to the map (Esc, +, -, 0)
    suggestions = [];
    renderSuggestions();
    select(i, { fly: true });
  }

  function index() {
    if (!searchIndex) searchIndex = buildSearchIndex(map.P.title, map.P.year);
    return searchIndex;
  }

  function wireSearch() {
    const input = $("search");
    input.addEventListener("input", () => {
      $("search-status").hidden = true;
      suggestions = searchTitles(index(), input.value, 8);
      active = -1;
      renderSuggestions();
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        const n = suggestions.length;
        if (!n) return;
        const down = event.key === "ArrowDown";
        if (active < 0) active = down ? 0 : n - 1;
        else active = (active + (down ? 1 : n - 1)) % n;
        renderSuggestions();
      } else if (event.key === "Enter") {
        event.preventDefault();
        const matches = suggestions.length ? suggestions : searchTitles(index(), input.value, 1);
        if (matches.length) choose(matches[Math.max(0, active)]);
        else if (input.value.trim()) {
          $("search-status").textContent = `No poster matches “${input.value.trim()}”`;
          $("search-status").hidden = false;
        }
      } else if (event.key === "Escape") {
        suggestions = [];
        renderSuggestions();
      }
      event.stopPropagation();
    });
    input.addEventListener("blur", () => {
      suggestions = [];
      renderSuggestions();
    });
  }

  // -- pairs ------------------------------------------------------------------------------
  async function showPairs() {
    $("panel").hidden = true;
    $("clusters").hidden = true;
    $("pairs").hidden = false;
    if (pairs) return;
    const list = $("pairs-list");
    try {
      const url = map.asset(map.meta.pairs.file);
      if (!url) throw new Error(`refusing to load ${map.meta.pairs.file}`);
      ({ pairs, more: morePairs } = readPairs(await fetchJson(url)));
    } catch (error) {
      const item = document.createElement("li");
      item.textContent = error.message;
      list.replaceChildren(item);
      return;
    }
    list.replaceChildren();
    const P = map.P;
    for (const pair of pairs) {
      const a = indexOf(pair.a);
      const b = indexOf(pair.b);
      if (a < 0 || b < 0) continue;
      const item = document.createElement("li");
      const row = document.createElement("div");
      row.className = "pair";
      row.append(thumbButton(a, null), thumbButton(b, null));
      const caption = document.createElement("div");
      caption.className = "caption";
      caption.textContent = `${P.title[a]} — ${P.title[b]} · ${pair.similarity.toFixed(3)}`;
      item.append(row, caption);
      list.append(item);
    }
    if (morePairs) {
      const item = document.createElement("li");
      item.textContent = `and ${morePairs} more pairs in ${map.meta.pairs.file}, not shown`;
      list.append(item);
    }
  }

  function wire() {
    $("panel-close").addEventListener("click", () => select(-1));
    $("pairs-close").addEventListener("click", () => { $("pairs").hidden = true; });
    $("show-pairs").addEventListener("click", () => { if (map.n) showPairs(); });
    const commitYears = () => {
      // A range typed backwards (2015-1995) counts the right way round, and the fields say so.
      const range = applyYears();
      if (range.swapped) {
        $("year-from").value = String(range.from);
        $("year-to").value = String(range.to);
      }
    };
    $("year-from").addEventListener("input", applyYears);
    $("year-to").addEventListener("input", applyYears);
    $("year-from").addEventListener("change", commitYears);
    $("year-to").addEventListener("change", commitYears);
    $("decades").addEventListener("change", (event) => {
      map.decades = event.target.checked;
      $("legend").hidden = !map.decades;
      if (map.renderer) map.renderer.overlaysChanged();
    });
    window.addEventListener("hashchange", () => restoreFromHash(true));
    wireSearch();
  }

  /** Show only the years from..to (inclusive), as if typed into the year fields. */
  function filterYears(from, to) {
    $("year-from").value = String(from);
    $("year-to").value = String(to);
    return applyYears();
  }

  return { setUp, wire, select, indexOf, cover, escape, restoreFromHash, thumbButton, filterYears };
}
