#!/usr/bin/env python3
"""Stage 2 images/s: the whole stage against the original's approach and the bare model.

    python bench/bench_features.py [--images 160] [--repeats 3]

All three run in one process on the same posters (scraped from
../shared/data/impawards-bench) with --weights random: only speed is measured
here, never anything about posters.

* original: for each image, PIL load + resize + preprocess_input, then one
  model.predict call per image (what the original project did);
* bare model: the fc2 forward alone on pre-decoded batches, compiled as a TF
  graph with and without XLA, batch 16 and 32; the best rate is kept;
* stage: posters_cnn.features.extract with its defaults (decoding threads
  feeding fixed-size batches), from the manifest to the HDF5 file.
"""

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from common import ensure_bench_posters, machine  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=160)
    parser.add_argument("--original-images", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import keras
    from posters_cnn.features import stage as features
    from posters_cnn.contracts.manifest import load_ok

    manifest = ensure_bench_posters()
    frame = load_ok(manifest).iloc[: args.images]
    paths = list(frame["image_abspath"])
    print(f"machine: {machine()}")
    print(f"{len(paths)} bench posters, --weights random (speed only)")
    model, _ = features.build_model("random")

    # The original: one predict per PIL-loaded image.
    def original():
        start = time.perf_counter()
        for path in paths[: args.original_images]:
            x = features.load_image(path).astype(np.float32)[None]
            model.predict(keras.applications.vgg16.preprocess_input(x), verbose=0)
        return args.original_images / (time.perf_counter() - start)

    # The bare model: compiled forward on pre-decoded batches.
    decoded = np.stack([features.load_image(p) for p in paths[:32]])
    bare = {}
    for jit in (False, True):
        forward = features.compiled_forward(model, jit=jit)
        for bs in (16, 32):
            forward(decoded[:bs]).numpy()  # compile
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                forward(decoded[:bs]).numpy()
                times.append(time.perf_counter() - start)
            bare[(jit, bs)] = bs / statistics.median(times)
            print(f"bare model, {'XLA' if jit else 'graph'}, batch {bs}: {bare[(jit, bs)]:.2f} images/s")
    best_key = max(bare, key=bare.get)

    stage, orig = [], []
    with tempfile.TemporaryDirectory() as tmp:
        sub = os.path.join(tmp, "posters.csv")
        frame.drop(columns=["image_abspath", "thumb_abspath"]).assign(
            image_path=paths, thumb_path=list(frame["thumb_abspath"])).to_csv(sub, index=False)
        for i in range(args.repeats):
            orig.append(original())
            summary = features.extract(sub, os.path.join(tmp, f"f{i}.h5"), weights="random", progress=False)
            stage.append(summary.computed / summary.seconds)
            print(f"run {i + 1}: original {orig[-1]:.2f} images/s, stage {stage[-1]:.2f} images/s")
    s, o, b = statistics.median(stage), statistics.median(orig), bare[best_key]
    print(f"original (predict per image): median {o:.2f} images/s")
    print(f"bare model best ({'XLA' if best_key[0] else 'graph'}, batch {best_key[1]}): {b:.2f} images/s")
    print(f"stage (defaults): median {s:.2f} images/s")
    print(f"stage / original = {s / o:.2f}x   stage / bare best = {s / b:.2f}x")
    import json
    from common import OUT
    with open(OUT / "features.json", "w") as fh:
        json.dump({"machine": machine(), "images": len(paths), "original": orig, "stage": stage,
                   "bare": {f"{'xla' if j else 'graph'}-{bs}": v for (j, bs), v in bare.items()},
                   "stage_over_original": s / o, "stage_over_bare": s / b}, fh, indent=1)


if __name__ == "__main__":
    main()
