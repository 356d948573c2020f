#!/usr/bin/env python3
"""What keeping the similar-poster search's rows as they go costs, at 1,000 rows kept and at a million.

    python bench/bench_rows_so_far.py [--rows 1000000] [--repeats 9]

Stage 3 kept the similar posters' candidates and their re-ranking as they were made
(``checkpoints.RowsSoFar``: ``candidates.rows`` and ``reranked.rows``, appended to); since 7ff55e2 it keeps
one file, ``candidates.rows``, whose rows (poster, candidates and their cosines) are shaped like the
re-ranking's were, and written a search block at a time. This measures, in
a scratch folder under bench/out, with the shapes stage 3 uses at ROWS posters (32 candidates a poster):

* one write of a search block (8,192 posters' candidates, int32: 1 MiB appended, synced, and the
  JSON beside it replaced), with 1,000 rows kept before it and with ROWS: the median of REPEATS;
* the same for a re-ranking write (30 seconds of re-ranking: about 60,000 posters' candidates and
  cosines, 15 MiB);
* reading ROWS kept rows back (hash checked, bounds checked), for each of the two;
* beside them, what saving all ROWS candidates again in one ``.npz`` costs (the checkpoint as it was
  before: written once, after the whole search), for scale.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import OUT, machine  # noqa: E402

from posters_cnn.mapping import checkpoints  # noqa: E402

WORK = OUT / "rows-so-far"
M = 32


def kept(step: str, rows: int, columns: dict) -> checkpoints.RowsSoFar:
    return checkpoints.Checkpoints(WORK).rows_so_far(step, "bench", rows, columns)


def fill(so_far: checkpoints.RowsSoFar, count: int, make) -> None:
    """``count`` rows kept, written in blocks of 65,536, as one save."""
    for start in range(0, count, 65_536):
        so_far.append(make(min(65_536, count - start)))
    so_far.finish()


def write_times(step: str, columns: dict, make, before: int, block: int, repeats: int) -> list[float]:
    shutil.rmtree(WORK, ignore_errors=True)
    total = before + block * repeats
    so_far = kept(step, total, columns)
    so_far.begin({"width": 64})
    fill(so_far, before, make)
    times = []
    for _ in range(repeats):
        rows = make(block)
        started = time.perf_counter()
        so_far.append(rows)
        so_far.finish()
        times.append(time.perf_counter() - started)
    return times


def read_time(step: str, columns: dict, make, count: int) -> float:
    shutil.rmtree(WORK, ignore_errors=True)
    so_far = kept(step, count, columns)
    so_far.begin({"width": 64})
    fill(so_far, count, make)
    started = time.perf_counter()
    again = checkpoints.Checkpoints(WORK).rows_so_far(step, "bench", count, columns, within={"found": count}
                                                      if step == "candidates" else {"candidates": count})
    took = time.perf_counter() - started
    assert again.done == count
    return took


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args(argv)
    checkpoints.SAVE_EVERY_S = float("inf")  # written only when asked (finish), to time each write alone
    rng = np.random.default_rng(0)
    n = args.rows
    found = {"found": ("<i4", M)}
    reranked = {"candidates": ("<i4", M), "exact": ("<f4", M)}
    make_found = lambda count: {"found": rng.integers(0, n, (count, M), dtype=np.int32)}  # noqa: E731
    make_reranked = lambda count: {"candidates": rng.integers(0, n, (count, M), dtype=np.int32),  # noqa: E731
                                   "exact": rng.random((count, M), dtype=np.float32)}
    result = {"machine": machine(), "rows": n, "repeats": args.repeats}
    for step, columns, make, block in (("candidates", found, make_found, 8192),
                                       ("reranked", reranked, make_reranked, 61_440)):
        for before in (1000, n):
            times = write_times(step, columns, make, before, block, args.repeats)
            result[f"{step} write of {block} rows after {before}"] = round(statistics.median(times), 4)
        result[f"{step} read back {n}"] = round(read_time(step, columns, make, n), 3)
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    whole = rng.integers(0, n, (n, M), dtype=np.int32)
    times = []
    for _ in range(3):
        started = time.perf_counter()
        checkpoints.Checkpoints(WORK).save("candidates", "bench", {"found": whole}, {"width": 64})
        times.append(time.perf_counter() - started)
    result[f"all {n} candidates saved again as .npz"] = round(statistics.median(times), 3)
    shutil.rmtree(WORK, ignore_errors=True)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
