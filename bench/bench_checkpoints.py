#!/usr/bin/env python3
"""Stages 1 and 2 at a million rows: what a checkpoint costs and how long a resume takes, side by side
with an earlier commit.

    python bench/bench_checkpoints.py 721cb59 [--rows 1000000] [--repeats 3]

Makes a manifest of ROWS generated rows (ids, titles, paths; no images) and a features.h5 of ROWS rows
of 4096 float32 zeros (16 GiB at a million: it is deleted at the end), then, in this checkout and in the
earlier commit (a scratch worktree), each a fresh process, the median of REPEATS runs of:

* stage 1's checkpoint as that tree makes it, at 1,000 and at ROWS rows: before, the whole posters.csv
  written again; now, the rows finished since the last checkpoint appended to posters.csv.journal
  (100 rows: ten seconds of scraping at ten posters a second);
* reading the manifest to resume: stage 1's ``read_records`` and stages 2 and 3's ``load_ok_records``;
* stage 2 run again on a finished file, end to end (``get_features_from_cnn.py --weights random``
  finds every poster done and stops);
* stage 2's checkpoint (appending a batch of 32 rows and flushing), at 1,000 and at ROWS rows (this
  checkout only: the writer did not change).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import OUT, ROOT, machine  # noqa: E402

WORK = OUT / "checkpoints"

# Run in a tree's own interpreter session: prints one JSON object of timings.
CHILD = r"""
import json, statistics, sys, time
from pathlib import Path
tree, work, rows, repeats = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
sys.path.insert(0, str(tree))
try:
    from posters_cnn.contracts import manifest as m
except ImportError:  # before the package showed its stages
    from posters_cnn import manifest as m

def records(n, start=0):
    out = []
    for i in range(start, start + n):
        year, name = 1900 + i % 120, f"movie_{i:07d}"
        out.append(m.PosterRecord(f"{year}/{name}", f"Movie number {i}", year, 1,
            page_url=f"http://www.impawards.com/{year}/{name}.html",
            image_url=f"http://www.impawards.com/{year}/posters/{name}.jpg",
            image_path=f"posters/{year}/{name}.jpg", thumb_path=f"thumbs/{year}/{name}.jpg",
            width=300, height=450, status="ok"))
    return out

def median_of(fn):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)

out = {}
scratch = work / f"scratch-{tree.name}"
scratch.mkdir(parents=True, exist_ok=True)
for n in (1000, rows):
    done = records(n)
    fresh = records(100, start=n)
    path = scratch / f"posters-{n}.csv"
    m.write_manifest(path, done)
    if hasattr(m, "Journal"):  # a checkpoint appends what it adds
        def checkpoint():
            journal = m.Journal(path)
            journal.append(fresh)
            journal.close()
    else:  # a checkpoint writes the whole manifest again
        def checkpoint():
            m.write_manifest(path, done + fresh)
    out[f"stage1_checkpoint_{n}"] = median_of(checkpoint)
    if hasattr(m, "journal_path"):
        m.journal_path(path).unlink(missing_ok=True)
shared = work / "posters.csv"
out["read_records"] = median_of(lambda: m.read_records(shared))
out["load_ok_records"] = median_of(lambda: m.load_ok_records(shared))
print(json.dumps(out))
"""


def make_inputs(rows: int) -> tuple[Path, Path]:
    """posters.csv and features.h5 of ``rows`` rows in WORK (made once, kept until the end)."""
    sys.path.insert(0, str(ROOT))
    import h5py
    import numpy as np

    from posters_cnn.contracts import store
    from posters_cnn.contracts.manifest import PosterRecord, write_manifest
    from posters_cnn.features import stage as features

    WORK.mkdir(parents=True, exist_ok=True)
    manifest, feats = WORK / "posters.csv", WORK / "features.h5"
    ids = [f"{1900 + i % 120}/movie_{i:07d}" for i in range(rows)]
    if not manifest.exists():
        write_manifest(manifest, [PosterRecord(pid, f"Movie number {i}", 1900 + i % 120, 1,
                                               image_path=f"posters/{pid}.jpg", thumb_path=f"thumbs/{pid}.jpg",
                                               width=300, height=450, status="ok") for i, pid in enumerate(ids)])
    ready = feats.exists() and h5py.File(feats, "r").attrs.get("count", 0) == rows
    if not ready:
        feats.unlink(missing_ok=True)
        info = features.weights_info("random", 0)
        attrs = {"model": "keras.applications.VGG16", "layer": features.LAYER, "weights": info.name,
                 "weights_sha256": info.sha256, "input_size": features.INPUT_SIZE, "resize": features.RESIZE,
                 "crop": "none", "preprocessing": features.PREPROCESSING, "precision": "float32"}
        writer = store.FeatureWriter(feats, features.DIM, attrs)
        block = np.zeros((8192, features.DIM), np.float32)
        started = time.perf_counter()
        for start in range(0, rows, len(block)):
            part = ids[start:start + len(block)]
            writer.append(part, block[:len(part)])
        writer.close()
        print(f"features.h5: {rows} rows in {time.perf_counter() - started:.0f} s", flush=True)
    return manifest, feats


def stage2_again(tree: Path, manifest: Path, feats: Path, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, str(tree / "get_features_from_cnn.py"), "-i", str(manifest), "-o", str(feats),
                        "--weights", "random", "--no-progress", "-q"], check=True, cwd=tree)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def stage2_appends(feats: Path, rows: int, repeats: int = 20) -> dict:
    """Median seconds of appending a batch of 32 rows, to a file of 1,000 rows and to ``feats``."""
    import numpy as np

    from posters_cnn.contracts import store
    from posters_cnn.features import stage as features

    small = WORK / "features-1000.h5"
    small.unlink(missing_ok=True)
    attrs = {"model": "m", "layer": "fc2"}
    writer = store.FeatureWriter(small, features.DIM, attrs)
    writer.append([f"x/{i}" for i in range(1000)], np.zeros((1000, features.DIM), np.float32))
    writer.close()
    out = {}
    batch = np.ones((32, features.DIM), np.float32)
    for name, path in (("stage2_checkpoint_1000", small), (f"stage2_checkpoint_{rows}", feats)):
        import h5py
        with h5py.File(path, "r") as handle:
            attrs = {k: handle.attrs[k] for k in ("model", "layer")}
        writer = store.FeatureWriter(path, features.DIM, attrs)
        times = []
        for k in range(repeats):
            start = time.perf_counter()
            writer.append([f"bench/{k}_{j}" for j in range(32)], batch)
            times.append(time.perf_counter() - start)
        writer.close()
        out[name] = statistics.median(times)
    small.unlink()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base", help="the earlier commit to compare with (such as 721cb59)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    manifest, feats = make_inputs(args.rows)
    base = WORK / f"base-{args.base}"
    if not base.exists():
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base), args.base], cwd=ROOT, check=True)
    results = {"machine": machine(), "rows": args.rows, "repeats": args.repeats, "base": args.base}
    try:
        for label, tree in (("before", base), ("now", ROOT)):
            child = subprocess.run([sys.executable, "-c", CHILD, str(tree), str(WORK), str(args.rows), str(args.repeats)],
                                   check=True, capture_output=True, text=True)
            results[label] = json.loads(child.stdout.strip().splitlines()[-1])
            results[label]["stage2_again"] = stage2_again(tree, manifest, feats, args.repeats)
            print(label, json.dumps(results[label]), flush=True)
        results["now"].update(stage2_appends(feats, args.rows))
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)
        feats.unlink(missing_ok=True)  # 16 GiB at a million rows
        shutil.rmtree(WORK, ignore_errors=True)
    (OUT / "checkpoints.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
