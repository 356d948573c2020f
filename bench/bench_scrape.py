#!/usr/bin/env python3
"""Stage 1 throughput: default settings against one-at-a-time fetching, and by --jobs.

    python bench/bench_scrape.py [--range 1990-1991] [--repeats 3] [--latency 0.1]

Serves ../shared/data/impawards-bench with the shared fake server (each
response delayed by --latency seconds, a distant site), then scrapes the same
years into a fresh folder each time: with --jobs 1 (the sequential baseline)
and with the defaults (--jobs 4), interleaved, and once at each other --jobs.
Prints the medians and the ratio; paste them into bench/RESULTS.md.
"""

import argparse
import shutil
import subprocess
import sys

from common import OUT, ROOT, fake_site, machine, median, timed


def scrape(url, years, out, jobs=None):
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, str(ROOT / "get_posters.py"), "--base-url", url, "--range", years,
           "--out-dir", str(out), "--no-progress", "-q"]
    if jobs is not None:
        cmd += ["--jobs", str(jobs)]
    return timed(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def count_posters(out):
    import pandas as pd
    return len(pd.read_csv(out / "posters.csv"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--range", default="1990-1991")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--jobs-sweep", default="1,2,4,8")
    args = parser.parse_args()
    out = OUT / "scrape"
    print(f"machine: {machine()}")
    from common import BENCH_SITE
    with fake_site(BENCH_SITE, "--latency", args.latency) as url:
        seq, par = [], []
        for _ in range(args.repeats):
            seq.append(scrape(url, args.range, out, jobs=1))
            par.append(scrape(url, args.range, out))
        n = count_posters(out)
        print(f"{n} manifest rows, years {args.range}, latency {args.latency}s, {args.repeats} runs each")
        print(f"sequential (--jobs 1): median {median(seq):.2f}s  runs {[round(t, 2) for t in seq]}")
        print(f"default (--jobs 4):    median {median(par):.2f}s  runs {[round(t, 2) for t in par]}")
        print(f"speed-up: {median(seq) / median(par):.2f}x")
        sweep = {}
        for jobs in map(int, args.jobs_sweep.split(",")):
            t = scrape(url, args.range, out, jobs=jobs)
            sweep[jobs] = n / t
            print(f"--jobs {jobs}: {t:.2f}s, {n / t:.1f} posters/s")
    import json
    with open(OUT / "scrape.json", "w") as fh:
        json.dump({"machine": machine(), "rows": n, "range": args.range, "latency": args.latency,
                   "sequential_s": seq, "default_s": par, "speedup": median(seq) / median(par),
                   "posters_per_s_by_jobs": sweep}, fh, indent=1)


if __name__ == "__main__":
    main()
