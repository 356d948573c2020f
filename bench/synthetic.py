"""Stage-2-format inputs of any size for stage-3 and page benchmarks.

Real bench posters (duplicated past their 4,116 to reach big counts) carry
synthetic 4096-d features drawn around a few known cluster centres: the
timings depend on the count and the shapes, not on what the features mean.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from common import OUT, ensure_bench_posters
from posters_cnn.contracts.manifest import load_ok
from posters_cnn.contracts.store import FeatureWriter


def make_inputs(n: int, clusters: int = 20, dim: int = 4096, seed: int = 0, *, with_features: bool = True):
    """(features.h5, posters.csv) with n posters in bench/out/synthetic-N/ (made once).

    ``with_features=False`` makes the manifest and its images only (features.h5 is then not written)."""
    folder = OUT / f"synthetic-{n}"
    features, manifest = folder / "features.h5", folder / "posters.csv"
    made = manifest.exists() and (folder / ".layout-2").exists()
    if made and (features.exists() or not with_features):
        return features, manifest
    folder.mkdir(parents=True, exist_ok=True)
    if not made:
        ids = _make_manifest(n, folder, manifest)
    else:
        ids = pd.read_csv(manifest, usecols=["poster_id"], dtype=str)["poster_id"].tolist()
    if features.exists() or not with_features:
        return features, manifest
    _make_features(features, ids, clusters, dim, seed)
    return features, manifest


def _make_manifest(n: int, folder, manifest) -> list[str]:
    """Write the manifest of n posters and link their images; their ids, in the manifest's order."""
    base = load_ok(ensure_bench_posters())
    rows = []
    for i in range(n):
        src = base.iloc[i % len(base)]
        copy = i // len(base)
        pid = src.poster_id if copy == 0 else f"{src.poster_id}_dup{copy}"
        # Laid out as stage 1 lays out a scrape (hard links to the bench posters), so that the
        # map's paths follow its templates, as they do for real users.
        image, thumb = f"posters/{pid}.jpg", f"thumbs/{pid}.jpg"
        for rel, source in ((image, src.image_abspath), (thumb, src.thumb_abspath)):
            target = folder / rel
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                os.link(source, target)
        rows.append({"poster_id": pid, "title": src.title if copy == 0 else f"{src.title} ({copy})",
                     "year": src.year, "version": src.version,
                     "page_url": f"http://www.impawards.com/{pid}.html", "image_url": src.image_url,
                     "image_path": image, "thumb_path": thumb, "width": src.width, "height": src.height,
                     "status": "ok", "error": ""})
    pd.DataFrame(rows).to_csv(manifest, index=False)
    (folder / ".layout-2").touch()
    return [row["poster_id"] for row in rows]


def _make_features(features, ids: list[str], clusters: int, dim: int, seed: int) -> None:
    n = len(ids)
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (clusters, dim)).astype(np.float32) * 2
    writer = FeatureWriter(features, dim, {"model": "synthetic", "layer": "fc2", "weights": "synthetic clusters"},
                           overwrite=True)
    for start in range(0, n, 2048):
        stop = min(n, start + 2048)
        labels = rng.integers(0, clusters, stop - start)
        block = np.maximum(centres[labels] + rng.normal(0, 1, (stop - start, dim)).astype(np.float32), 0)
        writer.append(ids[start:stop], block)
    writer.close()
