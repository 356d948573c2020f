#!/usr/bin/env python3
"""Plots for bench/RESULTS.md from the JSON the benchmark scripts leave in bench/out/.

    python bench/plots.py   ->  bench/throughput.png, bench/visu.png
"""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"


def load(name):
    path = OUT / name
    return json.loads(path.read_text()) if path.exists() else None


def throughput():
    scrape, feats = load("scrape.json"), load("features.json")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    if scrape:
        jobs = sorted(scrape["posters_per_s_by_jobs"], key=int)
        axes[0].bar([f"--jobs {j}" for j in jobs], [scrape["posters_per_s_by_jobs"][j] for j in jobs],
                    color="#4363d8")
        axes[0].set_title(f"Stage 1: posters/s, {scrape['latency']} s latency")
        axes[0].set_ylabel("posters per second")
    if feats:
        import statistics
        names = ["original\n(predict per image)", "stage 2\n(defaults)", "bare model\n(best)"]
        values = [statistics.median(feats["original"]), statistics.median(feats["stage"]), max(feats["bare"].values())]
        axes[1].bar(names, values, color=["#a9a9a9", "#3cb44b", "#f58231"])
        axes[1].set_title("Stage 2: images/s on the CPU (random weights)")
        axes[1].set_ylabel("images per second")
    fig.tight_layout()
    fig.savefig(HERE / "throughput.png", dpi=100)


def visu():
    data = load("visu.json")
    if not data:
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for what, colour in (("opentsne", "#3cb44b"), ("sklearn", "#4363d8"), ("baseline", "#a9a9a9")):
        rows = sorted((r for r in data["results"] if r["what"] == what), key=lambda r: r["n"])
        if not rows:
            continue
        label = {"opentsne": "stage 3, openTSNE", "sklearn": "stage 3, sklearn",
                 "baseline": "PCA + sklearn TSNE only"}[what]
        axes[0].plot([r["n"] for r in rows], [r["median_s"] for r in rows], "o-", color=colour, label=label)
        axes[1].plot([r["n"] for r in rows], [r["peak_mib"] / 1024 for r in rows], "o-", color=colour, label=label)
    axes[0].set_title("Stage 3: time")
    axes[0].set_ylabel("seconds")
    axes[1].set_title("Stage 3: peak memory")
    axes[1].set_ylabel("GiB")
    for ax in axes:
        ax.set_xlabel("posters")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(HERE / "visu.png", dpi=100)


if __name__ == "__main__":
    throughput()
    visu()
    print("wrote", HERE / "throughput.png", HERE / "visu.png")
