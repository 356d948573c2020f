#!/usr/bin/env python3
"""Stage 3's similar-poster search against another commit's, side by side on the same features.

    python bench/bench_similar_search.py --n 100000 --against 41386d2 --repeats 1

Makes the synthetic inputs of bench/synthetic.py (kept in bench/out/synthetic-N/ with --keep), then, in
a fresh process per run and alternating between the two codes, reads them as stage 3 does
(``streamed.read``: float32 unit rows up to 131,072 posters, float16 past that) and finds each poster's 8
similar posters and the 200 closest pairs (``similarity.neighbours_and_pairs``, with the recall target
stage 3 uses). Records each run's search time (the reading left out), its recall@8 against exact cosine on
2,000 sampled posters (the stage's own measure, ``similarity.recall``), how wide it searched, and the
process's peak memory. ``--against REV`` is checked out into a git worktree under /tmp. Writes
bench/out/similar_search_N.json. The features are synthetic: the times say what the search costs on
them, nothing about posters.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from common import OUT, machine, median, peak_rss_mib, side_by_side
from synthetic import make_inputs

RUN = """
import json, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
from posters_cnn.mapping import similarity, streamed
n = int(sys.argv[3])
features, _ = streamed.read(sys.argv[2], np.arange(n))
info = {}
start = time.perf_counter()
index, _, pairs = similarity.neighbours_and_pairs(features.unit, k=8, n_pairs=200, normalized=True,
                                                  search_info=info)
seconds = time.perf_counter() - start
measured = similarity.recall(features.unit, index, normalized=True)
print(json.dumps({"seconds": round(seconds, 1), "recall": measured["recall"], "search": info,
                  "pairs": len(pairs)}))
"""


def run(code: Path, features: Path, n: int) -> dict:
    out = OUT / f".similar-search-{n}.json"
    with open(out, "w") as fh:
        _, peak = peak_rss_mib([sys.executable, "-c", RUN, str(code), str(features), str(n)], stdout=fh)
    row = json.loads(out.read_text())
    out.unlink()
    row["peak_mib"] = round(peak)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--against", metavar="REV", required=True, help="the commit to compare with")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the synthetic inputs")
    args = parser.parse_args()
    features, _ = make_inputs(args.n)
    try:
        rows = side_by_side(args.against, "similar-search", args.repeats, lambda code: run(code, features, args.n))
    finally:
        if not args.keep:
            shutil.rmtree(features.parent, ignore_errors=True)
    summary = {name: {"median_s": median([r["seconds"] for r in runs]), "recall": [r["recall"] for r in runs],
                      "peak_mib": [r["peak_mib"] for r in runs]} for name, runs in rows.items()}
    ratio = summary["this checkout"]["median_s"] / summary[args.against]["median_s"]
    result = {"machine": machine(), "n": args.n, "against": args.against, "runs": rows, "summary": summary,
              "ratio": round(ratio, 3)}
    (OUT / f"similar_search_{args.n}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(summary, indent=1))
    print(f"this checkout / {args.against}: {ratio:.3f}x")


if __name__ == "__main__":
    main()
