#!/usr/bin/env python3
"""Stage 3's tiles step and its manifest rows: memory against a baseline commit, side by side.

    python bench/bench_tiles_memory.py [--n 300000] [--baseline REV] [--ours REV] [--repeats 1] [--keep-tiles]
    python bench/bench_tiles_memory.py --rows-only [--n 1000000] [--repeats 3]

For each tree (the baseline's, from a git worktree, then ours) a fresh process
reads the manifest of n generated posters as stage 3 does (`load_ok_records`),
lays them out at seeded random clustered places (20 clusters of standard deviation 0.04: about as many
tiles as a t-SNE map of as many posters, 281,458 files at 1,000,000 against the 257,151 of the real
1,000,000-poster run), and builds the t-SNE layout's
tile pyramid with two threads (stage 3's default), as `make_map` does. It reports:

* `rows_mib`: resident memory the manifest's rows hold once read (RSS after minus before, after a
  collection), which every later step of stage 3 carries;
* `pyramid_peak_mib`: the peak resident memory while the pyramid is built (the kernel's high-water
  mark, reset just before it), and `pyramid_own_mib`, that peak less the resident memory before it;
* the pyramid's seconds and file count, and a digest of its files' bytes (the same in both trees
  means the change left every tile as it was).

With `--rows-only`, only the rows are read and measured (and how long reading them takes), to
bench/out/manifest_rows_N.json. Needs no features file (`make_inputs(..., with_features=False)`). The tiles are deleted after each
run unless `--keep-tiles`. Results go to bench/out/tiles_memory_N.json.
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys

from common import OUT, ROOT, machine
from synthetic import make_inputs

CHILD = r"""
import gc, hashlib, json, os, sys, time
from pathlib import Path
import numpy as np
tree, manifest, out, rows_only = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4] == "rows"
sys.path.insert(0, tree)
from posters_cnn.contracts.manifest import load_ok_records
from posters_cnn.contracts.geometry import poster_boxes, slot_size, to_unit
from posters_cnn.mapping.tiles import build_pyramid

def rss(field="VmRSS"):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024

gc.collect()
before = rss()
t0 = time.perf_counter()
rows = load_ok_records(manifest)
gc.collect()
rows_mib = rss() - before
n = len(rows)
if rows_only:
    print(json.dumps({"n": n, "rows_mib": round(rows_mib, 1), "load_seconds": round(time.perf_counter() - t0, 2)}))
    sys.exit()
thumbs = [row["thumb_abspath"] for row in rows]
aspect = np.array([float(row["width"] or 2) / float(row["height"] or 3) for row in rows])
rng = np.random.default_rng(0)
centres = rng.uniform(-0.7, 0.7, (20, 2))
xy = np.clip(centres[rng.integers(0, 20, n)] + rng.normal(0, 0.04, (n, 2)), -1, 1)
u, v = to_unit(xy[:, 0], xy[:, 1])
slot = slot_size(n)
boxes = poster_boxes(u, v, aspect, slot)
gc.collect()
base = rss()
with open("/proc/self/clear_refs", "w") as f:  # resets VmHWM, the peak resident size, to now
    f.write("5")
started = time.perf_counter()
pyramid = build_pyramid(thumbs, boxes, out, slot=slot, jobs=2)
seconds = time.perf_counter() - started
peak = rss("VmHWM")
digest = hashlib.sha256()
for root, dirs, files in sorted(os.walk(out)):
    dirs.sort()
    for name in sorted(files):
        digest.update(os.path.relpath(os.path.join(root, name), out).encode())
        digest.update(open(os.path.join(root, name), "rb").read())
print(json.dumps({"n": n, "rows_mib": round(rows_mib, 1), "base_mib": round(base, 1),
                  "pyramid_peak_mib": round(peak, 1), "pyramid_own_mib": round(peak - base, 1),
                  "seconds": round(seconds, 1), "levels": pyramid.levels, "files": pyramid.files,
                  "digest": digest.hexdigest()}))
"""


def worktree(rev: str):
    tree = OUT / f"baseline-{rev}"
    if not (tree / "posters_cnn").exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--force", "--detach", str(tree), rev],
                       check=True, capture_output=True)
    return tree


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=300000)
    parser.add_argument("--baseline", default="4fab686", help="the commit to compare with (default: %(default)s)")
    parser.add_argument("--ours", help="a commit to measure instead of the working tree")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--keep-tiles", action="store_true")
    parser.add_argument("--rows-only", action="store_true", help="measure the manifest's rows, not the pyramid")
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    _, manifest = make_inputs(args.n, with_features=False)
    runs = {"baseline": [], "ours": []}
    for _ in range(args.repeats):
        for name, tree in (("baseline", worktree(args.baseline)), ("ours", worktree(args.ours) if args.ours else ROOT)):
            out = OUT / f"tiles-memory-{args.n}" / name
            shutil.rmtree(out, ignore_errors=True)
            got = subprocess.run([sys.executable, "-c", CHILD, str(tree), str(manifest), str(out),
                                  "rows" if args.rows_only else "pyramid"], check=True,
                                 capture_output=True, text=True)
            result = json.loads(got.stdout.strip().splitlines()[-1])
            runs[name].append(result)
            print(f"n={args.n} {name}: {json.dumps(result)}", flush=True)
            if not args.keep_tiles:
                shutil.rmtree(out, ignore_errors=True)
    if args.rows_only:
        for name, values in runs.items():
            print(f"n={args.n} {name}: rows {statistics.median(v['rows_mib'] for v in values):.0f} MiB, read in "
                  f"{statistics.median(v['load_seconds'] for v in values):.2f} s", flush=True)
        (OUT / f"manifest_rows_{args.n}.json").write_text(json.dumps(
            {"machine": machine(), "n": args.n, "baseline": args.baseline, "ours": args.ours or "working tree",
             "command": " ".join(sys.argv), "runs": runs}, indent=1))
        return
    summary = {}
    for name, values in runs.items():
        summary[name] = {key: statistics.median(v[key] for v in values)
                         for key in ("rows_mib", "base_mib", "pyramid_peak_mib", "pyramid_own_mib", "seconds")}
        summary[name]["digests"] = sorted({v["digest"] for v in values})
        summary[name]["files"] = values[0]["files"]
    same = summary["baseline"]["digests"] == summary["ours"]["digests"]
    print(f"n={args.n}: pyramid's own memory {summary['baseline']['pyramid_own_mib']:.0f} -> "
          f"{summary['ours']['pyramid_own_mib']:.0f} MiB; rows {summary['baseline']['rows_mib']:.0f} -> "
          f"{summary['ours']['rows_mib']:.0f} MiB; time ours/baseline "
          f"{summary['ours']['seconds'] / summary['baseline']['seconds']:.2f}; same tiles: {same}", flush=True)
    (OUT / f"tiles_memory_{args.n}.json").write_text(json.dumps(
        {"machine": machine(), "n": args.n, "baseline": args.baseline, "ours": args.ours or "working tree",
         "command": " ".join(sys.argv),
         "summary": summary, "same_tiles": same, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
