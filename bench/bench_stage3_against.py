#!/usr/bin/env python3
"""Stage 3 of this checkout against stage 3 of an earlier commit, side by side: what a change cost.

    python bench/bench_stage3_against.py 721cb59 [--n 30000] [--repeats 3]

Checks the earlier commit out into a scratch worktree, then maps the same synthetic inputs
(bench/synthetic.py: bench posters under distinct ids, clustered 4096-d features) into fresh folders
with each, alternating (earlier, this, earlier, ...), each a fresh process, and prints the median wall
time and peak resident memory of each and their ratio. A third run of this checkout is stopped in its
clusters step and run again, to time a resume (its PCA, similar posters and t-SNE come from checkpoints).
"""

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import OUT, ROOT, machine, median, peak_rss_mib
from synthetic import make_inputs


def stage3(tree: Path, features: Path, manifest: Path, out: Path) -> tuple[float, float]:
    shutil.rmtree(out.parent, ignore_errors=True)
    return peak_rss_mib([sys.executable, str(tree / "get_data_visu.py"), "-i", str(features), "--posters",
                         str(manifest), "-o", str(out), "--no-progress", "-q"], cwd=tree, stdout=subprocess.DEVNULL)


def stopped_then_resumed(features: Path, manifest: Path, out: Path) -> float:
    """Seconds of a run of this checkout resumed after a stop in its clusters step (SIGINT once its
    t-SNE checkpoint exists)."""
    shutil.rmtree(out.parent, ignore_errors=True)
    cmd = [sys.executable, str(ROOT / "get_data_visu.py"), "-i", str(features), "--posters", str(manifest),
           "-o", str(out), "--no-progress", "-q"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
    marker = out.parent / "assets" / "maps" / out.stem / "checkpoints" / "tsne.npz"
    while not marker.exists() and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    proc.wait()
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    if "resumed" not in done.stdout:
        print("note: the run finished before it could be stopped; the resume was not measured")
        return float("nan")
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base", help="the earlier commit")
    parser.add_argument("--n", type=int, default=30000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    features, manifest = make_inputs(args.n)
    runs = {"base": [], "this": []}
    with tempfile.TemporaryDirectory(prefix="bench-base-") as scratch:
        base = Path(scratch) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base), args.base], cwd=ROOT, check=True)
        try:
            for _ in range(args.repeats):
                runs["base"].append(stage3(base, features, manifest, OUT / "stage3-base" / "data.json"))
                runs["this"].append(stage3(ROOT, features, manifest, OUT / "stage3-this" / "data.json"))
                print(f"base {runs['base'][-1][0]:.1f} s, this {runs['this'][-1][0]:.1f} s", flush=True)
            resumed = stopped_then_resumed(features, manifest, OUT / "stage3-resume" / "data.json")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)
    b, t = median([r[0] for r in runs["base"]]), median([r[0] for r in runs["this"]])
    mb, mt = median([r[1] for r in runs["base"]]), median([r[1] for r in runs["this"]])
    result = {"machine": machine(), "n": args.n, "repeats": args.repeats, "base": args.base,
              "seconds": {"base": b, "this": t, "ratio": t / b}, "peak_mib": {"base": mb, "this": mt},
              "resumed_after_clusters_s": resumed, "runs": runs}
    (OUT / f"stage3_against_{args.n}.json").write_text(json.dumps(result, indent=1))
    print(f"{args.n} posters, {args.repeats} runs each: base {b:.1f} s ({mb:.0f} MiB), this {t:.1f} s "
          f"({mt:.0f} MiB): {t / b:.3f}x; resumed after a stop in clusters: {resumed:.1f} s")
    for folder in ("stage3-base", "stage3-this", "stage3-resume"):
        shutil.rmtree(OUT / folder, ignore_errors=True)


if __name__ == "__main__":
    main()
