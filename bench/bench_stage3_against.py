#!/usr/bin/env python3
"""Stage 3 of this checkout against stage 3 of an earlier commit, side by side: what a change cost.

    python bench/bench_stage3_against.py 721cb59 [--n 30000] [--repeats 3]

Checks the earlier commit out into a scratch worktree, then maps the same synthetic inputs
(bench/synthetic.py: bench posters under distinct ids, clustered 4096-d features) into fresh folders
with each, alternating (earlier, this, earlier, ...), each a fresh process, and prints the median wall
time and peak resident memory of each and their ratio. A third run of this checkout is stopped in its
clusters step and run again, to time a resume (its PCA, similar posters and t-SNE come from checkpoints;
--no-resume skips it).

What each map says of itself is kept beside the time: its trustworthiness, its similar posters' recall@8
against exact cosine (above 5,000 posters), the variance its PCA keeps, and its steps' times. The last
maps of the two are then compared through their state files (state.npz): how far apart the two PCA
bases are (the cosines of their principal angles, largest first: 1 is the same direction; where the
data's spectrum is flat, as in its tail here, any basis of it is as good, and the last cosines say
nothing), and how many of each poster's similar posters the two lists share.
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

import numpy as np

from common import OUT, ROOT, machine, median, peak_rss_mib
from synthetic import make_inputs


def stage3(tree: Path, features: Path, manifest: Path, out: Path) -> tuple[float, float]:
    shutil.rmtree(out.parent, ignore_errors=True)
    return peak_rss_mib([sys.executable, str(tree / "get_data_visu.py"), "-i", str(features), "--posters",
                         str(manifest), "-o", str(out), "--no-progress", "-q"], cwd=tree, stdout=subprocess.DEVNULL)


def described(out: Path) -> dict:
    """What a map says of itself (see the module docstring)."""
    meta = json.loads(out.read_text())["meta"]
    return {"trustworthiness": meta["trustworthiness"], "recall": (meta.get("similarity_recall") or {}).get("recall"),
            "explained_variance": meta["pca"]["explained_variance"], "svd_solver": meta["pca"].get("svd_solver"),
            "timings": meta.get("timings", {})}


def compared(a: Path, b: Path) -> dict:
    """Two maps of the same posters, through their states: the PCA subspaces and the similar-poster lists."""
    sa = np.load(a.parent / json.loads(a.read_text())["meta"]["state"])
    sb = np.load(b.parent / json.loads(b.read_text())["meta"]["state"])
    cosines = np.linalg.svd(sa["pca_components"].astype(np.float64) @ sb["pca_components"].T.astype(np.float64),
                            compute_uv=False)
    na, nb = sa["neighbors"], sb["neighbors"]
    shared = np.mean([len(set(x) & set(y)) / max(len(x), 1) for x, y in zip(na.tolist(), nb.tolist())])
    points = np.linalg.norm(sa["points"] - sb["points"] @ (sb["pca_components"] @ sa["pca_components"].T).T, axis=1)
    cosines = np.sort(cosines)[::-1]
    return {"subspace_cosines_first_10_min": float(cosines[:10].min()), "subspace_cosines_median": float(np.median(cosines)),
            "subspace_cosine_min": float(cosines.min()), "neighbours_shared": float(shared),
            "points_moved_median_rel": float(np.median(points / (np.linalg.norm(sa["points"], axis=1) + 1e-9)))}


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
    parser.add_argument("--no-resume", action="store_true", help="do not time a resumed run")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    features, manifest = make_inputs(args.n)
    runs = {"base": [], "this": []}
    with tempfile.TemporaryDirectory(prefix="bench-base-") as scratch:
        base = Path(scratch) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base), args.base], cwd=ROOT, check=True)
        try:
            for _ in range(args.repeats):
                for name, tree in (("base", base), ("this", ROOT)):
                    out = OUT / f"stage3-{name}" / "data.json"
                    runs[name].append((*stage3(tree, features, manifest, out), described(out)))
                print(f"base {runs['base'][-1][0]:.1f} s, this {runs['this'][-1][0]:.1f} s", flush=True)
            agreement = compared(OUT / "stage3-base" / "data.json", OUT / "stage3-this" / "data.json")
            resumed = float("nan") if args.no_resume else \
                stopped_then_resumed(features, manifest, OUT / "stage3-resume" / "data.json")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)
    b, t = median([r[0] for r in runs["base"]]), median([r[0] for r in runs["this"]])
    mb, mt = median([r[1] for r in runs["base"]]), median([r[1] for r in runs["this"]])
    result = {"machine": machine(), "n": args.n, "repeats": args.repeats, "base": args.base,
              "seconds": {"base": b, "this": t, "ratio": t / b}, "peak_mib": {"base": mb, "this": mt},
              "resumed_after_clusters_s": resumed, "agreement": agreement, "runs": runs}
    (OUT / f"stage3_against_{args.n}.json").write_text(json.dumps(result, indent=1))
    print(f"{args.n} posters, {args.repeats} runs each: base {b:.1f} s ({mb:.0f} MiB), this {t:.1f} s "
          f"({mt:.0f} MiB): {t / b:.3f}x; resumed after a stop in clusters: {resumed:.1f} s")
    for name in runs:
        print(name, json.dumps(runs[name][-1][2]))
    print("agreement", json.dumps(agreement))
    for folder in ("stage3-base", "stage3-this", "stage3-resume"):
        shutil.rmtree(OUT / folder, ignore_errors=True)


if __name__ == "__main__":
    main()
