// Panels and controls: the poster panel, search, closest pairs, the year filter and decade colours.
// No data string is ever parsed as HTML: titles go in with textContent.
import { fetchJson } from "./loader.js";
import { buildSearchIndex, hashForPoster, posterFromHash, searchTitles, yearExtent } from "./logic.js";

export function panels(map) {
  const { $ } = map;
  let byId = null;
  let searchIndex = [];
  let suggestions = [];
  let active = -1;
  let pairs = null;

  function indexOf(id) {
    return byId?.get(id) ?? -1;
  }

  function setUp() {
    const P = map.P;
    byId = new Map(P.id.map((id, i) => [id, i]));
    searchIndex = buildSearchIndex(P.title, P.year);
    const [lo, hi] = yearExtent(P.year);
    if (lo !== null) {
      for (const [id, value] of [["year-from", lo], ["year-to", hi]]) {
        $(id).min = String(lo);
        $(id).max = String(hi);
        $(id).value = String(value);
      }
    }
  }

  // How much of the canvas the open panel hides: [from the right, from the bottom].
  // It is a side panel on wide screens and a bottom sheet on narrow ones (see style.css).
  function cover() {
    if ($("panel").hidden) return [0, 0];
    if (window.innerWidth > 640) return [$("panel").offsetWidth, 0];
    const top = $("panel").getBoundingClientRect().top;
    return [0, Math.max(0, map.canvas.getBoundingClientRect().bottom - top)];
  }

  function select(i, { fly = false, duration = 750 } = {}) {
    map.selected = i;
    if (i < 0) {
      $("panel").hidden = true;
      if (window.location.hash) history.replaceState(null, "", window.location.pathname + window.location.search);
      map.requestDraw();
      return;
    }
    showPanel(i);
    history.replaceState(null, "", hashForPoster(map.P.id[i]));
    if (fly) map.ui.flyTo(i, duration);
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
    const info = [Number.isFinite(P.year[i]) ? P.year[i] : "year unknown", `version ${P.version[i]}`];
    $("panel-info").textContent = info.join(" · ");
    const page = $("panel-page");
    const url = map.pageUrl(i);
    const safePage = /^https?:\/\//i.test(url);
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
    const id = posterFromHash(window.location.hash);
    if (!id || !byId) return;
    const i = indexOf(id);
    if (i >= 0 && i !== map.selected) select(i, { fly: true, duration: animate ? 750 : 0 });
  }

  function escape() {
    if (!$("pairs").hidden) $("pairs").hidden = true;
    else select(-1);
  }

  // -- search -----------------------------------------------------------------------------
  function renderSuggestions() {
    const list = $("suggestions");
    list.replaceChildren();
    const P = map.P;
    suggestions.forEach((i, rank) => {
      const item = document.createElement("li");
      item.role = "option";
      item.dataset.id = P.id[i];
      item.textContent = Number.isFinite(P.year[i]) ? `${P.title[i]} (${P.year[i]})` : P.title[i];
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

  function wireSearch() {
    const input = $("search");
    input.addEventListener("input", () => {
      suggestions = searchTitles(searchIndex, input.value, 8);
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
        const matches = suggestions.length ? suggestions : searchTitles(searchIndex, input.value, 1);
        if (matches.length) choose(matches[Math.max(0, active)]);
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
    $("pairs").hidden = false;
    if (pairs) return;
    const list = $("pairs-list");
    try {
      const url = map.asset(map.meta.pairs.file);
      if (!url) throw new Error(`refusing to load ${map.meta.pairs.file}`);
      pairs = (await fetchJson(url)).pairs;
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
  }

  function wire() {
    $("panel-close").addEventListener("click", () => select(-1));
    $("pairs-close").addEventListener("click", () => { $("pairs").hidden = true; });
    $("show-pairs").addEventListener("click", () => { if (map.n) showPairs(); });
    const years = () => {
      const from = Number.parseInt($("year-from").value, 10);
      const to = Number.parseInt($("year-to").value, 10);
      map.yearFrom = Number.isFinite(from) ? from : -Infinity;
      map.yearTo = Number.isFinite(to) ? to : Infinity;
      if (map.renderer) map.renderer.overlaysChanged();
    };
    $("year-from").addEventListener("input", years);
    $("year-to").addEventListener("input", years);
    $("decades").addEventListener("change", (event) => {
      map.decades = event.target.checked;
      if (map.renderer) map.renderer.overlaysChanged();
    });
    window.addEventListener("hashchange", () => restoreFromHash(true));
    wireSearch();
  }

  return { setUp, wire, select, indexOf, cover, escape, restoreFromHash };
}
