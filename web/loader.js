// Loading: the data file with a progress bar, and images on demand, nearest to the view first.
//
// ImageCache holds decoded images (ImageBitmap: decoded off the main thread) under string
// keys. A renderer says each frame which images it wants and how urgently (`want`); the
// cache starts the most urgent loads, at most `concurrency` at a time, forgets queued
// requests nobody wanted in the last frame, and evicts the least recently used images
// past `capacity`, so memory stays bounded however long one pans.

// Data files are asked of the server every time ("no-cache": a 304 when unchanged). A map made days ago
// may otherwise be kept for hours by the browser's heuristic cache, and after stage 3 makes or updates it,
// the page would ask for tiles of a run that no longer exists. Tiles need no such care: each run's have
// their own URLs.
export async function fetchJson(url, onProgress = () => {}) {
  const response = await fetch(url, { cache: "no-cache" });
  if (!response.ok) {
    const error = new Error(`cannot load ${decodeURIComponent(new URL(url).pathname)}: HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
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

/** The bytes at `url`, asked of the server every time (see fetchJson), at fetch `priority`. */
export async function fetchBytes(url, priority = "auto") {
  const response = await fetch(url, { cache: "no-cache", priority });
  if (!response.ok) throw new Error(`cannot load ${decodeURIComponent(new URL(url).pathname)}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

/**
 * Format 3's table: the files of `tiles` ([z, x, y, rows] each), at most `concurrency` at a time, at fetch
 * `priority` (low: the whole table, behind the view's tiles; high: a near file a click waits for), as
 * bytes. `urlOf(z, x, y)` gives a file's URL; `onProgress(fraction)` is told the share of rows fetched.
 * `readTableFiles` reads them with apache-arrow.
 */
export async function fetchTable(tiles, urlOf, onProgress = () => {}, { concurrency = 6, priority = "low" } = {}) {
  const total = tiles.reduce((sum, t) => sum + t[3], 0);
  const files = new Array(tiles.length);
  let next = 0;
  let fetched = 0;
  async function worker() {
    while (next < tiles.length) {
      const k = next++;
      const [z, x, y, rows] = tiles[k];
      const url = urlOf(z, x, y);
      files[k] = { url, rows, bytes: await fetchBytes(url, priority) };
      fetched += rows;
      onProgress(fetched / total);
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, tiles.length) }, worker));
  return files;
}

/** The table's files (as fetchTable gives them) as Arrow tables, with `Arrow` (the page's vendor/arrow.min.js). */
export function readTableFiles(files, Arrow) {
  return files.map(({ url, rows, bytes }) => {
    const name = decodeURIComponent(new URL(url).pathname);
    let part;
    try {
      part = Arrow.tableFromIPC(bytes);
    } catch (error) {
      throw new Error(`${name} is not an Arrow file (${error.message})`);
    }
    if (part.numRows !== rows) throw new Error(`${name} holds ${part.numRows} rows, not ${rows}`);
    return part;
  });
}

async function decodeImage(url, maxHeight) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  const bitmap = await createImageBitmap(await response.blob());
  if (!(bitmap.height > maxHeight)) return bitmap;
  // Kept no taller than it can be shown: a 12-megapixel photo would hold 48 MB of memory decoded.
  try {
    return await createImageBitmap(bitmap, { resizeHeight: Math.round(maxHeight), resizeQuality: "high" });
  } finally {
    bitmap.close();
  }
}

export class ImageCache {
  /** `capacity`: the most images kept; `capacityPixels` (may be changed): the most pixels they hold, decoded. */
  constructor({ capacity, capacityPixels = Infinity, concurrency = 6, onLoad = () => {} }) {
    this.capacity = capacity;
    this.capacityPixels = capacityPixels;
    this.concurrency = concurrency;
    this.onLoad = onLoad;
    this.entries = new Map(); // key -> {state, url, priority, bitmap, frame}; Map order = recency
    this.inFlight = 0;
    this.frame = 0;
    this.failures = 0;
  }

  /** The decoded image under `key`, or null; marks it recently used. */
  get(key) {
    const entry = this.entries.get(key);
    if (!entry || entry.state !== "ready") return null;
    this.entries.delete(key);
    this.entries.set(key, entry);
    entry.frame = this.frame;
    return entry.bitmap;
  }

  failed(key) {
    const entry = this.entries.get(key);
    return !!entry && entry.state === "failed";
  }

  /**
   * Ask for `url` under `key`; a lower `priority` loads sooner. Call every frame it is still wanted. An image
   * taller than `maxHeight` is kept scaled down to it.
   */
  want(key, url, priority, maxHeight = Infinity) {
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { state: "queued", url, priority, bitmap: null, frame: this.frame, maxHeight };
      this.entries.set(key, entry);
    } else if (entry.state === "queued") {
      entry.priority = Math.min(entry.priority, priority);
    }
    entry.frame = this.frame;
  }

  /** After a frame's wants: drop stale queued requests, start the most urgent loads, evict. */
  pump() {
    this.queue = [];
    for (const [key, entry] of this.entries) {
      if (entry.state !== "queued") continue;
      if (entry.frame < this.frame) this.entries.delete(key);
      else this.queue.push([entry.priority, key, entry]);
    }
    this.queue.sort((a, b) => b[0] - a[0]); // most urgent last, for pop()
    this.startMore();
    this.evict();
    this.frame += 1;
  }

  // Keep `concurrency` loads going: called each frame, and as soon as a load ends, so that the
  // next one starts at once rather than a frame later (most of the time of a small image's load).
  startMore() {
    while (this.inFlight < this.concurrency && this.queue && this.queue.length) {
      const [, key, entry] = this.queue.pop();
      if (entry.state === "queued" && this.entries.get(key) === entry) this.start(key, entry);
    }
  }

  start(key, entry) {
    entry.state = "loading";
    this.inFlight += 1;
    decodeImage(entry.url, entry.maxHeight).then((bitmap) => {
      entry.state = "ready";
      entry.bitmap = bitmap;
    }, () => {
      entry.state = "failed";
      this.failures += 1;
    }).finally(() => {
      this.inFlight -= 1;
      if (this.entries.get(key) !== entry && entry.bitmap) entry.bitmap.close();
      this.startMore();
      this.onLoad(key);
    });
  }

  evict() {
    let ready = 0;
    let pixels = 0;
    for (const entry of this.entries.values()) {
      if (entry.state !== "ready") continue;
      ready += 1;
      pixels += entry.bitmap.width * entry.bitmap.height;
    }
    for (const [key, entry] of this.entries) {
      if (ready <= this.capacity && pixels <= this.capacityPixels) break;
      // Never evict what the last frame used: a view that needs more than the capacity keeps it all.
      if (entry.state === "ready" && entry.frame < this.frame - 1) {
        pixels -= entry.bitmap.width * entry.bitmap.height;
        entry.bitmap.close();
        this.entries.delete(key);
        ready -= 1;
      }
    }
  }

  /** Requests queued or on their way. */
  get pending() {
    let count = this.inFlight;
    for (const entry of this.entries.values()) if (entry.state === "queued") count += 1;
    return count;
  }

  get size() {
    return this.entries.size;
  }
}
