"""Large photos (`--from-dir` users' 12-megapixel phone pictures): decoding at reduced size.

Measures images/s of the two places that decode a photo, with and without
JPEG draft (DCT-domain) decoding, side by side in one run, median of 3:

* stage 1's thumbnail: ``images.decode`` + ``images.thumbnail`` (256 px);
* stage 2's input: ``features.load_image`` (224 x 224).

The photos are generated here (4000 x 3000, smooth shapes plus sensor-like
noise, JPEG quality 90, an EXIF orientation), so the benchmark needs nothing
outside the repository. Usage: python bench/bench_large_photos.py [N]
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
from PIL import Image, ImageDraw

from common import OUT, machine, median
from posters_cnn.features import stage as features
from posters_cnn import images

SIZE = (4000, 3000)


def make_photos(folder, n):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"photo_{i:02d}.jpg"
        paths.append(path)
        if path.exists():
            continue
        image = Image.new("RGB", SIZE, tuple(int(v) for v in rng.integers(0, 255, 3)))
        draw = ImageDraw.Draw(image)
        for _ in range(40):
            x, y = rng.integers(0, SIZE[0]), rng.integers(0, SIZE[1])
            r = int(rng.integers(100, 900))
            draw.ellipse([x - r, y - r, x + r, y + r], fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
        noisy = np.asarray(image, np.int16) + rng.normal(0, 6, (SIZE[1], SIZE[0], 3)).astype(np.int16)
        exif = Image.Exif()
        exif[0x0112] = 6
        Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(path, quality=90, exif=exif.tobytes())
    return paths


def thumbnails(paths, reduced):
    for path in paths:
        image = images.decode(path.read_bytes(), reduce_to=256 if reduced else None)
        images.jpeg_bytes(images.thumbnail(image, 256))


def network_inputs(paths, reduced):
    for path in paths:
        features.load_image(path, reduced=reduced)


def rate(fn, paths, reduced):
    start = time.perf_counter()
    fn(paths, reduced)
    return len(paths) / (time.perf_counter() - start)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 12
    paths = make_photos(OUT / "large_photos", n)
    megabytes = sum(p.stat().st_size for p in paths) / len(paths) / 2**20
    results = {"machine": machine(), "photos": n, "size": list(SIZE), "mean_file_mib": round(megabytes, 2)}
    for name, fn in (("thumbnail", thumbnails), ("stage2_input", network_inputs)):
        runs = {"full": [], "reduced": []}
        for _ in range(3):  # interleaved, so that both see the same machine
            for mode in ("full", "reduced"):
                runs[mode].append(rate(fn, paths, mode == "reduced"))
        full, reduced = median(runs["full"]), median(runs["reduced"])
        results[name] = {"full_images_per_s": round(full, 2), "reduced_images_per_s": round(reduced, 2),
                         "speedup": round(reduced / full, 2)}
        print(f"{name}: full decode {full:.2f} images/s, reduced {reduced:.2f} images/s, "
              f"{reduced / full:.2f}x (median of 3, {n} photos of {SIZE[0]}x{SIZE[1]}, {megabytes:.1f} MiB)")
    (OUT / "bench_large_photos.json").write_text(json.dumps(results, indent=1))
    print(results["machine"])


if __name__ == "__main__":
    main()
