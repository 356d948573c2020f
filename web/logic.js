// Pure logic of the poster map: no DOM, no d3, so Node's test runner can check it.

/**
 * Resolve `rel` against `base` with the browser's own URL rules and accept the
 * result only when it stays inside `folder` (the page's folder): same origin, a
 * path under the folder once every escape is decoded, no `.`/`..` segment, no
 * backslash, no query or fragment. Returns the absolute URL, or throws.
 *
 * The check runs on what the URL parser produced, not on the raw text, so
 * leading control characters and spaces (which the parser strips), `%2e%2e`
 * (which it treats as `..`) and doubly encoded climbs are all caught.
 */
export function resolveInFolder(rel, base, folder) {
  const refuse = () => new Error(`refusing to load ${JSON.stringify(String(rel))}: it is not a file in this folder`);
  if (typeof rel !== "string" || rel === "") throw refuse();
  let url;
  try {
    url = new URL(rel, base);
  } catch {
    throw refuse();
  }
  const root = new URL(folder);
  if (url.origin !== root.origin || url.username || url.password || url.search || url.hash) throw refuse();
  let path;
  try {
    path = decodeURIComponent(url.pathname);
  } catch {
    throw refuse();
  }
  const rootPath = decodeURIComponent(root.pathname.replace(/[^/]*$/, ""));
  const inner = path.slice(rootPath.length);
  if (
    !path.startsWith(rootPath) ||
    inner === "" ||
    /[\\\u0000-\u001f\u007f]/.test(path) ||
    inner.split("/").some((part) => part === ".." || part === "." || part === "")
  ) {
    throw refuse();
  }
  return url.href;
}

/**
 * The data file named by the page's query string (`index.html?data.json`), as
 * an absolute URL under the page's folder (`pageUrl`). Accepts `?data.json`,
 * `?maps/data-30k.json` and `?data=maps/x.json`; throws an Error, whose message
 * is shown on the page, for anything that would leave the folder or is not a
 * `.json` file.
 */
export function dataUrlFromQuery(search, pageUrl) {
  let query = (search || "").replace(/^\?/, "");
  if (query === "") query = "data.json";
  const named = query.match(/^(?:data|file)=(.*)$/s);
  if (named) query = named[1];
  let path;
  try {
    path = decodeURIComponent(query);
  } catch {
    throw new Error(`the query ${JSON.stringify(query)} is not a valid file name`);
  }
  const url = resolveInFolder(path, pageUrl, pageUrl);
  if (!/\.json$/i.test(new URL(url).pathname)) {
    throw new Error(`refusing to load ${JSON.stringify(path)}: the data file must be a .json file`);
  }
  return url;
}

/**
 * A path written in a data file (relative to that file) as an absolute URL,
 * refused unless it stays under the page's folder: data files are data, and a
 * doctored one must not make the page fetch from elsewhere.
 */
export function assetUrl(dataUrl, rel, pageUrl) {
  return resolveInFolder(rel, dataUrl, pageUrl);
}

/** Lower case, accents removed, punctuation to spaces: for matching titles. */
export function normalizeTitle(text) {
  return String(text ?? "")
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, " ")
    .trim();
}

/**
 * A search index of the titles: their normalised forms in one string, "\nkey0\nkey1\n...\n", and where each
 * starts, so that a search is a few native `indexOf` scans rather than a walk over an object per poster
 * (at 1,000,000 posters those objects alone held about 100 MB). The keys are written as bytes (a normalised
 * title is ASCII): from a textColumn's own UTF-8 bytes where a title is ASCII, with no string made for it;
 * through normalizeTitle otherwise. `grow(count)` does a slice of titles at a time (the page does it when
 * idle, after the map is ready), and a search finishes it first.
 */
export class SearchIndex {
  constructor(titles, years) {
    const n = titles.length;
    Object.assign(this, { titles, years, n, done: 0, text: null, raw: titles.textColumn ? titles.raw() : null });
    this.starts = new Int32Array(n + 1);
    this.out = new Uint8Array(Math.max(16, (this.raw ? this.raw[1][n] : 16 * n) + n + 1));
    this.out[0] = 10; // "\n"
    this.starts[0] = 1;
  }

  /** Normalise up to `count` more titles; true once every title is. */
  grow(count = Infinity) {
    if (this.text !== null) return true;
    const stop = Math.min(this.n, this.done + count);
    for (let i = this.done; i < stop; i++) {
      let at = this.starts[i];
      const bytes = this.raw && asciiTitle(this.raw, i);
      if (bytes) { // lower case, a space for each run of other characters, none at either end
        this.room(at + (bytes[1] - bytes[0]) + 1);
        const [from, to, source] = bytes;
        let gap = false;
        for (let b = from; b < to; b++) {
          let c = source[b];
          if (c >= 65 && c <= 90) c += 32;
          if ((c >= 97 && c <= 122) || (c >= 48 && c <= 57)) {
            if (gap && at > this.starts[i]) this.out[at++] = 32;
            this.out[at++] = c;
            gap = false;
          } else gap = true;
        }
      } else {
        const key = normalizeTitle(this.titles[i]);
        this.room(at + key.length + 1);
        for (let c = 0; c < key.length; c++) this.out[at++] = key.charCodeAt(c);
      }
      this.out[at] = 10;
      this.starts[i + 1] = at + 1;
    }
    this.done = stop;
    if (this.done < this.n) return false;
    this.text = utf8.decode(this.out.subarray(0, this.starts[this.n]));
    this.out = null;
    return true;
  }

  /**
   * The index of format 3's search shards (meta.table.search), each read by readShard as it came (in any
   * order), given in shard order; `years` for ties.
   */
  static fromShards(shards, years, rows) {
    const n = years.length;
    const index = Object.create(SearchIndex.prototype);
    Object.assign(index, { titles: null, years, n, done: n, raw: null, out: null });
    if (shards.length !== Math.ceil(n / rows)) fail(`${shards.length} search shards for ${n} posters`);
    const starts = new Int32Array(n + 1);
    starts[0] = 1;
    let at = 1; // where the shard starts in the index's text, after its leading newline
    shards.forEach(({ k, text, ends }, r) => {
      if (k !== r || ends.length !== shardRows(k, n, rows)) fail(`search shard ${r} is not in its place`);
      for (let e = 0; e < ends.length; e++) starts[k * rows + e + 1] = at + ends[e];
      at += text.length;
    });
    index.starts = starts;
    index.text = `\n${shards.map((s) => s.text).join("")}`;
    return index;
  }

  /** Make the key buffer hold at least `size` bytes. */
  room(size) {
    if (size <= this.out.length) return;
    const bigger = new Uint8Array(Math.max(size, 2 * this.out.length));
    bigger.set(this.out);
    this.out = bigger;
  }

  /** The entry (poster) whose key holds position `pos` of the text: the last that starts at or before it. */
  entryAt(pos) {
    return lowerBound(this.starts, pos + 1) - 1;
  }

  key(e) {
    return this.text.slice(this.starts[e], this.starts[e + 1] - 1);
  }
}

/** The posters of search shard k of a map of n posters, `rows` a shard. */
const shardRows = (k, n, rows) => Math.max(0, Math.min(rows, n - k * rows));

/**
 * Search shard k of format 3's index (meta.table.search), as its file's `bytes`: {k, text, ends}, `ends[e]`
 * where the key of the shard's poster e ends in `text` (past its newline). Throws, naming the shard, unless it holds the keys of its posters (of the map's n, `rows` a
 * shard), each ended by a newline, and nothing but a-z, 0-9, space and newline. The page reads each shard
 * as it arrives, while the others are on their way; native scans only (a regular expression, indexOf): at
 * 1,000,000 posters the keys are about 20 MB, which a loop over their bytes took about 15 ms a MB to check.
 */
export function readShard(bytes, k, n, rows) {
  const text = utf8.decode(bytes);
  if (/[^a-z0-9 \n]/.test(text)) fail(`search shard ${k} holds a character that is not a search key's`);
  const want = shardRows(k, n, rows);
  const ends = new Int32Array(want);
  let e = 0;
  for (let p = text.indexOf("\n"); p >= 0; p = text.indexOf("\n", p + 1)) {
    if (e === want) fail(`search shard ${k} holds more than its ${want} posters`);
    ends[e++] = p + 1;
  }
  if (e !== want || !text.endsWith("\n")) fail(`search shard ${k} does not hold its ${want} posters' keys`);
  return { k, text, ends };
}

/** Title i's bytes as [from, to, bytes] when they are all ASCII (a textColumn's `raw`), else null. */
function asciiTitle([bytes, offsets, valid], i) {
  if (valid && !valid[i]) return null;
  const from = offsets[i];
  const to = offsets[i + 1];
  for (let b = from; b < to; b++) if (bytes[b] >= 0x80) return null;
  return [from, to, bytes];
}

/** A search index of `titles` (years: for ties), built whole. */
export function buildSearchIndex(titles, years) {
  const index = new SearchIndex(titles, years);
  index.grow();
  return index;
}

/** Words a person leaves out of a title they search for ("lord flies", "deathly hallows 2"). */
export const FILLER_WORDS = new Set(["the", "a", "an", "of", "and", "part", "in", "on", "to", "for", "at", "vol"]);

/**
 * Up to `limit` point indices whose title matches `query`: titles that start
 * with it first, then titles with a word that starts with it, then any
 * substring, then titles in which every word of the query starts a word, in
 * any order (its filler words, FILLER_WORDS, may be missing from the title
 * when it has others); ties by title, then year, then the map's order.
 *
 * Each kind of match is one scan of the index's text, and a kind is scanned only while the kinds before it
 * have not filled the `limit`: the first letter typed, which many titles start with, costs one scan.
 */
export function searchTitles(index, query, limit = 8) {
  index.grow();
  const q = normalizeTitle(query);
  if (!q || limit < 1) return [];
  const words = q.split(" ");
  const kept = words.filter((w) => !FILLER_WORDS.has(w));
  const needed = (kept.length ? kept : words).map((w) => " " + w);
  const { text, starts, years } = index;
  const best = []; // [rank, key, year, entry], best first, at most `limit`
  const seen = new Set();
  const before = (a, b) => a[0] - b[0] || (a[1] === b[1] ? 0 : a[1].localeCompare(b[1])) || a[2] - b[2] || a[3] - b[3];
  const offer = (rank, e, key) => {
    seen.add(e);
    const year = Number.isFinite(years[e]) ? years[e] : 0;
    const item = [rank, key, year, e];
    if (best.length === limit && before(item, best[limit - 1]) >= 0) return;
    let at = best.length;
    while (at > 0 && before(item, best[at - 1]) < 0) at--;
    best.splice(at, 0, item);
    if (best.length > limit) best.pop();
  };
  const full = (rank) => best.length === limit && best[limit - 1][0] <= rank;
  // The entries whose key holds `needle` and that no earlier kind matched: fn(entry, position of the match in
  // the text) for each match until it returns anything but false (then on to the next entry).
  const scan = (needle, fn) => {
    for (let pos = text.indexOf(needle); pos >= 0;) {
      const e = index.entryAt(pos + (needle[0] === "\n" ? 1 : 0));
      const next = seen.has(e) || fn(e, pos) !== false ? starts[e + 1] - 1 : pos + 1;
      pos = text.indexOf(needle, Math.max(pos + 1, next));
    }
  };
  scan(`\n${q}`, (e) => { // starts with it (rank 1), or is it (rank 0)
    const key = index.key(e);
    offer(key === q ? 0 : 1, e, key);
  });
  if (!full(1)) scan(` ${q}`, (e) => offer(2, e, index.key(e))); // a word starts with it
  if (!full(2)) scan(q, (e) => offer(3, e, index.key(e))); // anywhere
  if (!full(3)) {
    const first = needed[0].slice(1);
    scan(first, (e, pos) => { // every word of the query starts a word of the title, in any order
      if (text[pos - 1] !== " " && text[pos - 1] !== "\n") return false; // inside a word: look further on
      const key = ` ${index.key(e)}`;
      if (needed.every((w) => key.includes(w))) offer(4, e, key.slice(1));
    });
  }
  return best.map((item) => item[3]);
}

/** The poster id kept in the URL hash (`#poster=1995/rob_roy`), or null. */
export function posterFromHash(hash) {
  const match = (hash || "").match(/^#?(?:.*&)?poster=([^&]*)/);
  if (!match) return null;
  try {
    return decodeURIComponent(match[1]) || null;
  } catch {
    return null;
  }
}

export function hashForPoster(id) {
  return id ? `#poster=${encodeURIComponent(id).replace(/%2F/g, "/")}` : "";
}

/** The decade of a year (1995 -> 1990), or null. */
export function decadeOf(year) {
  return Number.isFinite(year) ? Math.floor(year / 10) * 10 : null;
}

/**
 * A stable colour per decade from `palette` (the page passes d3's schemeTableau10, a palette made
 * to be told apart): the decades of the map's years in order, so neighbouring decades differ.
 */
export function decadeColour(year, palette, firstDecade = 1900) {
  const decade = decadeOf(year);
  if (decade === null) return "#888888";
  const slot = Math.round((decade - firstDecade) / 10) % palette.length;
  return palette[(slot + palette.length) % palette.length];
}

/** The decades from the year range [lo, hi]: [1990, 2000, 2010] for [1995, 2016]. */
export function decadesOf(lo, hi) {
  const out = [];
  if (lo === null || hi === null) return out;
  for (let d = decadeOf(lo); d <= decadeOf(hi); d += 10) out.push(d);
  return out;
}

/** The year filter from two fields' texts: a range typed backwards is read the right way round. */
export function yearRange(fromText, toText) {
  const from = Number.parseInt(fromText, 10);
  const to = Number.parseInt(toText, 10);
  const lo = Number.isFinite(from) ? from : -Infinity;
  const hi = Number.isFinite(to) ? to : Infinity;
  return lo <= hi ? { from: lo, to: hi, swapped: false } : { from: hi, to: lo, swapped: true };
}

/** Whether a key press in `element` belongs to it (text typed in a field) rather than to the map. */
export function keepsKeys(element) {
  if (!element || element.tagName !== "INPUT") return element?.tagName === "TEXTAREA" || !!element?.isContentEditable;
  return !["checkbox", "radio", "button", "submit", "reset", "range", "color"].includes(element.type);
}

/** Whether a year passes the [from, to] filter; a poster with no year always passes. */
/**
 * Whether a poster of `year` shows under the year filter [from, to]. A poster with no year shows only
 * while no year is filtered (-Infinity, Infinity), or when the filter is "no year" (NaN, NaN), which shows
 * only those.
 */
export function inYearRange(year, from, to) {
  if (Number.isNaN(from) && Number.isNaN(to)) return !Number.isFinite(year);
  if (!Number.isFinite(year)) return from === -Infinity && to === Infinity;
  return year >= from && year <= to;
}

/** [min, max] of the years (NaN or null for unknown), or [null, null]. */
export function yearExtent(years) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const year of years) {
    if (Number.isFinite(year)) {
      lo = Math.min(lo, year);
      hi = Math.max(hi, year);
    }
  }
  return lo === Infinity ? [null, null] : [lo, hi];
}

/**
 * The world rectangle visible through a d3 zoom transform {x, y, k} on a
 * width x height viewport, grown by `margin` world units on each side.
 */
export function visibleWorld(transform, width, height, margin = 0) {
  const { x, y, k } = transform;
  return {
    x0: (0 - x) / k - margin,
    y0: (0 - y) / k - margin,
    x1: (width - x) / k + margin,
    y1: (height - y) / k + margin,
  };
}

// Numbers in Float32Array: 4 bytes a poster each (at 1,000,000 posters, 4 MB a column saved on Float64).
// Years and versions are whole numbers far below 2^24, and positions (5 decimals, within [-1.01, 1.01])
// keep their 5 decimals (rounded, as the export writes them).
function floats(values, n) {
  if (values instanceof Float32Array) return values; // format 3's, read straight into these
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = values[i] ?? NaN;
  return out;
}

/**
 * The map's columns (format 2's in data.json, or format 3's table read by columnsFromTable) as arrays a
 * renderer can walk fast:
 * typed arrays for numbers (NaN for a missing year), plain arrays for text. The posters' places are not
 * among them: readPlaces gives those, for the layouts (app.js makeLayout), which keep them and no one else.
 */
export function readColumns(columns, meta) {
  const n = columns.id.length;
  const num = (values) => floats(values, n);
  const k = meta.neighbors || 0;
  return {
    n, k, id: columns.id, year: num(columns.year), version: num(columns.version),
    // Null where the titles are in files of their own (format 3's meta.table.titles): read by TileTitles.
    title: !columns.title ? null : columns.title.textColumn ? columns.title.withNullAs("")
      : columns.title.map((t) => (t === null || t === undefined ? "" : String(t))),
    aspect: num(columns.aspect),
    // Without the columns (format 3), the near files' tiles are read when shown, into `near` (see similarOf).
    neighbors: columns.neighbors ? Int32Array.from(columns.neighbors) : null,
    similarity: columns.similarity ? Float32Array.from(columns.similarity) : null,
    near: new Map(),
    thumb: columns.thumb || null, image: columns.image || null, page: columns.page || null,
    // Int16: validateMap keeps cluster and region numbers below LIMITS.clusters (2 bytes a poster, not 4).
    cluster: columns.cluster ? Int16Array.from(columns.cluster, (c) => (Number.isInteger(c) ? c : -1)) : null,
    region: columns.region ? Int16Array.from(columns.region, (c) => (Number.isInteger(c) ? c : -1)) : null,
    original: columns.original || null, categories: readCategories(meta, columns, n),
    height: columns.height ? num(columns.height) : null, // the full image's, px (NaN: unknown)
  };
}

/** A path from a template such as `assets/thumbs/{id}.jpg`, unless the column names another. */
export function pathFor(template, column, i, id) {
  const own = column ? column[i] : null;
  return own ?? template.replaceAll("{id}", id);
}

/**
 * Whether a poster is drawn from an image smaller than its size on screen:
 * `sourcePx` is its height in the image it was drawn from, `screenPx` its
 * height on screen (device pixels), `capPx` the largest image there is of it.
 */
export function drawnEnlarged(sourcePx, screenPx, capPx) {
  return sourcePx < screenPx * 0.99 && sourcePx < capPx * 0.99;
}

/**
 * The largest image there is of a poster whose thumbnail is `thumbPx` tall: its full image, when the map
 * gives its height (`heightPx`, NaN for unknown) and it is more than 5% taller, else the thumbnail. A full
 * image of unknown height counts as larger (Infinity): it may be.
 */
export function largestImage(thumbPx, heightPx) {
  if (!Number.isFinite(heightPx)) return Infinity;
  return heightPx > thumbPx * 1.05 ? heightPx : thumbPx;
}

/**
 * Which full posters a view loads, and at what height: `candidates` ({i, onScreen, aspect, height, distance}:
 * its height on screen and its full image's, device px, and its distance from the view's centre), nearest
 * first, each decoded at the step of √2 at or above its height on screen (256, 362, 512, 724, 1024 px...:
 * at most twice the pixels shown, and a few sizes to share between zooms; no taller than its full image),
 * while they hold at most `budget` pixels (the nearest always) and number at most `most`.
 * A Map: poster -> height.
 */
export function fullPostersWanted(candidates, budget, most) {
  const chosen = new Map();
  let pixels = 0;
  for (const c of [...candidates].sort((a, b) => a.distance - b.distance)) {
    const step = Math.round(2 ** (Math.ceil(2 * Math.log2(c.onScreen)) / 2)); // 256, 362, 512, 724, 1024...
    const height = Math.min(step, Number.isFinite(c.height) ? c.height : Infinity);
    const size = height * height * c.aspect;
    if (chosen.size >= most || (chosen.size && pixels + size > budget)) break;
    chosen.set(c.i, height);
    pixels += size;
  }
  return chosen;
}

/** The zoom transform that centres world point (x, y) at scale k in a width x height view. */
export function centreOn(x, y, k, width, height) {
  return { x: width / 2 - x * k, y: height / 2 - y * k, k };
}

// -- clusters and selections ---------------------------------------------------------------

/**
 * What the URL hash keeps: `#poster=ID`, `#cluster=3`, `#region=1`, `#lasso=tsne:x,y;x,y;...` (a
 * polygon in the layout's data coordinates), joined with `&`. Anything unreadable is left out.
 */
export function parseHash(hash) {
  const out = {
    poster: posterFromHash(hash), cluster: null, region: null, lasso: null, layout: null, years: null, colour: null,
    only: null, // {name, value}: show only the posters whose category `name` is `value` ("" for none)
    unreadable: [], // what the hash names in a way that cannot be read ("cluster=x", a broken lasso)
  };
  const unreadable = (key, value) => out.unreadable.push(`${key}=${value.length > 24 ? `${value.slice(0, 24)}…` : value}`);
  for (const part of (hash || "").replace(/^#/, "").split("&")) {
    const [key, value = ""] = part.split(/=(.*)/s);
    if (key === "cluster" || key === "region") {
      if (/^\d{1,6}$/.test(value)) out[key] = Number(value);
      else unreadable(key, value);
    }
    if (key === "layout") {
      if (/^[a-z]{1,10}$/.test(value)) out.layout = value;
      else unreadable(key, value);
    }
    if (key === "colour") {
      const name = value.startsWith("category:") ? decoded(value.slice(9)) : null;
      if (value === "decades" || value === "clusters") out.colour = value;
      else if (name) out.colour = `category:${name}`;
      else unreadable(key, value);
    }
    if (key === "only") {
      // only=NAME:VALUE, each part URI-encoded; an empty VALUE: the posters with no value
      const at = value.indexOf(":");
      const name = at > 0 ? decoded(value.slice(0, at)) : null;
      const shown = at > 0 ? decoded(value.slice(at + 1)) : null;
      if (name && shown !== null) out.only = { name, value: shown };
      else unreadable(key, value);
    }
    if (key === "years") {
      // years=1990..1999; an open end is left empty (years=1990.. shows 1990 and after); years=none shows
      // only the posters with no year.
      if (value === "none") {
        out.years = [NaN, NaN];
        continue;
      }
      const match = value.match(/^(\d{1,4})?\.\.(\d{1,4})?$/);
      const from = match?.[1] === undefined ? -Infinity : Number(match[1]);
      const to = match?.[2] === undefined ? Infinity : Number(match[2]);
      if (match && (match[1] || match[2]) && from <= to) out.years = [from, to];
      else unreadable(key, value);
    }
    if (key === "lasso") {
      const match = value.match(/^([a-z]{1,10}):(.*)$/);
      if (!match) {
        unreadable(key, value);
        continue;
      }
      const points = [];
      const pairs = match[2].split(";", 2 * LIMITS.lasso + 1);
      for (const pair of pairs) {
        const [x, y] = pair.split(",").map(Number);
        if (!Number.isFinite(x) || !Number.isFinite(y)) {
          points.length = 0;
          break;
        }
        points.push(x, y);
      }
      // A hand-drawn lasso is thinned to LIMITS.lasso points (see clusters.js): more is no permalink.
      if (points.length >= 6 && points.length <= 2 * LIMITS.lasso) out.lasso = { layout: match[1], points };
      else unreadable(key, value);
    }
  }
  return out;
}

/**
 * The hash that names a state of the page, read back by parseHash: the layout (t-SNE, the first, is left
 * out), the colouring, the years shown, the selection (a cluster, a region or a lasso) and the poster.
 */
export function makeHash({ poster = null, cluster = null, region = null, lasso = null, layout = null, colour = null,
  years = null, only = null } = {}) {
  const parts = [];
  if (layout && layout !== "tsne") parts.push(`layout=${layout}`);
  if (colour && colour.startsWith("category:")) parts.push(`colour=category:${encodeURIComponent(colour.slice(9))}`);
  else if (colour) parts.push(`colour=${colour}`);
  if (only) parts.push(`only=${encodeURIComponent(only.name)}:${encodeURIComponent(only.value)}`);
  if (years && Number.isNaN(years[0]) && Number.isNaN(years[1])) parts.push("years=none");
  else if (years && (Number.isFinite(years[0]) || Number.isFinite(years[1]))) {
    parts.push(`years=${Number.isFinite(years[0]) ? years[0] : ""}..${Number.isFinite(years[1]) ? years[1] : ""}`);
  }
  if (cluster !== null && cluster !== undefined) parts.push(`cluster=${cluster}`);
  if (region !== null && region !== undefined) parts.push(`region=${region}`);
  if (lasso) {
    const pairs = [];
    for (let i = 0; i + 1 < lasso.points.length; i += 2) {
      pairs.push(`${+lasso.points[i].toFixed(4)},${+lasso.points[i + 1].toFixed(4)}`);
    }
    parts.push(`lasso=${lasso.layout}:${pairs.join(";")}`);
  }
  const hash = parts.join("&");
  const p = hashForPoster(poster).slice(1);
  return parts.length || p ? `#${[hash, p].filter(Boolean).join("&")}` : "";
}

/** Whether (x, y) is inside the polygon `points` ([x0, y0, x1, y1, ...], closed implicitly). */
export function pointInPolygon(x, y, points) {
  let inside = false;
  const n = points.length;
  for (let i = 0, j = n - 2; i < n; j = i, i += 2) {
    const xi = points[i];
    const yi = points[i + 1];
    const xj = points[j];
    const yj = points[j + 1];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** [x0, y0, x1, y1]: the bounding box of the points [x0, y0, x1, y1, ...] (a polygon's, a cluster's). */
export function boxOf(points) {
  const box = [Infinity, Infinity, -Infinity, -Infinity];
  for (let i = 0; i + 1 < points.length; i += 2) {
    box[0] = Math.min(box[0], points[i]);
    box[1] = Math.min(box[1], points[i + 1]);
    box[2] = Math.max(box[2], points[i]);
    box[3] = Math.max(box[3], points[i + 1]);
  }
  return box;
}

/**
 * The indices i in [from, to), ascending, whose point (xs[i], ys[i]) is inside the polygon
 * (its bounding box `box` first: the page calls this a chunk of posters per frame).
 */
export function insidePolygon(xs, ys, points, from = 0, to = xs.length, box = boxOf(points)) {
  const [x0, y0, x1, y1] = box;
  const out = [];
  for (let i = from; i < to; i++) {
    const x = xs[i];
    const y = ys[i];
    if (x >= x0 && x <= x1 && y >= y0 && y <= y1 && pointInPolygon(x, y, points)) out.push(i);
  }
  return out;
}

/**
 * A convex outline [x0, y0, ...] moved `pad` further from its centre (cx, cy) at every vertex: drawn
 * round the posters of a cluster rather than through the centres of the outermost ones.
 */
export function grownOutline(points, cx, cy, pad) {
  const out = [];
  for (let i = 0; i + 1 < points.length; i += 2) {
    const dx = points[i] - cx;
    const dy = points[i + 1] - cy;
    const d = Math.hypot(dx, dy) || 1;
    out.push(points[i] + (dx / d) * pad, points[i + 1] + (dy / d) * pad);
  }
  return out;
}

/** A free-hand path with points closer than `minDist` to the last one kept dropped. */
export function simplifyPath(points, minDist) {
  const out = [];
  for (let i = 0; i + 1 < points.length; i += 2) {
    const n = out.length;
    if (n && Math.hypot(points[i] - out[n - 2], points[i + 1] - out[n - 1]) < minDist) continue;
    out.push(points[i], points[i + 1]);
  }
  return out;
}

/**
 * [lo, hi] of values[i] for each i of `members` (every i when null), NaN left out; [Infinity, -Infinity]
 * when there is none. A loop over typed arrays: a selection may hold 300,000 posters.
 */
export function extentOf(values, members = null) {
  let lo = Infinity;
  let hi = -Infinity;
  const n = members ? members.length : values.length;
  for (let r = 0; r < n; r++) {
    const v = values[members ? members[r] : r];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

/** The mean point [x, y] of `indices` (a selection's centre). */
export function centreOf(indices, xs, ys) {
  let mx = 0;
  let my = 0;
  for (let r = 0; r < indices.length; r++) {
    mx += xs[indices[r]];
    my += ys[indices[r]];
  }
  return [mx / (indices.length || 1), my / (indices.length || 1)];
}

/** The squared distance of each of `indices` to their mean point. */
function spread(indices, xs, ys) {
  const [mx, my] = centreOf(indices, xs, ys);
  const d = new Float64Array(indices.length); // a loop, not from() with a function: 4x faster at 300,000
  for (let r = 0; r < indices.length; r++) {
    const i = indices[r];
    d[r] = (xs[i] - mx) ** 2 + (ys[i] - my) ** 2;
  }
  return d;
}

const RADIX_FROM = 4096;

/** `indices` (at positions r) ordered by d[r] (never negative), ties by index. */
function orderBy(indices, d, positions) {
  let ascending = true; // positions and the indices at them both ascending: a stable sort keeps ties by index
  for (let k = 1; k < positions.length && ascending; k++) {
    ascending = positions[k - 1] < positions[k] && indices[positions[k - 1]] < indices[positions[k]];
  }
  // The radix sort's four passes over 65,536 counts cost more than a comparator below a few thousand.
  const sorted = ascending && positions.length > RADIX_FROM ? radixOrder(positions, d)
    : positions.sort((a, b) => d[a] - d[b] || indices[a] - indices[b]);
  const out = new Int32Array(sorted.length);
  for (let k = 0; k < sorted.length; k++) out[k] = indices[sorted[k]];
  return out;
}

/**
 * `positions` reordered by d[r] (a Float64Array of values >= 0), stably: four passes of a radix sort over
 * the values' bits, which for numbers >= 0 sort as the numbers do. Sorting 300,000 with a comparator took
 * 150 ms, a frame too long, for a lasso's export.
 */
export function radixOrder(positions, d) {
  const words = new Uint32Array(d.buffer, d.byteOffset, 2 * d.length); // little-endian: low word first
  let from = Int32Array.from(positions);
  let to = new Int32Array(from.length);
  const counts = new Int32Array(65537);
  for (let pass = 0; pass < 4; pass++) {
    const word = pass >> 1;
    const shift = 16 * (pass & 1);
    counts.fill(0);
    for (let k = 0; k < from.length; k++) counts[((words[2 * from[k] + word] >>> shift) & 0xffff) + 1] += 1;
    for (let b = 0; b < 65536; b++) counts[b + 1] += counts[b];
    for (let k = 0; k < from.length; k++) {
      const r = from[k];
      to[counts[(words[2 * r + word] >>> shift) & 0xffff]++] = r;
    }
    [from, to] = [to, from];
  }
  return from;
}

/** `indices` ordered most central first: by distance to their mean point (ties: lower index first). */
export function centralOrder(indices, xs, ys) {
  const positions = new Int32Array(indices.length);
  for (let r = 0; r < positions.length; r++) positions[r] = r;
  return orderBy(indices, spread(indices, xs, ys), positions);
}

/** The first `k` of centralOrder(indices, xs, ys), without sorting them all (a selection may be 100,000). */
export function mostCentral(indices, xs, ys, k) {
  if (indices.length <= k) return centralOrder(indices, xs, ys);
  const d = spread(indices, xs, ys);
  const limit = kthSmallest(d.slice(), k - 1);
  const near = [];
  for (let r = 0; r < indices.length; r++) if (d[r] <= limit) near.push(r);
  return orderBy(indices, d, Int32Array.from(near)).slice(0, k);
}

/**
 * The value that would sit at `k` (0-based) if `values` were sorted ascending, found in linear time on
 * average (Hoare's selection, middle pivot); `values` is reordered. A region of 50,000 posters: 1 ms,
 * where sorting them all took 20.
 */
export function kthSmallest(values, k) {
  let lo = 0;
  let hi = values.length - 1;
  while (lo < hi) {
    const pivot = values[(lo + hi) >> 1];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (values[i] < pivot) i++;
      while (values[j] > pivot) j--;
      if (i <= j) {
        const t = values[i];
        values[i] = values[j];
        values[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return values[k];
  }
  return values[k];
}

/** A URI component decoded, or null when it is not one ("%E9" alone). */
function decoded(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return null;
  }
}

// -- categories: metadata beyond the year (stage 3's categories.py) -------------------------

/**
 * The map's categories, from meta.categories and columns.categories (validateMap checked them): each
 * {name, source, values, sizes, none, codes}, codes[i] an index into values or -1 for none.
 */
export function readCategories(meta, columns, n) {
  const about = Array.isArray(meta.categories) ? meta.categories : [];
  return about.map((c, k) => {
    const codes = new Int16Array(n).fill(-1);
    const given = columns.categories[k];
    for (let i = 0; i < n; i++) codes[i] = given[i];
    return { name: c.name, source: c.source, values: c.values.map(String), sizes: c.sizes || [], none: c.none || 0,
      others: Number.isInteger(c.others) ? c.others : 0, codes };
  });
}

/** The category that colouring `colouring` ("category:NAME") names, or null. */
export function categoryOf(categories, colouring) {
  if (!colouring || !colouring.startsWith("category:")) return null;
  return categories.find((c) => c.name === colouring.slice(9)) || null;
}

/**
 * A colour per value of a category, as per cluster (clusterColour); grey for "no value", a lighter grey
 * for "other" (the rarer values counted as one, always last).
 */
export function categoryColour(category, code, palette) {
  if (code < 0) return "#888888";
  if (category.others > 0 && code === category.values.length - 1) return "#c8c8c8";
  return clusterColour(code, palette);
}

/** Poster i's categories as [name, value] (none left out), the version's too unless `withVersion` is false. */
export function categoryValues(categories, i, withVersion = true) {
  const out = [];
  for (const c of categories) {
    if (!withVersion && c.source === "version") continue;
    const code = c.codes[i];
    if (code >= 0) out.push([c.name, c.values[code]]);
  }
  return out;
}

/** A colour per cluster: the palette's first, then hues spaced by the golden angle; null for none (-1). */
export function clusterColour(c, palette) {
  if (!(c >= 0)) return null;
  if (c < palette.length) return palette[c];
  return `hsl(${Math.round((c * 137.508) % 360)}, 65%, 55%)`;
}

/**
 * One CSV field (RFC 4180): quoted when it holds a comma, quote or line break. A text that a
 * spreadsheet would run as a formula (=, +, -, @, tab, carriage return first) gets a leading '.
 */
export function csvField(value) {
  let text = value === null || value === undefined || (typeof value === "number" && !Number.isFinite(value))
    ? "" : String(value);
  // Only a number is safe as it is: any other value (a title that is a list, say) is text to a spreadsheet.
  if (typeof value !== "number" && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** The columns of a selection's CSV (README: "Export"). */
export const EXPORT_COLUMNS = ["poster_id", "title", "year", "cluster", "x", "y", "distance", "image", "original",
  "page"];

/** The export's header: EXPORT_COLUMNS, then a column per category (renamed "NAME (category)" if it clashes). */
export function exportHeader(categories) {
  const taken = new Set(EXPORT_COLUMNS);
  return [...EXPORT_COLUMNS, ...categories.map((c) => (taken.has(c.name) ? `${c.name} (category)` : c.name))];
}

/**
 * A selection's rows for exportHeader(P.categories), in the order of `order` (indices): `place(i)` the
 * poster's [x, y] on the layout it was made on, in data coordinates, `distance` from its centre (their
 * mean) in the same units, `image(i)` the image's path relative to the page (decoded: a file name, not a
 * URL), the file it came from (P.original: a folder's image; empty for a scraped one), `page(i)` its page
 * on the archive, then its value of each category (empty for none). `centre`: the whole selection's mean
 * place, in data coordinates (`order` may be a slice of it: an export is made a slice at a time). `title(i, r)`:
 * poster i's title, the r-th of `order`.
 */
export function selectionRows(order, P, place, image, page, centre, title = (i) => P.title[i]) {
  const [mx, my] = centre;
  const round = (v) => Math.round(v * 1e5) / 1e5;
  const categories = P.categories || [];
  return Array.from(order, (i, r) => {
    const [x, y] = place(i);
    return [
      P.id[i], title(i, r), Number.isFinite(P.year[i]) ? P.year[i] : "", P.cluster ? P.cluster[i] : "",
      round(x), round(y), round(Math.hypot(x - mx, y - my)), decodedPath(image(i)),
      P.original ? P.original[i] ?? "" : "", page(i),
      ...categories.map((c) => (c.codes[i] >= 0 ? c.values[c.codes[i]] : "")),
    ];
  });
}

/** A URL path as the file name it encodes (`%C3%A9t%C3%A9_2020/x.jpg` -> `été_2020/x.jpg`). */
export function decodedPath(path) {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

export function toCsv(header, rows) {
  return csvLines([header, ...rows]);
}

/** CSV lines of `rows`, each ended by CRLF: a slice of a file. */
export function csvLines(rows) {
  return rows.map((row) => row.map(csvField).join(",") + "\r\n").join("");
}

/**
 * A function from a path written in the data file to where it is under the page's folder, as a URL path
 * relative to the page (relativeToPage of resolveInFolder), or null where resolveInFolder refuses it. A
 * plain path (letters, digits and "_.~-", with "/" between names other than "." and "..") needs no URL
 * parsing: it is the data file's folder and then the path, as the URL rules make it. An export of 300,000
 * posters spent 2.3 of its 7 s parsing their URLs.
 */
export function folderPaths(dataUrl, pageUrl) {
  const folder = new URL(".", pageUrl).href;
  const dataFolder = new URL(".", dataUrl).href;
  const prefix = dataFolder.startsWith(folder) ? dataFolder.slice(folder.length) : null;
  return (rel) => {
    if (prefix !== null && typeof rel === "string" && PLAIN_PATH.test(rel)) return prefix + rel;
    try {
      return relativeToPage(resolveInFolder(rel, dataUrl, pageUrl), pageUrl);
    } catch {
      return null;
    }
  };
}

const PLAIN_PATH = /^(?!\.\.?(?:\/|$))(?!.*\/\.\.?(?:\/|$))[\w.~-]+(?:\/[\w.~-]+)*$/;

/** `url` relative to the folder of `pageUrl` (both absolute; `url` inside that folder). */
export function relativeToPage(url, pageUrl) {
  const folder = new URL(".", pageUrl).href;
  return url.startsWith(folder) ? url.slice(folder.length) : url;
}

// -- what a data file may hold ---------------------------------------------------------------

/** Bounds on what the page draws and lists, whatever a (doctored) data file says. */
export const LIMITS = Object.freeze({
  posters: 5_000_000, neighbors: 100, levels: 16, clusters: 10_000, outline: 4_096, lasso: 1_000, pairs: 2_000,
  categories: 32, values: 64,
});

/** A map file's check failed: one message, naming `what` is wrong, for every check below. */
function fail(what) {
  throw new Error(`this is not a map file stage 3 wrote (${what}); make it again with get_data_visu.py`);
}

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * Format 3 keeps its rows in a table of Arrow files (stage 3's contracts/maptable.py says which), listed in
 * `meta.table.tiles` as [z, x, y, rows]: the list, checked (an Error naming what is wrong).
 */
export function tableTiles(meta) {
  const about = meta && meta.table;
  if (!about || typeof about !== "object" || typeof about.path !== "string") fail("no meta.table");
  const { tiles, rows } = about;
  if (!Number.isInteger(rows) || rows < 1 || rows > LIMITS.posters) fail(`meta.table.rows is ${JSON.stringify(rows)}`);
  if (!Array.isArray(tiles) || !tiles.length || tiles.length > rows) fail("meta.table.tiles");
  let total = 0;
  for (const t of tiles) {
    if (!Array.isArray(t) || t.length !== 4 || !t.every(Number.isInteger) || t[0] < 0 || t[0] > LIMITS.levels
      || t[1] < 0 || t[2] < 0 || t[1] >= 2 ** t[0] || t[2] >= 2 ** t[0] || t[3] < 1) {
      fail(`meta.table.tiles holds ${JSON.stringify(t)}`);
    }
    total += t[3];
  }
  if (total !== rows) fail(`meta.table.tiles hold ${total} rows, not ${rows}`);
  for (const key of ["near", "titles", "search"]) {
    if (about[key] !== undefined && typeof about[key] !== "string") fail(`meta.table.${key}`);
  }
  if (about.search !== undefined && !(Number.isInteger(about.search_rows) && about.search_rows >= 1)) {
    fail(`meta.table.search_rows is ${JSON.stringify(about.search_rows)}`);
  }
  return tiles;
}

// The table's columns and their Arrow types, as stage 3's contracts/maptable.py writes them; neighbors,
// similarity and categories are fixed-size lists of that type per poster. Other columns are left unread.
const TABLE_TYPES = {
  index: "Int32", id: "Utf8", title: "Utf8", year: "Int32", version: "Int32", x: "Float64", y: "Float64",
  gx: "Float64", gy: "Float64", aspect: "Float32", neighbors: "Int32", similarity: "Float32", cluster: "Int32",
  region: "Int32", thumb: "Utf8", image: "Utf8", page: "Utf8", original: "Utf8", height: "Int32",
  categories: "Int16",
};
const TABLE_LISTS = { neighbors: Int32Array, similarity: Float32Array, categories: Int16Array };

/** Whether `v` holds a list of values: an array, or a typed array (a column read from the table). */
export const isList = (v) => Array.isArray(v) || (ArrayBuffer.isView(v) && !(v instanceof DataView));

const utf8 = new TextDecoder();

/**
 * The text of UTF-8 `bytes` [from, to). A short ASCII text (an id, most titles) is made from its char codes:
 * in Chromium that is 2-5 times faster than TextDecoder for strings this short, which an export of 300,000
 * posters' ids and titles felt (1 s of 7).
 */
function textOf(bytes, from, to) {
  if (to - from > 256) return utf8.decode(bytes.subarray(from, to));
  for (let k = from; k < to; k++) if (bytes[k] > 127) return utf8.decode(bytes.subarray(from, to));
  return String.fromCharCode.apply(null, bytes.subarray(from, to));
}

/**
 * A text column kept as UTF-8 bytes, one string made only when asked for: `column[i]` is poster i's text
 * (null where the table has null, or `none`), `column.length` the number of posters, and it iterates, maps
 * and filters as an array does. At 1,000,000 posters an id and a title held as strings take about 90 bytes
 * a poster with their array's slots; here they take their bytes and 4 for an offset. `offsets` has one
 * more entry than there are posters; `valid` (or null: none is null) a byte a poster.
 */
export function textColumn(bytes, offsets, valid = null, none = null) {
  const n = offsets.length - 1;
  const at = (i) => (valid && !valid[i] ? none : textOf(bytes, offsets[i], offsets[i + 1]));
  const position = (key) => {
    if (typeof key !== "string") return -1;
    const c = key.charCodeAt(0);
    if (c < 48 || c > 57) return -1;
    const i = Number(key);
    return Number.isInteger(i) && i < n && String(i) === key ? i : -1;
  };
  let table = null; // indexOf's: an open-addressing hash table of poster numbers (see prepareIndex)
  let filled = 0;
  const hash = (from, to, of) => {
    let h = 0x811c9dc5;
    for (let b = from; b < to; b++) h = Math.imul(h ^ of[b], 0x01000193);
    return h >>> 0;
  };
  const own = {
    length: n,
    textColumn: true,
    /** [bytes, offsets, valid]: the column itself, for readers that work on bytes (SearchIndex). */
    raw: () => [bytes, offsets, valid],
    /** Put up to `count` more posters in indexOf's table (the page does it when idle); true once all are. */
    prepareIndex(count = Infinity) {
      if (!table) table = new Int32Array(2 ** Math.ceil(Math.log2(2 * n + 2))).fill(-1);
      const stop = Math.min(n, filled + count);
      for (let i = filled; i < stop; i++) {
        if (valid && !valid[i]) continue;
        let h = hash(offsets[i], offsets[i + 1], bytes) & (table.length - 1);
        while (table[h] >= 0) h = (h + 1) & (table.length - 1);
        table[h] = i;
      }
      filled = stop;
      return filled === n;
    },
    /** The first poster whose text is `text`, or -1: a lookup of 8 bytes a poster, not a Map of strings. */
    indexOf(text) {
      if (typeof text !== "string") return -1;
      own.prepareIndex();
      const want = new TextEncoder().encode(text);
      for (let h = hash(0, want.length, want) & (table.length - 1); table[h] >= 0; h = (h + 1) & (table.length - 1)) {
        const i = table[h];
        const at = offsets[i];
        if (offsets[i + 1] - at !== want.length) continue;
        let same = true;
        for (let b = 0; b < want.length && same; b++) same = bytes[at + b] === want[b];
        if (same) return i;
      }
      return -1;
    },
    /** The same column with `value` in place of null. */
    withNullAs: (value) => textColumn(bytes, offsets, valid, value),
    /** The first poster whose text is null (unless `nulls`) or empty (unless `empty`), or -1. */
    firstBad(nulls, empty) {
      for (let i = 0; i < n; i++) {
        if (valid && !valid[i] ? !nulls : !empty && offsets[i + 1] === offsets[i]) return i;
      }
      return -1;
    },
  };
  return new Proxy([], {
    get(target, key, receiver) {
      const i = position(key);
      if (i >= 0) return at(i);
      if (key === Symbol.iterator) return function* texts() { for (let j = 0; j < n; j++) yield at(j); };
      if (Object.hasOwn(own, key)) return own[key];
      return Reflect.get(target, key, receiver);
    },
    has: (target, key) => position(key) >= 0 || Reflect.has(target, key),
  });
}

// The Utf8 column of every part (`pieces`: [index, Arrow vector] each) as one textColumn in the map's order:
// each poster's bytes copied to its place, nothing decoded.
function packText(pieces, rows) {
  const lengths = new Int32Array(rows);
  const valid = new Uint8Array(rows);
  const each = (fn) => {
    for (const [index, vector] of pieces) {
      let first = 0;
      for (const data of vector.data) {
        const { valueOffsets: off, values, offset, length, nullBitmap } = data;
        for (let r = 0; r < length; r++) {
          const bit = offset + r;
          const ok = !data.nullCount || !nullBitmap || nullBitmap.length === 0 || (nullBitmap[bit >> 3] >> (bit & 7)) & 1;
          fn(index[first + r], ok, values, off[bit], off[bit + 1]);
        }
        first += length;
      }
    }
  };
  each((i, ok, values, b0, b1) => {
    valid[i] = ok ? 1 : 0;
    lengths[i] = ok ? b1 - b0 : 0;
  });
  const offsets = new Int32Array(rows + 1);
  for (let i = 0; i < rows; i++) offsets[i + 1] = offsets[i] + lengths[i];
  const bytes = new Uint8Array(offsets[rows]);
  each((i, ok, values, b0, b1) => {
    for (let b = b0, o = offsets[i]; b < b1; b++, o++) bytes[o] = values[b];
  });
  return textColumn(bytes, offsets, valid.includes(0) ? valid : null);
}

/**
 * The map's columns from its table's parts (Arrow tables, as apache-arrow's tableFromIPC gives them, in any
 * order), in the shapes readColumns takes: numbers in Float32Arrays (NaN where the table has null: see
 * readColumns for why 32 bits keep them), text in textColumns, neighbors and similarity K per poster, categories one list per category. One check (validateMap)
 * and one reader (readColumns) then serve both formats. Throws when the parts do not hold each of `rows`
 * posters once, with the contract's columns. `tileOf` (an Int32Array of `rows`), when given, is told each
 * poster's part.
 */
export function columnsFromTable(meta, parts, rows, tileOf = null) {
  if (!parts.length) fail("the table has no files");
  const k = meta.neighbors ?? 0;
  const m = (meta.categories ?? []).length;
  const fields = parts[0].schema.fields.filter((f) => f.name in TABLE_TYPES);
  const shape = (part) => part.schema.fields.map((f) => `${f.name}:${f.type}`).join(",");
  for (const f of fields) {
    const list = f.name in TABLE_LISTS;
    const want = list ? `FixedSizeList[${f.name === "categories" ? m : k}]<${TABLE_TYPES[f.name]}>` : TABLE_TYPES[f.name];
    if (String(f.type) !== want) fail(`the table's ${f.name} is ${f.type}, not ${want}`);
  }
  const names = fields.map((f) => f.name);
  if (names[0] !== "index" || !names.includes("id")) fail("the table has no index and id columns");
  const columns = {};
  const texts = {}; // name: the parts' [index, vector], packed once every part is read
  for (const f of fields.slice(1)) {
    const name = f.name;
    if (name === "categories") columns[name] = Array.from({ length: m }, () => new Int16Array(rows).fill(-1));
    else if (name in TABLE_LISTS) columns[name] = new TABLE_LISTS[name](rows * k);
    else if (TABLE_TYPES[name] === "Utf8") texts[name] = [];
    else columns[name] = new Float32Array(rows).fill(NaN); // as readColumns keeps them: nothing to copy there
  }
  const seen = new Uint8Array(rows);
  const shape0 = shape(parts[0]);
  parts.forEach((part, p) => {
    if (shape(part) !== shape0) fail("the table's files do not have the same columns");
    const index = part.getChild("index").toArray();
    for (const i of index) {
      if (!(i >= 0 && i < rows) || seen[i]) fail(`the table holds poster ${i} twice, or past its ${rows} rows`);
      seen[i] = 1;
      if (tileOf) tileOf[i] = p;
    }
    for (const name of names.slice(1)) {
      const vector = part.getChild(name);
      const out = columns[name];
      if (name in TABLE_LISTS) {
        const size = name === "categories" ? m : k;
        const flat = vector.getChildAt(0).toArray();
        for (let r = 0; r < index.length; r++) {
          for (let j = 0; j < size; j++) {
            if (name === "categories") out[j][index[r]] = flat[r * size + j];
            else out[index[r] * size + j] = flat[r * size + j];
          }
        }
      } else if (TABLE_TYPES[name] === "Utf8") {
        texts[name].push([index, vector]);
      } else if (vector.nullCount === 0) {
        const values = vector.toArray();
        for (let r = 0; r < index.length; r++) out[index[r]] = values[r];
      } else {
        for (let r = 0; r < index.length; r++) out[index[r]] = vector.get(r) ?? NaN;
      }
    }
  });
  if (seen.some((s) => !s)) fail(`the table does not hold all ${rows} posters`);
  if (m && !columns.categories) fail("meta.categories names categories the table does not hold");
  for (const [name, pieces] of Object.entries(texts)) columns[name] = packText(pieces, rows);
  return columns;
}

/**
 * Keep the similar posters of tile `t` (`part`: an Arrow table of index, neighbors and similarity, from
 * format 3's near files) in P.near, after checking that it holds exactly the posters `members` (that tile's,
 * ascending as its rows' file lists them) and neighbours on the map. Throws, and changes nothing, when it
 * does not. At most `keep` tiles are kept: the least recently filled or asked for goes first; the tiles it
 * let go are returned.
 */
export function fillNear(P, part, members, t, keep = Infinity) {
  const k = P.k;
  const index = part.getChild("index")?.toArray();
  const near = part.getChild("neighbors");
  const sims = part.getChild("similarity");
  if (!index || !near || !sims || String(near.type) !== `FixedSizeList[${k}]<Int32>`
    || String(sims.type) !== `FixedSizeList[${k}]<Float32>`) fail("a near file without the columns of its map");
  if (index.length !== members.length || index.some((i, r) => i !== members[r])) {
    fail("a near file that does not hold the posters of its tile");
  }
  const js = near.getChildAt(0).toArray();
  const values = sims.getChildAt(0).toArray();
  for (const j of js) if (!(j >= 0 && j < P.n)) fail(`a neighbour is ${j}`);
  // Copies: not views of the file's bytes, which can then go.
  P.near.delete(t);
  P.near.set(t, { members, neighbors: Int32Array.from(js), similarity: Float32Array.from(values) });
  return letGo(P.near, keep);
}

/** `held`'s entry under `key` (a Map kept in order of use, the most recent last), marked used now. */
function usedNow(held, key) {
  const entry = held.get(key);
  if (entry !== undefined) {
    held.delete(key);
    held.set(key, entry);
  }
  return entry;
}

/** Let go of `held`'s entries (a Map in order of use) but the `keep` used last; returns the keys let go. */
function letGo(held, keep) {
  const gone = [];
  for (const key of held.keys()) {
    if (held.size <= keep) break;
    held.delete(key);
    gone.push(key);
  }
  return gone;
}

/**
 * Format 3's titles (meta.table.titles): read a tile at a time from its titles file for the posters whose
 * titles the page shows, and kept for the `keep` tiles used last, so that the page never holds every title
 * (at 1,000,000 posters about 25 MB). `tileOf[i]` is poster i's tile (its row of meta.table.tiles, `tiles`);
 * `load(t)` gives a promise of tile t's titles file as an Arrow table (index, title).
 */
export class TileTitles {
  constructor(tileOf, tiles, load, keep = 32) {
    Object.assign(this, { tileOf, tiles, load, keep });
    this.held = new Map(); // t -> {index, bytes, offsets, valid}; Map order = recency
    this.loading = new Map(); // t -> the promise of its entry
  }

  /** Poster i's title ("" for none), or null while its tile's file is not held; marks the tile used. */
  get(i) {
    const entry = usedNow(this.held, this.tileOf[i]);
    return entry ? titleIn(entry, i) : null;
  }

  /**
   * Keep tile t's titles from `part` after checking that it holds exactly that tile's posters, ascending (a
   * doctored file throws, and changes nothing); the least recently used tiles past `keep` are let go.
   */
  fill(t, part) {
    const index = part.getChild("index");
    const title = part.getChild("title");
    if (!index || !title || String(index.type) !== "Int32" || String(title.type) !== "Utf8") {
      fail("a titles file without the columns index and title");
    }
    const rows = index.toArray();
    if (rows.length !== this.tiles[t][3]) fail(`a titles file holds ${rows.length} posters, not its tile's ${this.tiles[t][3]}`);
    for (let r = 0; r < rows.length; r++) {
      if (this.tileOf[rows[r]] !== t || (r && rows[r] <= rows[r - 1])) fail("a titles file that does not hold the posters of its tile");
    }
    // Bytes and offsets, read directly (titleIn): through a textColumn's Proxy, an export of 282,584 titles
    // spent most of its time parsing each row's number back from the string key the Proxy is handed.
    const [bytes, offsets, valid] = packText([[Int32Array.from(rows, (_, r) => r), title]], rows.length).raw();
    const entry = { index: Int32Array.from(rows), bytes, offsets, valid };
    this.held.delete(t);
    this.held.set(t, entry);
    letGo(this.held, this.keep);
    return entry;
  }

  /** A promise of tile t's entry: the one held, or its file read (once, however many ask meanwhile). */
  entry(t) {
    const held = usedNow(this.held, t);
    if (held) return Promise.resolve(held);
    if (!this.loading.has(t)) {
      this.loading.set(t, this.load(t).then((part) => this.fill(t, part)).finally(() => this.loading.delete(t)));
    }
    return this.loading.get(t);
  }

  /**
   * A promise of the titles of the posters `list`, in its order ("" for none): each tile they lie in is read
   * once, at most `concurrency` at a time, and its titles taken as it comes, so that a list of more tiles
   * than are kept (a selection's export) is read whole all the same.
   */
  async of(list, { concurrency = 6 } = {}) {
    const out = new Array(list.length);
    const byTile = new Map();
    for (let r = 0; r < list.length; r++) {
      const t = this.tileOf[list[r]];
      if (!byTile.has(t)) byTile.set(t, []);
      byTile.get(t).push(r);
    }
    const pending = [...byTile.keys()];
    const worker = async () => {
      while (pending.length) {
        const t = pending.shift();
        const entry = await this.entry(t);
        for (const r of byTile.get(t)) out[r] = titleIn(entry, list[r]);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, pending.length) }, worker));
    return out;
  }
}

function titleIn({ index, bytes, offsets, valid }, i) {
  const r = lowerBound(index, i);
  return valid && !valid[r] ? "" : textOf(bytes, offsets[r], offsets[r + 1]);
}

/**
 * The posters of the table's tile `t` (each i with tileOf[i] === t), ascending, as its files list them:
 * found again when a tile's near file is read, rather than kept for every tile (4 MB at 1,000,000 posters).
 */
export function tileMembers(tileOf, t) {
  let count = 0;
  for (let i = 0; i < tileOf.length; i++) if (tileOf[i] === t) count += 1;
  const out = new Int32Array(count);
  let r = 0;
  for (let i = 0; r < count; i++) if (tileOf[i] === t) out[r++] = i;
  return out;
}

/**
 * Poster i's similar posters, `[neighbours, similarities]` (k each, most similar first), or null while they
 * are not read (format 3: its tile `tileOf[i]`'s near file). Asking keeps the tile's (see fillNear).
 */
export function similarOf(P, i, tileOf = null) {
  const k = P.k;
  if (P.neighbors) return [P.neighbors.subarray(i * k, (i + 1) * k), P.similarity.subarray(i * k, (i + 1) * k)];
  const t = tileOf ? tileOf[i] : -1;
  const part = usedNow(P.near, t);
  if (!part) return null;
  const r = lowerBound(part.members, i);
  if (part.members[r] !== i) return null;
  return [part.neighbors.subarray(r * k, (r + 1) * k), part.similarity.subarray(r * k, (r + 1) * k)];
}

/** The first position in ascending `sorted` whose value is not below `value` (its length if none is). */
function lowerBound(sorted, value) {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Check what the first view is drawn from, before the posters' columns are read: data.json's `meta` with its
 * pyramids (levels, paths, frames and presence bounded), paths and thumbnail size. validateMap checks it too.
 */
export function validateMeta(meta) {
  if (!isObject(meta)) fail("no meta");
  if (!isObject(meta.tiles) || !isObject(meta.tiles.tsne)) fail("no meta.tiles.tsne");
  if (!isObject(meta.paths) || typeof meta.paths.thumb !== "string" || typeof meta.paths.image !== "string") {
    fail("no meta.paths");
  }
  for (const [name, pyramid] of Object.entries(meta.tiles)) {
    const levels = pyramid && pyramid.levels;
    if (!Number.isInteger(levels) || levels < 1 || levels > LIMITS.levels) fail(`meta.tiles.${name}.levels`);
    if (typeof pyramid.path !== "string" || pyramid.size !== 256) fail(`meta.tiles.${name}.path or size`);
    for (const key of ["origin", "span", "slot"]) {
      if (!Number.isFinite(pyramid[key]) || Math.abs(pyramid[key]) > 4) fail(`meta.tiles.${name}.${key}`);
    }
    if (!(pyramid.span > 0) || !(pyramid.slot > 0)) fail(`meta.tiles.${name}.span or slot`);
    const present = pyramid.present;
    if (!Array.isArray(present) || present.length !== levels) fail(`meta.tiles.${name}.present`);
    present.forEach((b64, z) => {
      const bytes = Math.ceil(4 ** z / 8);
      if (typeof b64 !== "string" || b64.length > 4 * Math.ceil(bytes / 3) + 4) fail(`meta.tiles.${name}.present[${z}]`);
    });
  }
  if (meta.thumb_size !== undefined && !(Number.isInteger(meta.thumb_size) && meta.thumb_size > 0
    && meta.thumb_size <= 4096)) fail("meta.thumb_size");
  if (meta.categories !== undefined && !Array.isArray(meta.categories)) fail("meta.categories");
}

/**
 * The posters' places on each layout, in data coordinates, as Float32Arrays: {tsne: [x, y], grid: [gx, gy]
 * or null}. Format 3's columns are handed on, not copied: a layout turns them into its world units in place,
 * so that at 1,000,000 posters the page holds each place once (8 MB a layout), not twice.
 */
export function readPlaces(columns) {
  const n = columns.id.length;
  return {
    tsne: [floats(columns.x, n), floats(columns.y, n)],
    grid: columns.gx && columns.gy ? [floats(columns.gx, n), floats(columns.gy, n)] : null,
  };
}

/** The columns of a map of no posters yet (format 3's, while its table loads), as readColumns takes them. */
export function emptyColumns(meta) {
  const columns = { id: [], year: [], version: [], x: [], y: [], aspect: [], neighbors: [], similarity: [],
    categories: (meta.categories || []).map(() => []) };
  if (typeof meta.table?.titles !== "string") columns.title = [];
  if (Array.isArray(meta.clusters) && meta.clusters.length) {
    columns.cluster = [];
    columns.region = [];
  }
  return columns;
}

/**
 * Check a parsed map ({meta, columns}: format 2's data.json, or format 3's with its table read into
 * columns) before anything is built from it; throws an Error whose
 * message names the first field that is wrong. A file stage 3 wrote always passes. What is
 * bounded: the number of posters, neighbours per poster, pyramid levels and clusters and their
 * outlines (see LIMITS), and every position must lie on the map (a poster at x = 1e308 would
 * send a d3-quadtree into an endless loop, and would put every poster in one cell of a PointGrid).
 */
export function validateMap(data) {
  if (!isObject(data) || !isObject(data.meta) || !isObject(data.columns)) fail("no meta and columns");
  const { meta, columns } = data;
  validateMeta(meta);
  const ids = columns.id;
  if (!Array.isArray(ids) || ids.length === 0) fail("columns.id is not a list of posters"); // a textColumn is one
  const n = ids.length;
  if (n > LIMITS.posters) fail(`${n} posters, more than the ${LIMITS.posters} the page draws`);
  const column = (name, check, optional = true) => {
    const values = columns[name];
    if (values === undefined && optional) return;
    if (!isList(values) || values.length !== n) fail(`columns.${name} does not hold one value per poster`);
    if (values.textColumn) { // text from the table: strings or null by its type; only null and "" to look for
      const bad = values.firstBad(check(null), check(""));
      if (bad >= 0) fail(`columns.${name}[${bad}] is ${JSON.stringify(values[bad])}`);
      return;
    }
    for (let i = 0; i < n; i++) if (!check(values[i])) fail(`columns.${name}[${i}] is ${JSON.stringify(values[i])}`);
  };
  const onMap = (v) => typeof v === "number" && Math.abs(v) <= 1.01; // [-1, 1], and rounding
  const textOrNull = (v) => v === null || typeof v === "string";
  column("id", (v) => typeof v === "string" && v !== "", false);
  column("title", textOrNull, typeof meta.table?.titles === "string"); // else in the titles files (TileTitles)
  column("x", onMap, false);
  column("y", onMap, false);
  column("gx", onMap);
  column("gy", onMap);
  // None: null in format 2's JSON, NaN in a column read from format 3's table.
  const none = (v) => v === null || Number.isNaN(v);
  column("year", (v) => none(v) || Number.isInteger(v));
  column("version", (v) => none(v) || Number.isInteger(v));
  column("aspect", (v) => typeof v === "number" && v > 0 && Number.isFinite(v), false);
  // A cluster's or region's number names one of meta's lists, which hold at most LIMITS.clusters.
  column("cluster", (v) => Number.isInteger(v) && v >= -1 && v < LIMITS.clusters);
  column("region", (v) => Number.isInteger(v) && v >= -1 && v < LIMITS.clusters);
  for (const name of ["thumb", "image", "page"]) column(name, textOrNull);
  const k = meta.neighbors ?? 0;
  if (!Number.isInteger(k) || k < 0 || k > LIMITS.neighbors) fail(`meta.neighbors is ${JSON.stringify(k)}`);
  // Format 3 with near files: the similar posters are read, and checked (fillNear), when they are shown.
  const onDemand = columns.neighbors === undefined && typeof meta.table?.near === "string";
  if (!onDemand) {
    const neighbors = columns.neighbors || [];
    if (!isList(neighbors) || neighbors.length !== n * k) fail("columns.neighbors does not hold K per poster");
    for (const j of neighbors) if (!(Number.isInteger(j) && j >= 0 && j < n)) fail(`a neighbour is ${JSON.stringify(j)}`);
    const similarity = columns.similarity || [];
    if (!isList(similarity) || similarity.length !== n * k) fail("columns.similarity does not hold K per poster");
  }
  for (const [key, what] of [["clusters", "cluster"], ["regions", "region"]]) {
    const groups = meta[key];
    if (groups === undefined) continue;
    if (!Array.isArray(groups) || groups.length > LIMITS.clusters) fail(`meta.${key}`);
    for (const c of groups) {
      if (!isObject(c) || !Number.isInteger(c.id) || c.id < 0) fail(`a ${what}'s id`);
      const outline = c.outline || [];
      if (!Array.isArray(outline) || outline.length > LIMITS.outline) fail(`${what} ${c.id}'s outline`);
      for (const p of outline) if (!Array.isArray(p) || !onMap(p[0]) || !onMap(p[1])) fail(`${what} ${c.id}'s outline`);
      if (c.centroid !== undefined && !(Array.isArray(c.centroid) && onMap(c.centroid[0]) && onMap(c.centroid[1]))) {
        fail(`${what} ${c.id}'s centroid`);
      }
      if (key === "clusters" && c.region !== undefined && !(Number.isInteger(c.region) && c.region >= 0)) {
        fail(`cluster ${c.id}'s region`);
      }
      if (key === "regions" && !(Array.isArray(c.clusters) && c.clusters.length <= LIMITS.clusters
        && c.clusters.every((id) => Number.isInteger(id) && id >= 0))) fail(`region ${c.id}'s clusters`);
    }
  }
  if (meta.pairs !== undefined && !(isObject(meta.pairs) && typeof meta.pairs.file === "string")) fail("meta.pairs");
  column("original", textOrNull);
  column("height", (v) => none(v) || (Number.isInteger(v) && v > 0 && v <= 100_000));
  const about = meta.categories ?? [];
  if (!Array.isArray(about) || about.length > LIMITS.categories) fail("meta.categories");
  if (about.length && !(Array.isArray(columns.categories) && columns.categories.length === about.length)) {
    fail("columns.categories does not hold a column per category");
  }
  about.forEach((c, k) => {
    if (!isObject(c) || typeof c.name !== "string" || !c.name || c.name.length > 100) fail(`meta.categories[${k}].name`);
    const { values } = c;
    if (!Array.isArray(values) || !values.length || values.length > LIMITS.values
      || !values.every((v) => typeof v === "string" && v.length <= 200)) fail(`meta.categories[${k}].values`);
    const codes = columns.categories[k];
    if (!isList(codes) || codes.length !== n) fail(`columns.categories[${k}] does not hold one value per poster`);
    for (let i = 0; i < n; i++) {
      if (!(Number.isInteger(codes[i]) && codes[i] >= -1 && codes[i] < values.length)) {
        fail(`columns.categories[${k}][${i}] is ${JSON.stringify(codes[i])}`);
      }
    }
  });
}

/**
 * The pairs of a pairs file the page can show: each with two ids and a similarity, at most
 * LIMITS.pairs of them (the file lists the closest first); anything else in it is left out.
 */
export function readPairs(doc) {
  const pairs = doc && Array.isArray(doc.pairs) ? doc.pairs : [];
  const out = [];
  for (const pair of pairs) {
    if (out.length >= LIMITS.pairs) break;
    if (pair && typeof pair.a === "string" && typeof pair.b === "string" && Number.isFinite(pair.similarity)) {
      out.push(pair);
    }
  }
  return { pairs: out, more: Math.max(0, pairs.length - out.length) };
}

/** Every `step`-th point of [x0, y0, x1, y1, ...], so that at most `most` points are left. */
export function thinPath(points, most) {
  const count = points.length / 2;
  if (count <= most) return points;
  const step = Math.ceil(count / most);
  const out = [];
  for (let i = 0; i < count; i += step) out.push(points[2 * i], points[2 * i + 1]);
  return out;
}

/**
 * The panel's line under a poster's title: what is known of it. The year and, past the first, the
 * version; for a poster with no page on the web (a local image) the folder and file it came from,
 * rather than "year unknown · version 1".
 */
export function posterInfo(year, version, imagePath, hasPage) {
  const parts = [];
  if (Number.isFinite(year)) parts.push(String(year));
  if (version > 1) parts.push(`version ${version}`);
  if (!hasPage && imagePath) parts.push(String(imagePath).split("/").slice(-2).join("/"));
  return parts.join(" · ");
}

/** A region's name on the map and in the panel: A, B, ... Z, AA, AB, ... (as a spreadsheet's columns). */
export function regionName(id) {
  let name = "";
  for (let k = id + 1; k > 0; k = Math.floor((k - 1) / 26)) name = String.fromCharCode(65 + ((k - 1) % 26)) + name;
  return name;
}

/**
 * The years of a group against the whole map's, for a histogram: bins of whole years (one year
 * each up to `most` bins, else the fewest whole years a bin that keep at most `most` bins), each with
 * the group's count and share and the map's share. `years` holds every poster's year (NaN: none);
 * `members` the group's poster indices. Null when the map has no year.
 */
export function yearBins(years, members, most = 40) {
  const map = yearCounts(years);
  if (!map) return null;
  const { lo, hi, perYear, total } = map;
  const width = Math.max(1, Math.ceil((hi - lo + 1) / most));
  const count = Math.floor((hi - lo) / width) + 1;
  const all = new Float64Array(count);
  const own = new Float64Array(count);
  for (let y = 0; y < perYear.length; y++) all[Math.floor(y / width)] += perYear[y];
  let ownTotal = 0;
  for (let r = 0; r < members.length; r++) {
    const y = years[members[r]];
    if (y === y) { // not NaN
      own[Math.floor((y - lo) / width)] += 1;
      ownTotal += 1;
    }
  }
  const bins = [];
  for (let b = 0; b < count; b++) {
    const from = lo + b * width;
    bins.push({ from, to: from + width - 1, count: own[b], share: ownTotal ? own[b] / ownTotal : 0,
      mapShare: all[b] / total });
  }
  return { width, bins, dated: ownTotal, undated: members.length - ownTotal };
}

// The whole map's posters per year, counted once per map (a lasso at 100,000 posters need not count them again).
const countedYears = new WeakMap();

/** {lo, hi, perYear, total} of a map's years (NaN: none), or null with none; counted once per array. */
export function yearCounts(years) {
  if (countedYears.has(years)) return countedYears.get(years);
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < years.length; i++) {
    const y = years[i];
    if (y < lo) lo = y;
    if (y > hi) hi = y;
  }
  let out = null;
  if (lo <= hi) {
    const perYear = new Float64Array(hi - lo + 1);
    let total = 0;
    for (let i = 0; i < years.length; i++) {
      const y = years[i];
      if (y === y) {
        perYear[y - lo] += 1;
        total += 1;
      }
    }
    out = { lo, hi, perYear, total };
  }
  countedYears.set(years, out);
  return out;
}

/**
 * A bucket grid over the points (xs[i], ys[i]), for the page's rectangle queries: picking and the posters of a
 * tile. It holds 4 bytes a point and 4 a cell (about 8 points a cell on average), where a d3-quadtree holds
 * an object a point and an array a node (about 50 MB at 1,000,000 posters). Points that are not numbers are
 * left out, as d3-quadtree leaves them.
 */
export class PointGrid {
  constructor(xs, ys, perCell = 8) {
    const n = xs.length;
    let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity];
    for (let i = 0; i < n; i++) {
      const x = xs[i];
      const y = ys[i];
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
    const side = Math.max(1, Math.ceil(Math.sqrt(n / perCell)));
    Object.assign(this, { xs, ys, side, x0, y0 });
    this.cellW = x1 > x0 ? (x1 - x0) / side : 1;
    this.cellH = y1 > y0 ? (y1 - y0) / side : 1;
    const cellOf = new Int32Array(n);
    this.start = new Int32Array(side * side + 1);
    for (let i = 0; i < n; i++) {
      const x = xs[i];
      const y = ys[i];
      if (!Number.isFinite(x) || !Number.isFinite(y)) {
        cellOf[i] = -1;
        continue;
      }
      const c = this.row(y) * side + this.column(x);
      cellOf[i] = c;
      this.start[c + 1] += 1;
    }
    for (let c = 0; c < side * side; c++) this.start[c + 1] += this.start[c];
    const next = this.start.slice(0, side * side);
    this.order = new Int32Array(this.start[side * side]);
    for (let i = 0; i < n; i++) if (cellOf[i] >= 0) this.order[next[cellOf[i]]++] = i;
  }

  column(x) {
    return Math.min(this.side - 1, Math.max(0, Math.floor((x - this.x0) / this.cellW)));
  }

  row(y) {
    return Math.min(this.side - 1, Math.max(0, Math.floor((y - this.y0) / this.cellH)));
  }

  /** Calls fn(i) for every point in the rectangle (x0, y0)-(x1, y1), edges included, in no given order. */
  visit(x0, y0, x1, y1, fn) {
    if (!(x0 <= x1 && y0 <= y1) || !this.order.length) return;
    const { xs, ys, order, start, side } = this;
    const cx1 = this.column(x1);
    const cy1 = this.row(y1);
    for (let cy = this.row(y0); cy <= cy1; cy++) {
      for (let cx = this.column(x0); cx <= cx1; cx++) {
        const c = cy * side + cx;
        for (let k = start[c]; k < start[c + 1]; k++) {
          const i = order[k];
          const x = xs[i];
          const y = ys[i];
          if (x >= x0 && x <= x1 && y >= y0 && y <= y1) fn(i);
        }
      }
    }
  }
}

/**
 * Run `step(slice)` while the page is idle until it returns true: work that would hold up a frame if done at
 * once, done a slice at a time. Where the browser has no requestIdleCallback (Safari), a slice a timer tick,
 * as if each had 8 ms to spare.
 */
export function idleSlices(step, slice) {
  const idle = globalThis.requestIdleCallback?.bind(globalThis)
    ?? ((fn) => setTimeout(() => fn({ timeRemaining: () => 8 }), 1));
  const run = (deadline) => {
    while (!step(slice)) {
      if (deadline.timeRemaining() < 2) {
        idle(run);
        return;
      }
    }
  };
  idle(run);
}
