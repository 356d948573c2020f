// The title search at 1,000,000 posters, this checkout's against a baseline commit's, side by side:
//   node --expose-gc bench/bench_search.mjs [BASELINE] [--n 1000000]
// Titles are made of words drawn from a fixed list with a seeded generator (a long tail of common words),
// so both indexes hold the same titles. Measured: building the index (whole), the heap it holds (after a
// collection), and each query's time to its 8 suggestions, median of 5 (the first keystroke, a letter,
// is the case that matters: the page's target is suggestions within 300 ms of it).
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const args = process.argv.slice(2);
const baseline = args.find((a) => !a.startsWith("--") && !/^\d+$/.test(a)) ?? "a35ae71";
const n = Number(args[args.indexOf("--n") + 1]) || 1_000_000;
const folder = mkdtempSync(join(tmpdir(), "search-"));
const oldFile = join(folder, "logic.js");
writeFileSync(oldFile, execFileSync("git", ["show", `${baseline}:web/logic.js`]));
writeFileSync(join(folder, "geometry.js"), execFileSync("git", ["show", `${baseline}:web/geometry.js`]));
const before = await import(oldFile);
const now = await import("../web/logic.js");

let seed = 1;
const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
const WORDS = ("the of a and love night man last star story war world house dead blood girl city day time life black "
  + "return king lord rings dark american secret lost red wild moon big little new death fire lady island sea river "
  + "ghost monster zombie space queen prince heart summer winter léon amélie über café 2 3 ii iii part").split(" ");
const word = () => WORDS[Math.min(WORDS.length - 1, Math.floor(WORDS.length * random() ** 2))];
const titles = Array.from({ length: n }, () => Array.from({ length: 1 + Math.floor(random() * 4) }, word).join(" "));
const years = Float64Array.from({ length: n }, () => 1920 + Math.floor(random() * 100));
const QUERIES = ["a", "s", "lo", "lord", "the lord", "rings lord", "amelie", "zz"];

const heap = () => { global.gc(); global.gc(); return process.memoryUsage().heapUsed / 2 ** 20; };
const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const result = { n, baseline, cpu: (await import("node:os")).cpus()[0].model, node: process.version };
// The page's format-3 titles: one text column of UTF-8 bytes (what columnsFromTable gives it).
const encoded = titles.map((t) => new TextEncoder().encode(t));
const offsets = new Int32Array(n + 1);
encoded.forEach((e, i) => { offsets[i + 1] = offsets[i] + e.length; });
const bytes = new Uint8Array(offsets[n]);
encoded.forEach((e, i) => bytes.set(e, offsets[i]));
const column = now.textColumn(bytes, offsets, null, "");
for (const [name, lib, source] of [["baseline", before, titles], ["this", now, titles], ["this, from a text column", now, column]]) {
  const t = performance.now();
  let index = lib.buildSearchIndex(source, years);
  const build = performance.now() - t;
  const queries = {};
  for (const q of QUERIES) {
    const times = [];
    let found;
    for (let r = 0; r < 5; r++) {
      const s = performance.now();
      found = lib.searchTitles(index, q, 8);
      times.push(performance.now() - s);
    }
    queries[q] = { ms: Number(median(times).toFixed(1)), first: found[0] ?? null };
  }
  const holding = heap();
  index = null;
  const held = holding - heap(); // what letting the index go frees
  result[name] = { build_ms: Number(build.toFixed(0)), heap_mib: Number(held.toFixed(1)), queries };
  console.error(name, JSON.stringify(result[name]));
}
for (const q of QUERIES) {
  for (const name of ["this", "this, from a text column"]) {
    if (result.baseline.queries[q].first !== result[name].queries[q].first) throw new Error(`"${q}": ${name} disagrees`);
  }
}
console.log(JSON.stringify(result, null, 1));
