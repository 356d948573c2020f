#!/usr/bin/env python3
"""Stage 3's "link images" step against another commit's, side by side on the same manifest.

    python bench/bench_link_images.py --n 100000 --against bfb46b2 --repeats 3

Makes (or reuses) the synthetic manifest of bench/synthetic.py (bench/out/synthetic-N/, its images hard
links to the bench posters; no features), then, in a fresh process per run and alternating between the
two codes, reads it as stage 3 does (``load_ok_records``) and times ``stage.link_images``: the posters'
images and thumbnails linked under a fresh ``assets`` folder (2 x N links, as a first run of stage 3 makes
them), then the same call again over the links now there (a second run of the stage on the same map).
The reading is left out of the times. ``--against REV`` is checked out into a git worktree under /tmp.
Writes bench/out/link_images_N.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from common import OUT, machine, median, side_by_side
from synthetic import make_inputs

RUN = """
import json, shutil, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from posters_cnn.contracts.manifest import load_ok_records
from posters_cnn.mapping import stage
rows = load_ok_records(sys.argv[2])
out = Path(sys.argv[3])
shutil.rmtree(out, ignore_errors=True)
times = {}
for name in ("first", "again"):
    start = time.perf_counter()
    stage.link_images(rows, out / "assets", 2)
    times[name] = round(time.perf_counter() - start, 2)
linked = sum(1 for p in (out / "assets").rglob("*.jpg"))
shutil.rmtree(out)
print(json.dumps({**times, "linked": linked}))
"""


def run(code: Path, manifest: Path, n: int) -> dict:
    out = OUT / f".link-images-{n}"
    done = subprocess.run([sys.executable, "-c", RUN, str(code), str(manifest), str(out)], check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--against", metavar="REV", required=True, help="the commit to compare with")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    _, manifest = make_inputs(args.n, with_features=False)
    rows = side_by_side(args.against, "link-images", args.repeats, lambda code: run(code, manifest, args.n))
    summary = {name: {step: median([r[step] for r in runs]) for step in ("first", "again")}
               for name, runs in rows.items()}
    for step in ("first", "again"):
        summary[f"ratio_{step}"] = round(summary["this checkout"][step] / summary[args.against][step], 3)
    result = {"machine": machine(), "n": args.n, "against": args.against, "runs": rows, "median_s": summary}
    path = OUT / f"link_images_{args.n}.json"
    path.write_text(json.dumps(result, indent=1))
    print(json.dumps(summary))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
