#!/usr/bin/env python3
"""Adding posters to a map (--update) against making it in full, side by side, and how well they sit.

    python bench/bench_update.py [--n 100000] [--add 1000] [--repeats 3]

Synthetic inputs (bench/synthetic.py: bench posters under distinct ids, clustered 4096-d features) of
N + ADD posters. A full stage 3 maps the first N (the map to update), then --update adds the other ADD,
REPEATS times, each on a hard-linked copy of that map (cp -al: the update replaces files, never writes
into them), and a full stage 3 maps all N + ADD (the re-run an update replaces). Prints and writes to
bench/out/update_N.json:

- seconds and peak memory of each; the update's median against the median of the two full runs;
- positions: every old poster's x, y in data.json and raw t-SNE position in the state, bit for bit;
- tiles: how many were drawn again, and that every other tile is the earlier file (same inode, same bytes);
- placement: the new posters' trustworthiness (k = 10, their map neighbourhoods against their neighbourhoods
  in the PCA space of the full re-run, over all posters) on the updated map and on the full re-run;
- similar posters: the new posters' lists against the exact cosine top-k over all posters, for the update
  and for the full re-run (which, above 5,000 posters, takes candidates from a projection).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

from common import OUT, ROOT, machine, median, peak_rss_mib
from synthetic import make_inputs

from posters_cnn.contracts import maptable
from posters_cnn.contracts.store import FeatureWriter, read_features
from posters_cnn.mapping.similarity import _top, normalize_rows


def stage3(features: Path, manifest: Path, out: Path, *extra) -> tuple[float, float]:
    return peak_rss_mib([sys.executable, str(ROOT / "get_data_visu.py"), "-i", str(features), "--posters",
                         str(manifest), "-o", str(out), "--no-progress", "-q", *extra], cwd=ROOT,
                        stdout=subprocess.DEVNULL)


def first_rows(source: Path, target: Path, n: int) -> None:
    """A features file of ``source``'s first ``n`` rows (the archive before the new posters came)."""
    ids, _, attrs = read_features(source, load=False)
    writer = FeatureWriter(target, 4096, {k: attrs[k] for k in ("model", "layer", "weights")}, overwrite=True)
    with h5py.File(source, "r") as handle:
        for start in range(0, n, 8192):
            stop = min(n, start + 8192)
            writer.append(ids[start:stop], handle["features"][start:stop])
    writer.close()


def load(out: Path):
    meta, columns = maptable.read_columns(out)
    data = {"meta": meta, "columns": columns}
    state = np.load(out.parent / data["meta"]["state"], allow_pickle=False)
    return data, {name: state[name] for name in state.files}


def trustworthiness_of(rows: np.ndarray, high: np.ndarray, low: np.ndarray, k: int = 10) -> float:
    """sklearn's trustworthiness, with the sum over ``rows`` only (each against every point)."""
    n = len(high)
    penalty = 0.0
    for start in range(0, len(rows), 256):
        part = rows[start:start + 256]
        dh = (high[part] ** 2).sum(1)[:, None] - 2 * high[part] @ high.T + (high ** 2).sum(1)[None, :]
        dl = ((low[part, None, :] - low[None, :, :]) ** 2).sum(-1)
        dh[np.arange(len(part)), part] = np.inf
        dl[np.arange(len(part)), part] = np.inf
        ranks = np.empty_like(dh, dtype=np.int64)
        order = np.argsort(dh, axis=1)
        np.put_along_axis(ranks, order, np.arange(1, n + 1)[None, :].repeat(len(part), 0), axis=1)
        near_low = np.argsort(dl, axis=1)[:, :k]
        r = np.take_along_axis(ranks, near_low, axis=1)
        penalty += np.maximum(r - k, 0).sum()
    return float(1 - 2.0 / (len(rows) * k * (2 * n - 3 * k - 1)) * penalty)


def exact_top(features: Path, ids: list[str], rows: list[int], k: int) -> list[list[str]]:
    """Each of ``rows``' k most similar posters by exact cosine over every poster of ``ids``."""
    all_ids, _, _ = read_features(features, load=False)
    where = {pid: i for i, pid in enumerate(all_ids)}
    with h5py.File(features, "r") as handle:
        data = normalize_rows(handle["features"][: len(all_ids)].astype(np.float32))
    order = np.array([where[pid] for pid in ids])
    unit = data[order]
    sims = unit[rows] @ unit.T
    sims[np.arange(len(rows)), rows] = -np.inf
    top, _ = _top(sims, k)
    return [[ids[j] for j in row] for row in top.tolist()]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--add", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep bench/out/update-N/ (the maps) afterwards")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    features, manifest = make_inputs(args.n + args.add)
    work = OUT / f"update-{args.n}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    early = work / "early.h5"
    first_rows(features, early, args.n)
    base = work / "base" / "data.json"
    full_seconds, full_mib = stage3(early, manifest, base)
    print(f"full stage 3 at {args.n}: {full_seconds:.1f} s, peak {full_mib:.0f} MiB")
    before, before_state = load(base)
    before_tiles = {}
    for path in (base.parent / before["meta"]["run"] / "tiles").rglob("*.jpg"):
        before_tiles[path.relative_to(base.parent / before["meta"]["run"])] = os.stat(path).st_ino

    updates = []
    for repeat in range(args.repeats):
        copy = work / f"update-{repeat}"
        subprocess.run(["cp", "-al", str(base.parent), str(copy)], check=True)
        seconds, mib = stage3(features, manifest, copy / "data.json", "--update")
        updates.append((seconds, mib))
        print(f"update {repeat + 1}: {seconds:.1f} s, peak {mib:.0f} MiB")
    updated_path = work / "update-0" / "data.json"
    updated, updated_state = load(updated_path)

    whole = work / "full" / "data.json"
    rerun_seconds, rerun_mib = stage3(features, manifest, whole)
    print(f"full stage 3 at {args.n + args.add}: {rerun_seconds:.1f} s, peak {rerun_mib:.0f} MiB")
    full, full_state = load(whole)

    # Positions of the old posters, bit for bit.
    n_old = len(before["columns"]["id"])
    same_ids = updated["columns"]["id"][:n_old] == before["columns"]["id"]
    same_xy = all(updated["columns"][c][:n_old] == before["columns"][c] for c in ("x", "y"))
    same_raw = bool(np.array_equal(updated_state["raw"][:n_old], before_state["raw"]))
    # Tiles: drawn again, or the earlier file itself.
    meta = updated["meta"]["update"]
    run = updated_path.parent / updated["meta"]["run"]
    linked = drawn = 0
    for path in (run / "tiles").rglob("*.jpg"):
        rel = path.relative_to(run)
        if before_tiles.get(rel) == os.stat(path).st_ino:
            linked += 1
        else:
            drawn += 1
    # Placement: the new posters' trustworthiness on both maps, in the full re-run's PCA space.
    order_full = {pid: i for i, pid in enumerate(full["columns"]["id"])}
    ids = updated["columns"]["id"]
    to_full = np.array([order_full[pid] for pid in ids])
    high = full_state["points"][to_full].astype(np.float64)
    new_rows = np.arange(n_old, len(ids))
    low_update = np.stack([updated["columns"]["x"], updated["columns"]["y"]], 1)
    low_full = np.stack([full["columns"]["x"], full["columns"]["y"]], 1)[to_full]
    trust_update = trustworthiness_of(new_rows, high, low_update)
    trust_full = trustworthiness_of(new_rows, high, low_full)
    # Similar posters of the new posters, against the exact top-k.
    k = updated["meta"]["neighbors"]
    truth = exact_top(features, ids, new_rows.tolist(), k)

    def lists(data, order):
        cols = data["columns"]
        return [[cols["id"][j] for j in cols["neighbors"][order[i] * k:(order[i] + 1) * k]] for i in new_rows]

    update_lists = lists(updated, np.arange(len(ids)))
    full_lists = lists(full, to_full)
    result = {
        "machine": machine(), "n": args.n, "add": args.add,
        "command": f"python bench/bench_update.py --n {args.n} --add {args.add} --repeats {args.repeats}",
        "full_seconds": [round(full_seconds, 1), round(rerun_seconds, 1)], "full_peak_mib": [round(full_mib),
                                                                                             round(rerun_mib)],
        "update_seconds": [round(s, 1) for s, _ in updates], "update_peak_mib": [round(m) for _, m in updates],
        "ratio": round(median([s for s, _ in updates]) / median([full_seconds, rerun_seconds]), 4),
        "update_timings": meta.get("timings"),
        "old_positions_bit_identical": bool(same_ids and same_xy and same_raw),
        "tiles_drawn": drawn, "tiles_linked": linked, "tiles_drawn_said": meta["tiles_drawn"],
        "new_trustworthiness": {"update": round(trust_update, 4), "full": round(trust_full, 4)},
        "new_neighbours_equal_exact": {"update": sum(a == b for a, b in zip(update_lists, truth)) / len(truth),
                                       "full": sum(a == b for a, b in zip(full_lists, truth)) / len(truth)},
        "new_neighbours_equal_full_run": sum(a == b for a, b in zip(update_lists, full_lists)) / len(truth),
        "state_mib": round((updated_path.parent / updated["meta"]["state"]).stat().st_size / 2**20, 1),
        "far": meta["far"], "past_edge": meta["past_edge"],
    }
    print(json.dumps(result, indent=1))
    (OUT / f"update_{args.n}.json").write_text(json.dumps(result, indent=1))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"bench took {time.perf_counter() - started:.0f} s")
