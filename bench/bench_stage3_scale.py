#!/usr/bin/env python3
"""Stage 3 at scale against openTSNE's own fit of the same points, side by side in one run.

    python bench/bench_stage3_scale.py --n 300000

Maps the synthetic inputs of bench/synthetic.py (bench posters under distinct ids, clustered 4096-d
features; made once into bench/out/synthetic-N/) with this checkout's stage 3, in a fresh process, and
records its wall time, peak resident memory, steps' times, trustworthiness and similar posters' recall@8.
Then it fits openTSNE with its own defaults (``TSNE(n_jobs=cores, random_state=0).fit``) on the very PCA
points the map was made from (its state.npz), in a fresh process, and records that time and memory: the
issue's yardstick ("stage 3 at 300k in at most 1.5x openTSNE's own fit"). Writes
bench/out/stage3_scale_N.json. --keep keeps the inputs (4.9 GB at 300,000 posters); they are deleted
otherwise. --keep-map keeps the map, for bench_page.py; --no-fit leaves out openTSNE's fit (at 1M:
python bench/bench_stage3_scale.py --n 1000000 --no-fit --keep-map). --widest P caps the lists each poster
probes in the similar-poster search (the stage doubles them until recall@8 on tuning posters reaches 0.95): a run for memory and
the other steps' times, whose recall and search time are then not the stage's. --log FILE writes the
stage's log (each step's time and peak memory as it ends) to FILE instead of running it quietly.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys

from common import OUT, ROOT, machine, peak_rss_mib
from synthetic import make_inputs

FIT = """
import sys, time, numpy as np
from openTSNE import TSNE
points = np.load(sys.argv[1])["points"]
start = time.perf_counter()
TSNE(n_jobs=int(sys.argv[2]), random_state=0, verbose=False).fit(points)
print(time.perf_counter() - start)
"""

# Runs get_data_visu.py with the lists the similar-poster search probes capped (--widest).
CAPPED = """
import runpy, sys
import posters_cnn.mapping.similarity as similarity
similarity.PROBES_MOST = int(sys.argv[1])
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300_000)
    parser.add_argument("--keep", action="store_true", help="keep the synthetic inputs")
    parser.add_argument("--keep-map", action="store_true", help="keep the map (bench/out/scale-N/), for the page")
    parser.add_argument("--no-fit", action="store_true", help="leave out openTSNE's own fit (the 300k yardstick)")
    parser.add_argument("--resume", action="store_true",
                        help="keep bench/out/scale-N/ as a stopped run left it, so stage 3 resumes from its checkpoints")
    parser.add_argument("--widest", type=int, metavar="P",
                        help="cap the lists a poster probes in the similar-poster search at P (a run for memory, not recall)")
    parser.add_argument("--log", metavar="FILE", help="write the stage's log to FILE instead of running it with -q")
    args = parser.parse_args()
    features, manifest = make_inputs(args.n)
    out = OUT / f"scale-{args.n}" / "data.json"
    if not args.resume:
        shutil.rmtree(out.parent, ignore_errors=True)
    stage = [str(ROOT / "get_data_visu.py"), "-i", str(features), "--posters", str(manifest), "-o", str(out),
             "--n-sample", "0", "--no-pair-images", "--no-progress"]
    if args.widest:
        stage = ["-c", CAPPED, str(args.widest), *stage]
    if not args.log:
        stage.append("-q")
    with open(args.log, "w") if args.log else contextlib.nullcontext() as log_file:
        seconds, peak = peak_rss_mib([sys.executable, *stage], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log_file)
    meta = json.loads(out.read_text())["meta"]
    state = out.parent / meta["state"]
    cores = os.cpu_count() or 1
    fit_seconds = fit_peak = None
    if not args.no_fit:
        fit_seconds, fit_peak = peak_rss_mib([sys.executable, "-c", FIT, str(state), str(cores)], cwd=ROOT,
                                             stdout=subprocess.DEVNULL)
    result = {
        "machine": machine(), "n": args.n, "command": " ".join(["python bench/bench_stage3_scale.py", *sys.argv[1:]]),
        "stage3": {"seconds": round(seconds, 1), "peak_mib": round(peak), "timings": meta["timings"],
                   "peak_mib_by_step": meta.get("peak_mib"),
                   "trustworthiness": meta["trustworthiness"], "similarity_recall": meta["similarity_recall"],
                   "similarity_search": meta["similarity_search"],
                   "pca": meta["pca"].get("components"), "tsne": meta["tsne"]},
        "opentsne_fit": None if fit_seconds is None else {
            "seconds": round(fit_seconds, 1), "peak_mib": round(fit_peak),
            "settings": f"TSNE(n_jobs={cores}, random_state=0) defaults, on the map's PCA points"},
        "ratio": None if fit_seconds is None else round(seconds / fit_seconds, 2),
        "search_widest": args.widest,
    }
    (OUT / f"stage3_scale_{args.n}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    if not args.keep_map:
        shutil.rmtree(out.parent, ignore_errors=True)
    if not args.keep:
        shutil.rmtree(features.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
