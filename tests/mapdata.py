"""Synthetic stage-2 output for stage-3 and page tests: clustered features, real files."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from posters_cnn.contracts import maptable
from posters_cnn.contracts.manifest import PosterRecord, write_manifest
from posters_cnn.contracts.store import FeatureWriter

COLOURS = [(200, 40, 40), (40, 160, 60), (40, 70, 200), (220, 180, 30), (150, 60, 180)]


def make_mapdata(folder, n_per_cluster=12, clusters=3, titles=None, dim=4096, seed=0, nan_rows=0, height=90):
    """posters.csv + features.h5 + images in ``folder``; returns (manifest, features, cluster of each id).

    The images are ``height`` px tall (thumbnails of 256 make the page compose tiles from them).
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (clusters, dim)).astype(np.float32) * 3
    records, ids, rows, cluster_of = [], [], [], {}
    for c in range(clusters):
        for k in range(n_per_cluster):
            # Every sixth poster is a second version of the one before it: same year, same movie key
            # (so --one-per-movie and the pairs' exclusion of versions have something to act on),
            # and nearly the same features (so versions would be the closest pairs if not excluded).
            is_version = k % 6 == 0 and k > 0
            base_k = k - 1 if is_version else k
            year = 1990 + (base_k % 5) * 5
            name = f"movie_c{c}_{base_k:02d}_ver2" if is_version else f"movie_c{c}_{k:02d}"
            pid = f"{year}/{name}"
            if pid in cluster_of:
                name, pid = f"{name}_b", f"{year}/{name}_b"
            title = (titles or {}).get(len(ids), f"Movie {c}-{k}")
            scale = height / 90
            image = Image.new("RGB", (round((60 + k) * scale), height), COLOURS[c % len(COLOURS)])
            ImageDraw.Draw(image).rectangle([5 * scale, (5 + k) * scale, 40 * scale, (40 + k) * scale],
                                            fill=(255, 255, 255))
            for sub in ("posters", "thumbs"):
                path = folder / sub / str(year) / f"{name}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                image.save(path, quality=90)
            records.append(PosterRecord(pid, title, year, 2 if name.endswith("_ver2") else 1,
                                        page_url=f"http://www.impawards.com/{year}/{name}.html",
                                        image_path=f"posters/{year}/{name}.jpg",
                                        thumb_path=f"thumbs/{year}/{name}.jpg", width=image.width,
                                        height=image.height,
                                        status="ok"))
            ids.append(pid)
            if is_version:
                rows.append(rows[-1] + np.abs(rng.normal(0, 0.01, dim)).astype(np.float32))
            else:
                rows.append(np.maximum(centres[c] + rng.normal(0, 1, dim).astype(np.float32), 0))
            cluster_of[pid] = c
    features = np.stack(rows)
    for i in range(nan_rows):
        features[i * 7, :3] = np.nan
    write_manifest(folder / "posters.csv", records)
    writer = FeatureWriter(folder / "features.h5", dim, {"model": "keras.applications.VGG16", "layer": "fc2",
                                                           "weights": "random(seed=0)"})
    writer.append(ids, features)
    writer.close()
    return folder / "posters.csv", folder / "features.h5", cluster_of


def points_of(data):
    """data.json's columns (format 2) as one dict per poster, paths and neighbours resolved, for tests."""
    cols, meta = data["columns"], data["meta"]
    k = meta["neighbors"]
    paths = meta["paths"]
    out = []
    for i, pid in enumerate(cols["id"]):
        point = {name: cols[name][i] for name in ("id", "title", "year", "version", "x", "y", "aspect")}
        for name in ("gx", "gy"):
            if name in cols:
                point[name] = cols[name][i]
        for name in ("thumb", "image"):
            own = cols.get(name, [None] * len(cols["id"]))[i]
            point[name] = own or paths[name].replace("{id}", pid)
        point["neighbors"] = [cols["id"][j] for j in cols["neighbors"][i * k:(i + 1) * k]]
        point["similarity"] = cols["similarity"][i * k:(i + 1) * k]
        out.append(point)
    return out


def tile_files(data):
    """Every tile file data.json says exists, as paths relative to its folder."""
    import base64

    files = []
    for pyramid in data["meta"]["tiles"].values():
        for z, b64 in enumerate(pyramid["present"]):
            bits = np.unpackbits(np.frombuffer(base64.b64decode(b64), np.uint8), bitorder="little")
            side = 2 ** z
            for bit in np.flatnonzero(bits[: side * side]):
                y, x = divmod(int(bit), side)
                files.append(pyramid["path"].replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y)))
    return files


def read_map(path):
    """A map's ``data.json`` as ``{"meta", "columns"}``: format 3's table read into format 2's columns."""
    meta, columns = maptable.read_columns(path)
    return {"meta": meta, "columns": columns}
