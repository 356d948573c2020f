"""Write tests/fixtures/table/, the golden fixture of the map's table (data.json format 3): a small map's
``data.json``, its Arrow files, and ``columns.json``, the same columns as format 2 held them.
``posters_cnn.contracts.maptable`` (tests/test_maptable.py) and the page's reader (tests/js/table.test.js)
both read the files back into ``columns.json``. Run it only when the table's contract changes on purpose:

    .venv/bin/python tests/make_table_fixture.py

Its cases: a capacity of 4 rows, so that tiles split over three levels and a pile of posters at one point
stays in the deepest tile it reaches; the search index in shards of 10 posters, the last one short; null
years, versions, heights and titles; text beyond ASCII (of two, three and four bytes); two categories;
neighbours and similarities. ``tests/fixtures/table-titles-in-rows/`` is this fixture as the writer made it
before the titles had files of their own (kept by hand, not made here): such maps must still open.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from posters_cnn.contracts import geometry as g, maptable  # noqa: E402

OUT = ROOT / "tests" / "fixtures" / "table"
RUN = "assets/maps/data/run-fixture"
CAPACITY = 4
SEARCH_ROWS = 10  # three shards of the search index, the last one short


def main() -> None:
    rng = np.random.default_rng(11)
    n, k = 23, 3
    xs = list(np.round(rng.uniform(-1, 1, n - 5), 5)) + [0.5] * 5  # five posters at one point
    ys = list(np.round(rng.uniform(-1, 1, n - 5), 5)) + [0.5] * 5
    xs[0], ys[0] = -1.0, 1.0  # a corner, and a centre past the pyramid's edge counts in the edge tile
    slot = g.slot_size(n)
    origin, span = g.pyramid_frame(slot)
    neighbors = [int((i + d) % n) for i in range(n) for d in range(1, k + 1)]
    columns = {
        "id": [f"{1990 + i % 7}/poster_{i:02d}" for i in range(n)],
        "title": [None if i == 3 else f"Poster {i} — été" + (" 🎬" if i == n - 1 else "") for i in range(n)],
        "year": [None if i % 5 == 0 else 1990 + i % 7 for i in range(n)],
        "version": [None if i == 4 else 1 + i % 2 for i in range(n)],
        "x": [float(v) for v in xs], "y": [float(v) for v in ys],
        "aspect": [round(float(v), 4) for v in rng.uniform(0.4, 1.6, n)],
        "neighbors": neighbors,
        "similarity": [round(float(v), 3) for v in rng.uniform(0.2, 1.0, n * k)],
        "cluster": [i % 3 - 1 for i in range(n)], "region": [(i % 3 - 1) // 2 for i in range(n)],
        "height": [None if i % 4 == 0 else 300 + i for i in range(n)],
        "categories": [[i % 2 for i in range(n)], [-1 if i % 6 == 0 else i % 3 for i in range(n)]],
    }
    meta = {
        "format": maptable.FORMAT, "count": n, "neighbors": k, "run": RUN,
        "categories": [{"name": "folder", "source": "folder", "values": ["a", "b"], "sizes": [12, 11], "none": 0,
                        "others": 0},
                       {"name": "genre", "source": "metadata", "values": ["x", "y", "z"], "sizes": [6, 7, 6],
                        "none": 4, "others": 0}],
        "paths": {"thumb": "assets/thumbs/{id}.jpg", "image": "assets/posters/{id}.jpg"},
        "tiles": {"tsne": {"path": f"{RUN}/tiles/tsne/{{z}}/{{x}}-{{y}}.jpg", "size": g.TILE, "levels": 1,
                           "origin": origin, "span": span, "slot": slot, "present": ["AQ=="]}},
    }
    shutil.rmtree(OUT, ignore_errors=True)
    about = maptable.write(OUT / RUN / "table", columns, meta, capacity=CAPACITY, search_rows=SEARCH_ROWS)
    meta["table"] = maptable.relocate(about, f"{RUN}/table")
    (OUT / "data.json").write_text(json.dumps({"meta": meta}, ensure_ascii=False, indent=1) + "\n")
    (OUT / "columns.json").write_text(json.dumps(columns, ensure_ascii=False) + "\n")
    print(f"wrote {OUT}: {len(about['tiles'])} files, levels {sorted({t[0] for t in about['tiles']})}")


if __name__ == "__main__":
    main()
