"""Write tests/fixtures/geometry.json, the golden fixture of the map's geometry (posters_cnn.contracts.geometry
and web/geometry.js are both checked against it). Run it only when the contract changes on purpose:

    .venv/bin/python tests/make_geometry_fixture.py

Its cases are chosen for edges: boxes on tile edges, points on box edges and in overlaps, views
beyond the pyramid, levels past the deepest.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from posters_cnn.contracts import geometry as g  # noqa: E402

OUT = ROOT / "tests" / "fixtures" / "geometry.json"


def main() -> None:
    rng = np.random.default_rng(7)
    # A small map: data-frame positions, some on the frame's edges and corners, some overlapping.
    xs = [-1.0, 1.0, 0.0, 0.0, 0.5, -0.5, 0.25, 0.26] + list(np.round(rng.uniform(-1, 1, 12), 5))
    ys = [1.0, -1.0, 0.0, 0.02, 0.5, -0.5, -0.25, -0.25] + list(np.round(rng.uniform(-1, 1, 12), 5))
    aspect = [0.5, 2.0, 0.67, 1.0, 8.0, 0.125, 0.7, 0.7] + list(np.round(rng.uniform(0.4, 1.6, 12), 4))
    n = len(xs)
    slot = g.slot_size(n)
    u, v = g.to_unit(xs, ys)
    boxes = g.poster_boxes(u, v, aspect, slot)
    origin, span = g.pyramid_frame(slot)
    levels = g.deepest_level(slot, 128, span) + 1
    present = []
    for z in range(levels):
        flags = np.zeros((1 << z, 1 << z), bool)
        for tx0, ty0, tx1, ty1 in g.tiles_of_boxes(boxes, z, origin, span):
            flags[ty0:ty1 + 1, tx0:tx1 + 1] = True
        present.append(g.encode_presence(flags))
    deepest = levels - 1
    size = span / (1 << deepest)
    # Points: each poster's centre, a corner of poster 2's box (an edge), the overlap of 6 and 7, the
    # pyramid's corner, and a point on no poster.
    points = [[float(a), float(b)] for a, b in zip(u, v)]
    points += [[float(boxes[2, 0]), float(boxes[2, 1])], [float(boxes[7, 0]), float(boxes[7, 1] + 1e-4)],
               [origin, origin], [0.02, 0.98]]
    views = [[0.0, 0.0, 1.0, 1.0], [0.4, 0.4, 0.45, 0.47], [-3.0, -3.0, -2.0, -2.0], [2.0, 0.0, 3.0, 1.0],
             [origin + size, origin + size, origin + 2 * size, origin + 2 * size]]
    tiles = [(z, x, y) for z in range(deepest + 2) for x in range(1 << min(z, 2)) for y in range(1 << min(z, 2))]
    fixture = {
        "about": "golden cases of the map's geometry; see posters_cnn/contracts/geometry.py. Made by "
                 "tests/make_geometry_fixture.py.",
        "tile": g.TILE,
        "frames": [{"data": [x, y], "unit": [float(a), float(b)]} for x, y, a, b in zip(xs, ys, u, v)],
        "slot_size": [{"n": k, "slot": g.slot_size(k)} for k in (1, 5, n, 300, 100_000, 1_000_000)],
        "grid_slot": [{"side": k, "slot": g.grid_slot(k)} for k in (1, 2, 10, 317)],
        "map": {"n": n, "x": xs, "y": ys, "aspect": aspect, "slot": slot, "origin": origin, "span": span,
                "levels": levels, "present": present, "boxes": boxes.tolist()},
        "deepest_level": [{"slot": s, "min_poster": mp, "span": sp, "level": g.deepest_level(s, mp, sp)}
                          for s in (slot, 0.001, 0.5, 1e-6) for mp in (128, 64) for sp in (1 + 2 * s,)],
        "deepest_composed_level": [{"levels": lv, "slot": s, "span": 1 + 2 * s, "thumb_size": t,
                                    "level": g.deepest_composed_level(lv, s, 1 + 2 * s, t)}
                                   for lv, s in ((levels, slot), (9, 0.002), (1, 0.4)) for t in (256, 512)],
        "level_for": [{"px_per_unit": p, "span": sp, "max_level": m, "level": g.level_for(p, sp, m)}
                      for p in (100, 256, 256.0000001, 511, 512, 1e5, 1e9) for sp in (1.0, 1.2) for m in (3, 12)],
        "tile_rect": [{"z": z, "x": x, "y": y, "rect": list(g.tile_rect(z, x, y, origin, span))}
                      for z, x, y in ((0, 0, 0), (1, 1, 0), (3, 5, 7), (deepest, 1, 2))],
        "tile_range": [{"view": vw, "z": z, "range": g.tile_range(vw, z, origin, span)}
                       for vw in views for z in (0, 2, deepest)],
        "tiles_of_boxes": {str(z): g.tiles_of_boxes(boxes, z, origin, span).tolist() for z in range(deepest + 2)},
        # Boxes whose edges lie exactly on tile edges (origin -0.25, span 1.5: tiles of 0.375 at level 2,
        # every number exact in binary): an edge shared with a tile does not put the box in it.
        "edge_boxes": [{"box": box, "z": 2, "origin": -0.25, "span": 1.5,
                        "tiles": g.tiles_of_boxes([box], 2, -0.25, 1.5)[0].tolist()}
                       for box in ([0.125, 0.125, 0.5, 0.5], [0.125, 0.125, 0.125, 0.125], [0.1, 0.2, 0.51, 0.5],
                                   [-1.0, -1.0, 0.125, 5.0])],
        "posters_in_tile": [{"z": z, "x": x, "y": y,
                             "posters": g.posters_in_tile(boxes, z, x, y, origin, span).tolist()}
                            for z, x, y in tiles],
        "present": [{"z": z, "x": x, "y": y, "present": g.is_present(present, z, x, y)}
                    for z, x, y in tiles + [(deepest + 3, 17, 5), (1, 2, 0), (1, -1, 0)]],
        "pick": [{"point": p, "poster": g.pick(boxes, *p)} for p in points],
        "tile_url": [{"template": "assets/maps/data/run-1/tiles/tsne/{z}/{x}-{y}.jpg", "z": 3, "x": 2, "y": 7,
                      "url": g.tile_url("assets/maps/data/run-1/tiles/tsne/{z}/{x}-{y}.jpg", 3, 2, 7)}],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}: {n} posters, {levels} levels")


if __name__ == "__main__":
    main()
