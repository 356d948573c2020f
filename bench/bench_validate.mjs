// The page's check of a data file, timed on a generated 100,000-poster map: node bench/bench_validate.mjs
import { validateMap } from "../web/logic.js";
const n = 100000, k = 8;
const r = () => Math.random() * 2 - 1;
const data = { meta: { neighbors: k, paths: { thumb: "t/{id}", image: "i/{id}" }, thumb_size: 256,
  tiles: { tsne: { path: "p", size: 256, levels: 8, origin: -0.05, span: 1.1, slot: 0.01, present: Array.from({length: 8}, (_, z) => "A".repeat(4 * Math.ceil(Math.ceil(4 ** z / 8) / 3))) } },
  clusters: Array.from({ length: 300 }, (_, i) => ({ id: i, outline: Array.from({ length: 40 }, () => [r(), r()]), centroid: [0, 0] })) },
  columns: { id: Array.from({ length: n }, (_, i) => `1995/p${i}`), title: Array.from({ length: n }, (_, i) => `T ${i}`),
    year: Array.from({ length: n }, () => 1995), version: Array.from({ length: n }, () => 1), x: Array.from({ length: n }, r), y: Array.from({ length: n }, r),
    aspect: Array.from({ length: n }, () => 0.67), cluster: Array.from({ length: n }, () => 3),
    neighbors: Array.from({ length: n * k }, (_, i) => i % n), similarity: Array.from({ length: n * k }, () => 0.5) } };
const times = [];
for (let i = 0; i < 7; i++) { const t = performance.now(); validateMap(data); times.push(performance.now() - t); }
times.sort((a, b) => a - b);
console.log("validateMap at 100,000 posters: median", times[3].toFixed(1), "ms; all", times.map((t) => t.toFixed(1)).join(" "));
