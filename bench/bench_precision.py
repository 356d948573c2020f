#!/usr/bin/env python3
"""Stage 2 in bfloat16 against float32: speed, memory and the quality gate, side by side.

    python bench/bench_precision.py [--images 160] [--repeats 3]

Each run is the whole stage as a user runs it (a fresh process of
get_features_from_cnn.py on bench posters from ../shared/data/impawards-bench,
--weights random --seed 0), interleaved: the default (--precision auto) and
--precision float32. Reported: the CPU and its bfloat16 flags, what auto chose,
images/s (the stage's own figure: model built, then every poster), peak
resident memory, and, between the two runs' features, the quality gate: the
least cosine, the mean overlap of each poster's 8 nearest neighbours, and the
trustworthiness of a t-SNE map of each (k = 10, against its own PCA space, the mean over 5 t-SNE seeds).
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

import numpy as np

from common import OUT, ROOT, ensure_bench_posters, machine, peak_rss_mib
from posters_cnn.features import stage as features
from posters_cnn.mapping import layout
from posters_cnn.contracts import store
from posters_cnn.contracts.manifest import load_ok


def run_stage(manifest, out, precision):
    cmd = [sys.executable, str(ROOT / "get_features_from_cnn.py"), "-i", str(manifest), "-o", str(out),
           "--weights", "random", "--seed", "0", "--precision", precision, "--no-progress", "--overwrite"]
    log = out.with_suffix(".log")
    with open(log, "w") as fh:
        seconds, peak = peak_rss_mib(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
    text = log.read_text()
    rate = float(re.search(r"computed \d+ \(([\d.]+) images/s\)", text).group(1))
    chosen = re.search(r"precision: (\w+) \(([^\n]*)\); features", text)
    return rate, peak, chosen.group(1), chosen.group(2)


def knn(x, k=8):
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)
    return np.argsort(-sim, axis=1)[:, :k]


def trust(x, seeds=range(5)):
    """Mean trustworthiness over t-SNE seeds: one map's figure moves by about 0.01 from seed to seed at
    this size, more than the 0.005 the gate allows, whatever the precision."""
    reduced, _, _ = layout.pca(x, 50, 0)
    values = []
    for seed in seeds:
        embedding, _ = layout.tsne(reduced, backend="opentsne", perplexity=30, seed=seed, n_jobs=2)
        values.append(layout.trustworthiness(reduced, embedding, k=10, seed=0))
    return float(np.mean(values))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=160)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    flags = features.cpu_flags()
    native = sorted(flags & features.NATIVE_BF16_FLAGS)
    print(f"machine: {machine()}; bfloat16 flags: {', '.join(native) or 'none'}", flush=True)
    frame = load_ok(ensure_bench_posters()).iloc[: args.images]
    results = {"auto": [], "float32": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = os.path.abspath(tmp)
        manifest = os.path.join(tmp, "posters.csv")
        frame.drop(columns=["image_abspath", "thumb_abspath"]).assign(
            image_path=list(frame["image_abspath"]), thumb_path=list(frame["thumb_abspath"])).to_csv(manifest,
                                                                                                    index=False)
        from pathlib import Path
        for i in range(args.repeats):
            for precision in ("auto", "float32"):
                out = Path(tmp) / f"{precision}-{i}.h5"
                rate, peak, chosen, why = run_stage(manifest, out, precision)
                results[precision].append({"rate": rate, "peak_mib": peak, "chosen": chosen, "why": why, "file": str(out)})
                print(f"run {i + 1} --precision {precision}: {chosen}, {rate:.2f} images/s, peak {peak:.0f} MiB"
                      + (f" ({why})" if precision == "auto" else ""), flush=True)
        _, a, _ = store.read_features(results["float32"][0]["file"])
        _, b, attrs = store.read_features(results["auto"][0]["file"])
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    overlap = float(np.mean([len(set(p) & set(q)) / 8 for p, q in zip(knn(a), knn(b))]))
    t32, tauto = trust(a), trust(b)
    auto_rate = statistics.median(r["rate"] for r in results["auto"])
    f32_rate = statistics.median(r["rate"] for r in results["float32"])
    summary = {
        "machine": machine(), "bf16_flags": native, "images": len(frame),
        "auto_chose": results["auto"][0]["chosen"], "auto_why": results["auto"][0]["why"],
        "auto_images_per_s": auto_rate, "float32_images_per_s": f32_rate, "speedup": auto_rate / f32_rate,
        "auto_peak_mib": max(r["peak_mib"] for r in results["auto"]),
        "float32_peak_mib": max(r["peak_mib"] for r in results["float32"]),
        "min_cosine": float(cos.min()), "knn8_overlap": overlap, "trust_float32": t32, "trust_auto": tauto,
        "file_precision_attr": attrs.get("precision"),
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "machine"}, indent=1))
    (OUT / "precision.json").write_text(json.dumps({**summary, "runs": results}, indent=1))


if __name__ == "__main__":
    main()
