#!/usr/bin/env python3
"""Stage 1 of this checkout against stage 1 of an earlier commit, side by side: what a change cost.

    python bench/bench_scrape_against.py 7509cb6 [--range 1990-1999] [--repeats 5] [--latency 0]

Checks the earlier commit out into a scratch worktree, then scrapes the same years of
../shared/data/impawards-bench into a fresh folder with each, alternating (earlier, this, earlier,
this, ...), and prints the median seconds of each and their ratio. With --latency 0 the server
answers at once, so what is measured is the client's own work per request.
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import BENCH_SITE, OUT, ROOT, fake_site, machine, median, timed


def scrape(tree: Path, url: str, years: str, out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    return timed([sys.executable, str(tree / "get_posters.py"), "--base-url", url, "--range", years,
                  "--out-dir", str(out), "--no-progress", "-q"], cwd=tree, stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base", help="the earlier commit")
    parser.add_argument("--range", default="1990-1999")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="bench-base-") as scratch:
        base = Path(scratch) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base), args.base], cwd=ROOT, check=True)
        try:
            times = {"base": [], "this": []}
            with fake_site(BENCH_SITE, "--latency", args.latency) as url:
                for _ in range(args.repeats):
                    times["base"].append(scrape(base, url, args.range, OUT / "scrape-base"))
                    times["this"].append(scrape(ROOT, url, args.range, OUT / "scrape-this"))
            rows = sum(1 for _ in open(OUT / "scrape-this" / "posters.csv")) - 1
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)
    b, t = median(times["base"]), median(times["this"])
    print(f"years {args.range}, {rows} manifest rows, latency {args.latency} s, {args.repeats} runs each")
    print(f"{args.base}: median {b:.2f} s {sorted(round(x, 2) for x in times['base'])}")
    print(f"this checkout: median {t:.2f} s {sorted(round(x, 2) for x in times['this'])}")
    print(f"this / {args.base} = {t / b:.3f}x the time")


if __name__ == "__main__":
    main()
