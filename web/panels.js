// Panels and controls: the poster panel, search, closest pairs, the year filter, and the colours by decade
// or by a category with their legend.
// It announces the poster chosen ("poster") and sets the year filter and colouring through the look
// (look.js), whose "look" event it follows to keep its controls true: see the events in app.js.
// No data string is ever parsed as HTML: titles go in with textContent.
import { fetchJson } from "./loader.js";
import { posterBox } from "./geometry.js";
import {
  SearchIndex, categoryColour, idleSlices, categoryOf, categoryValues, decadeColour, decadeOf, decadesOf, posterInfo, readPairs,
  searchTitles, yearExtent, yearRange,
} from "./logic.js";

const SEARCH_SLICE = 5000; // titles normalised at a time when idle: a few ms

export function panels(map) {
  const { $ } = map;
  // The titles' search index: format 3's shards (meta.table.search), fetched when the search box is first
  // used; else built from the titles a slice at a time when the page is idle, once the map is ready (not on
  // the way to the first view), or at once by the first search that comes before that.
  let searchIndex = null;
  let searchLoad = null; // the promise of the shards' index, once asked for
  let searchAsked = 0; // the latest search typed: an answer that comes after a later one is dropped
  let suggestionTitles = [];
  let suggestionsFor = ""; // the text the suggestions answer: Enter takes them only while it is still typed
  let suggestions = [];
  let active = -1;
  let pairs = null;
  let morePairs = 0; // listed in the pairs file past LIMITS.pairs, or unreadable: not shown

  function setUp() {
    const P = map.P;
    searchIndex = null;
    searchLoad = null;
    if (P.title) {
      searchIndex = new SearchIndex(P.title, P.year);
      idleSlices((count) => searchIndex.grow(count), SEARCH_SLICE);
    }
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
    yearSpan = [lo, hi];
    noYear = false; // a plain loop, once: some() over 1,000,000 years took 40 ms at each switch of colours
    for (let i = 0; i < P.year.length && !noYear; i++) noYear = !Number.isFinite(P.year[i]);
    // Colour by a category: a menu of the map's categories, shown only when it has some.
    const menu = $("category-colours");
    menu.replaceChildren(new Option("category…", ""), ...P.categories.map((c) => new Option(c.name, c.name)));
    menu.hidden = P.categories.length === 0;
    buildLegend();
  }

  let yearSpan = [null, null];
  let noYear = false; // whether some poster has no year: the legend's "No year"
  let legendFor = undefined; // the colouring the legend was built for

  /**
   * The legend of the colouring: a swatch per decade, or per value of the category coloured by (and "No
   * year" or "No value" when some posters have none). Clicking an entry shows only its posters; clicking
   * it again shows every poster. The entry shown is pressed (aria-pressed), whoever set the filter.
   */
  function buildLegend() {
    const { look, P } = map;
    legendFor = look.colouring;
    const legend = $("legend");
    legend.replaceChildren();
    const category = categoryOf(P.categories, look.colouring);
    $("legend-box").hidden = !(look.colouring === "decades" || category);
    const entry = (label, colour, title, onClick, data, count = null) => {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      Object.assign(button.dataset, data);
      button.title = title;
      button.setAttribute("aria-pressed", "false");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = colour;
      button.append(swatch, label);
      if (count !== null) {
        const small = document.createElement("span");
        small.className = "count";
        small.textContent = count.toLocaleString("en");
        button.append(small);
      }
      button.addEventListener("click", onClick);
      item.append(button);
      legend.append(item);
    };
    if (category) {
      $("legend-title").textContent = `${category.name}: click one to show only its posters`;
      const values = category.values.map((value, code) => [code, value]);
      if (category.none) values.push([-1, null]);
      for (const [code, value] of values) {
        const other = category.others > 0 && code === category.values.length - 1;
        const label = value === null ? "No value" : other ? `other (${category.others} values)` : value;
        entry(label, categoryColour(category, code, map.palette),
          `show only the posters whose ${category.name} is ${value === null ? "not given" : value} (click again to `
            + "show every poster)",
          () => {
            const shown = look.only && look.only.category === category && look.only.code === code;
            look.setOnly(shown ? null : category, code);
          }, { value: String(code) }, code >= 0 ? category.sizes[code] ?? null : category.none);
      }
      return;
    }
    if (look.colouring !== "decades") return;
    $("legend-title").textContent = "Decades: click one to show only it";
    const [lo, hi] = yearSpan;
    for (const decade of [...decadesOf(lo, hi), ...(noYear ? ["none"] : [])]) {
      const none = decade === "none";
      const [from, to] = none ? [NaN, NaN] : [decade, decade + 9];
      entry(none ? "No year" : `${decade}s`, decadeColour(none ? NaN : decade, map.palette, map.firstDecade),
        none ? "show only the posters with no year (click again to show every poster)"
          : `show only ${decade}-${decade + 9} (click again to show every year)`,
        () => {
          const shown = Object.is(look.yearFrom, from) && Object.is(look.yearTo, to);
          if (shown) look.setYears(-Infinity, Infinity);
          else look.setYears(from, to);
        }, { decade: String(decade) });
    }
  }

  function applyYears() {
    const range = yearRange($("year-from").value, $("year-to").value);
    map.look.setYears(range.from, range.to);
    return range;
  }

  /** "look": the decade box, the category menu and the legend follow the colouring and filters, whoever set them. */
  function followLook(what) {
    const { look } = map;
    $("decades").checked = look.colouring === "decades";
    const category = categoryOf(map.P.categories, look.colouring);
    $("category-colours").value = category ? category.name : "";
    if (look.colouring !== legendFor) buildLegend();
    // The year fields show a filter set elsewhere (a legend entry, a bar of a selection's histogram);
    // one typed in them is left as typed.
    const shown = yearRange($("year-from").value, $("year-to").value);
    if (what === "years" && (shown.from !== look.yearFrom || shown.to !== look.yearTo)) {
      $("year-from").value = Number.isFinite(look.yearFrom) ? String(look.yearFrom) : "";
      $("year-to").value = Number.isFinite(look.yearTo) ? String(look.yearTo) : "";
    }
    for (const button of $("legend").querySelectorAll("button")) {
      let pressed;
      if (button.dataset.value !== undefined) {
        pressed = !!look.only && look.only.category === category && look.only.code === Number(button.dataset.value);
      } else {
        const none = button.dataset.decade === "none";
        const decade = Number(button.dataset.decade);
        pressed = none ? Number.isNaN(look.yearFrom) : look.yearFrom === decade && look.yearTo === decade + 9;
      }
      button.setAttribute("aria-pressed", String(pressed));
    }
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

  /** Choose poster i (-1: none): its panel opens, then "poster" tells the others (the view, the hash). */
  function select(i, { fly = false, duration = 750 } = {}) {
    map.selected = i;
    if (i < 0) $("panel").hidden = true;
    else showPanel(i);
    map.events.call("poster", null, i, { fly, duration });
    map.requestDraw();
  }

  function showPanel(i) {
    const P = map.P;
    $("pairs").hidden = true;
    $("panel").hidden = false;
    $("panel").classList.remove("collapsed"); // a new poster's sheet opens whole
    $("panel").querySelector(".handle").setAttribute("aria-expanded", "true");
    const image = $("panel-image");
    const full = map.asset(map.imagePath(i));
    if (full) {
      image.src = full;
      $("panel-full").href = full;
    } else {
      image.removeAttribute("src");
      $("panel-full").removeAttribute("href");
    }
    const showTitle = (title) => {
      image.alt = `${title} poster`;
      $("panel-title").textContent = title;
    };
    const title = map.title(i);
    showTitle(title ?? "");
    if (title === null) map.titlesOf([i]).then(([read]) => { if (map.selected === i) showTitle(read); });
    const page = $("panel-page");
    const url = map.pageUrl(i);
    const safePage = /^https?:\/\//i.test(url);
    $("panel-info").textContent = posterInfo(P.year[i], P.version[i], map.imagePath(i), safePage);
    const about = categoryValues(P.categories, i, false); // the version is in the line above
    const list = $("panel-categories");
    list.replaceChildren(...about.flatMap(([name, value]) => {
      const term = document.createElement("dt");
      term.textContent = name;
      const text = document.createElement("dd");
      text.textContent = value;
      return [term, text];
    }));
    list.hidden = about.length === 0;
    page.hidden = !safePage;
    if (safePage) page.href = url;
    else page.removeAttribute("href");
    showSimilar(i);
    // Format 3 reads a poster's similar posters when it is chosen: shown once they are in, if it still is.
    map.nearOf(i).then(() => { if (map.selected === i) showSimilar(i); });
  }

  function showSimilar(i) {
    const similar = $("panel-similar");
    similar.replaceChildren();
    const [js, sims] = map.similar(i) ?? [[], []];
    js.forEach((j, r) => {
      if (j >= 0 && j < map.n) similar.append(map.thumbButton(j, sims[r]));
    });
  }

  /** "hash": the years, the category filter and the colouring a link names (none: every poster, no colouring). */
  function restoreLook(wanted, animate, missing) {
    const [from, to] = wanted.years ?? [-Infinity, Infinity];
    const { P, look } = map;
    look.setYears(from, to);
    const only = wanted.only;
    const category = only ? P.categories.find((c) => c.name === only.name) : null;
    const code = category ? (only.value === "" ? -1 : category.values.indexOf(only.value)) : -1;
    if (only && !category) missing.push(`the category “${only.name}”`);
    else if (only && only.value !== "" && code < 0) missing.push(`“${only.value}” in ${only.name}`);
    look.setOnly(category && (only.value === "" || code >= 0) ? category : null, code);
    if (wanted.colour === "clusters" && !P.cluster) {
      missing.push("colour by cluster (the map has no clusters)");
      look.setColouring(null);
    } else if (wanted.colour?.startsWith("category:") && !categoryOf(P.categories, wanted.colour)) {
      missing.push(`colour by “${wanted.colour.slice(9)}” (the map has no such category)`);
      look.setColouring(null);
    } else {
      look.setColouring(wanted.colour);
    }
  }

  /** "hash": the poster a link names, if another is shown (after the selection: app.js orders them); none
   * named closes the one shown. */
  function restoreFromHash(wanted, animate, missing) {
    const id = wanted.poster;
    const i = id ? map.indexOf(id) : -1;
    if (id && i < 0) missing.push(`poster “${id}”`);
    if (i >= 0 && i !== map.selected) select(i, { fly: true, duration: animate ? 750 : 0 });
    else if (i < 0 && map.selected >= 0) select(-1);
  }

  // "escape": the closest pairs, then the poster's panel (then clusters.js: the lasso, the selection...).
  function escape(handled) {
    if (handled.done) return;
    handled.done = true;
    if (!$("pairs").hidden) $("pairs").hidden = true;
    else if (map.selected >= 0) select(-1);
    else handled.done = false;
  }

  // -- search -----------------------------------------------------------------------------
  function renderSuggestions() {
    const list = $("suggestions");
    list.replaceChildren();
    const P = map.P;
    const label = (i, rank) => (Number.isFinite(P.year[i]) ? `${suggestionTitles[rank]} (${P.year[i]})`
      : suggestionTitles[rank]);
    suggestions.forEach((i, rank) => {
      const item = document.createElement("li");
      item.role = "option";
      item.dataset.id = P.id[i];
      // Versions of one film read alike: say which version, and show each one's thumbnail.
      const twin = suggestions.some((j, r) => j !== i && label(j, r) === label(i, rank));
      const thumb = document.createElement("img");
      const src = map.asset(map.thumbPath(i));
      if (src) thumb.src = src;
      thumb.alt = "";
      const text = document.createElement("span");
      text.textContent = twin || P.version[i] > 1 ? `${label(i, rank)} · version ${P.version[i]}` : label(i, rank);
      item.append(thumb, text);
      item.setAttribute("aria-selected", String(rank === active));
      item.addEventListener("mousedown", (event) => {
        event.preventDefault();
        choose(i, suggestionTitles[rank]);
      });
      list.append(item);
    });
    list.hidden = suggestions.length === 0;
  }

  function choose(i, title) {
    $("search").value = title;
    $("search").blur(); // hand the keyboard back to the map (Esc, +, -, 0)
    suggestions = [];
    searchAsked += 1; // an answer on its way is not shown
    renderSuggestions();
    select(i, { fly: true });
  }

  /** A promise of the search index: the titles' (grown whole now), or format 3's shards, fetched once. */
  function index() {
    if (searchIndex) {
      searchIndex.grow();
      return Promise.resolve(searchIndex);
    }
    if (!searchLoad) {
      searchLoad = map.searchIndex().then((built) => {
        searchIndex = built;
        return built;
      });
      searchLoad.catch((error) => {
        searchLoad = null; // asked again by the next search
        $("search-status").textContent = `The search cannot be used: ${map.dataName}: ${error.message}`;
        $("search-status").hidden = false;
      });
    }
    return searchLoad;
  }

  /** A promise of the posters matching `query` (at most `limit`) and their titles; null when a later
   * search was asked for meanwhile, or the map's posters are not read yet. */
  async function search(query, limit) {
    if (!map.n) return null;
    const asked = ++searchAsked;
    const found = searchTitles(await index(), query, limit);
    const titles = await map.titlesOf(found);
    return asked === searchAsked ? [found, titles] : null;
  }

  function wireSearch() {
    const input = $("search");
    // Format 3's index is fetched as soon as the box is about to be used (the pointer over it, or the focus:
    // a click, a tab), before the first key is typed.
    for (const type of ["pointerenter", "focus"]) {
      input.addEventListener(type, () => { if (map.n) index().catch(() => {}); });
    }
    input.addEventListener("input", async () => {
      $("search-status").hidden = true;
      const typed = input.value;
      const answer = await search(typed, 8).catch(() => null);
      if (!answer) return;
      [suggestions, suggestionTitles] = answer;
      suggestionsFor = typed;
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
        if (suggestions.length && suggestionsFor === input.value) {
          const rank = Math.max(0, active);
          choose(suggestions[rank], suggestionTitles[rank]);
        } else {
          const typed = input.value.trim();
          search(input.value, 1).then((answer) => {
            if (!answer || input.value.trim() !== typed) return;
            if (answer[0].length) choose(answer[0][0], answer[1][0]);
            else if (typed) {
              $("search-status").textContent = `No poster matches “${typed}”`;
              $("search-status").hidden = false;
            }
          }, () => {});
        }
      } else if (event.key === "Escape") {
        suggestions = [];
        searchAsked += 1;
        renderSuggestions();
      }
      event.stopPropagation();
    });
    input.addEventListener("blur", () => {
      suggestions = [];
      searchAsked += 1;
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
    const shown = pairs.map((pair) => [pair, map.indexOf(pair.a), map.indexOf(pair.b)]).filter(([, a, b]) => a >= 0 && b >= 0);
    const titles = await map.titlesOf(shown.flatMap(([, a, b]) => [a, b]));
    list.replaceChildren();
    // Each pair is one button, thumbnails and caption alike: it shows the two on the map, side by side in
    // the part the list leaves, and the list stays open for the next.
    shown.forEach(([pair, a, b], r) => {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "pair-row";
      button.dataset.a = pair.a;
      button.dataset.b = pair.b;
      const row = document.createElement("span");
      row.className = "pair";
      row.append(map.thumbImage(a), map.thumbImage(b));
      const caption = document.createElement("span");
      caption.className = "caption";
      caption.textContent = `${titles[2 * r]} — ${titles[2 * r + 1]} · ${pair.similarity.toFixed(3)}`;
      button.append(row, caption);
      button.addEventListener("click", () => showPair(a, b));
      item.append(button);
      list.append(item);
    });
    if (morePairs) {
      const item = document.createElement("li");
      item.textContent = `and ${morePairs} more pairs in ${map.meta.pairs.file}, not shown`;
      list.append(item);
    }
  }

  /** Both posters of a pair whole on the map, in the part that the open list leaves. */
  function showPair(a, b) {
    const l = map.layouts[map.layout];
    const boxes = [a, b].map((i) => posterBox(l.wx[i], l.wy[i], map.P.aspect[i], l.slot));
    const pad = l.slot / 2;
    map.events.call("fit", null, [Math.min(boxes[0][0], boxes[1][0]) - pad, Math.min(boxes[0][1], boxes[1][1]) - pad,
      Math.max(boxes[0][2], boxes[1][2]) + pad, Math.max(boxes[0][3], boxes[1][3]) + pad], 750);
  }

  function wire() {
    // On a phone: "☰" opens the toolbar's controls over the map (a tap on the map closes them), and each
    // bottom sheet's handle shrinks it to its handle and back.
    const setOpen = (open) => {
      $("bar").classList.toggle("open", open);
      $("more").setAttribute("aria-expanded", String(open));
    };
    $("more").addEventListener("click", () => setOpen(!$("bar").classList.contains("open")));
    map.canvas.addEventListener("pointerdown", () => setOpen(false));
    for (const handle of document.querySelectorAll("aside .handle")) {
      handle.addEventListener("click", () => {
        const collapsed = handle.parentElement.classList.toggle("collapsed");
        handle.setAttribute("aria-expanded", String(!collapsed));
        map.requestDraw();
      });
    }
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
      map.look.setColouring(event.target.checked ? "decades" : null);
    });
    $("category-colours").addEventListener("change", (event) => {
      map.look.setColouring(event.target.value ? `category:${event.target.value}` : null);
    });
    wireSearch();
  }

  return { setUp, wire, select, cover, escape, restoreLook, restoreFromHash, followLook };
}
