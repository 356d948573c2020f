"""The map's geometry, shared by stage 3 and the page: where each poster and each tile lies.

This module and ``web/geometry.js`` say the same thing in two languages, and
both are checked against one golden fixture, ``tests/fixtures/geometry.json``
(``tests/test_geometry.py`` and ``tests/js/geometry.test.js``). Change one,
change the other and the fixture (``python tests/make_geometry_fixture.py``).

Frames:

* **data**: ``x, y`` in [-1, 1], y up: what ``data.json``'s columns hold;
* **unit**: ``u, v`` in [0, 1], y down: ``u = (x + 1) / 2``, ``v = (1 - y) / 2``.
  Slots, poster boxes and tile pyramids are in this frame. The page's world
  frame is the unit frame times the map square's side in css pixels; every
  function below but :func:`level_for` is the same in any multiple of it.

A poster is drawn in a box that fits its **slot** (a square of side ``slot``)
and keeps its aspect, centred on its position. A box is ``(x0, y0, x1, y1)``.

A layout's **pyramid** covers the square ``[origin, origin + span]`` in both
unit axes; level ``z`` cuts it into ``2**z`` x ``2**z`` tiles of ``TILE``
pixels, and tile ``(z, x, y)`` is the half-open square from its corner
``origin + (x, y) * span / 2**z``. A poster lies in the tiles its box meets;
its tiles' bits are set in the level's ``present`` bitset (bit ``y * 2**z + x``,
little-endian within each byte, base64), and only those tiles exist.

Picking: the poster under a point is the one drawn on top there, the highest
index whose box holds the point (edges included).
"""

from __future__ import annotations

import base64
import math

import numpy as np

TILE = 256
SLOT_FILL = 0.92  # the t-SNE map: n slots of side 0.92 / sqrt(n), about 85% of the unit square
MAX_LEVEL = 12  # stage 3 renders at most levels 0 .. 12


def to_unit(x, y):
    """Data frame to unit frame (arrays or numbers)."""
    return (np.asarray(x) + 1) / 2, (1 - np.asarray(y)) / 2


def to_data(u, v):
    """Unit frame to data frame: the inverse of :func:`to_unit`."""
    return 2 * np.asarray(u) - 1, 1 - 2 * np.asarray(v)


def slot_size(n: int) -> float:
    """A poster's slot on the t-SNE map of ``n`` posters, in unit-frame units."""
    return SLOT_FILL / math.sqrt(max(n, 1))


def grid_slot(side: int) -> float:
    """A poster's slot on a grid of ``side`` x ``side`` cells, whose centres span the data frame."""
    return SLOT_FILL / max(side - 1, 1)


def poster_boxes(u, v, aspect, slot: float) -> np.ndarray:
    """(n, 4) boxes ``x0, y0, x1, y1`` in the unit frame: each poster fitted in its slot, centred."""
    u, v, aspect = np.asarray(u, float), np.asarray(v, float), np.asarray(aspect, float)
    w = np.where(aspect >= 1, slot, slot * aspect)
    h = np.where(aspect >= 1, slot / aspect, slot)
    return np.stack([u - w / 2, v - h / 2, u + w / 2, v + h / 2], axis=-1)


def pyramid_frame(slot: float) -> tuple[float, float]:
    """(origin, span) of a layout's pyramid: the unit square with room for posters centred on its edge."""
    return -slot, 1.0 + 2 * slot


def deepest_level(slot: float, min_poster: int, span: float) -> int:
    """The first level at which a slot is at least ``min_poster`` pixels, at most :data:`MAX_LEVEL`."""
    px_at_0 = TILE * slot / span
    return int(min(MAX_LEVEL, max(0, math.ceil(math.log2(max(min_poster / px_at_0, 1.0))))))


def deepest_composed_level(levels: int, slot: float, span: float, thumb_size: int) -> int:
    """The deepest level the page draws: past the pyramid's own, it composes tiles from thumbnails until a
    slot is as tall as a thumbnail (no sharper image of a poster exists)."""
    tall_at_0 = slot * TILE / span
    return max(levels - 1, math.ceil(math.log2(thumb_size / tall_at_0)))


def level_for(px_per_unit: float, span: float, max_level: int) -> int:
    """The level to draw when a unit is ``px_per_unit`` device pixels on screen: the first whose pixels are
    at least as fine as the screen's, within [0, max_level]."""
    need = math.log2(px_per_unit * span / TILE)
    return max(0, min(max_level, math.ceil(need - 1e-9)))


def tile_rect(z: int, x: int, y: int, origin: float, span: float) -> tuple[float, float, float]:
    """(x0, y0, size): tile (z, x, y)'s corner and side."""
    size = span / (1 << z)
    return origin + x * size, origin + y * size, size


def tile_range(view, z: int, origin: float, span: float) -> dict:
    """The tiles ``x0..x1`` x ``y0..y1`` (inclusive) of level z that meet the rectangle ``view``
    (``x0, y0, x1, y1``), and whether it misses the pyramid altogether (``empty``)."""
    vx0, vy0, vx1, vy1 = view
    n = 1 << z
    size = span / n

    def cell(value):
        return max(0, min(n - 1, math.floor((value - origin) / size)))

    return {"x0": cell(vx0), "x1": cell(vx1), "y0": cell(vy0), "y1": cell(vy1),
            "empty": vx1 < origin or vy1 < origin or vx0 > origin + span or vy0 > origin + span}


def tiles_of_boxes(boxes, z: int, origin: float, span: float) -> np.ndarray:
    """(n, 4) inclusive tile ranges ``tx0, ty0, tx1, ty1`` of level z that each box meets (a box whose
    edge lies on a tile's edge does not meet the tile beyond it)."""
    boxes = np.asarray(boxes, float)
    n = 1 << z
    size = span / n
    first = np.floor((boxes[..., :2] - origin) / size)
    last = np.ceil((boxes[..., 2:] - origin) / size) - 1
    last = np.maximum(last, first)  # a box of no width still lies in one tile
    return np.clip(np.concatenate([first, last], axis=-1), 0, n - 1).astype(np.int64)


def posters_in_tile(boxes, z: int, x: int, y: int, origin: float, span: float) -> np.ndarray:
    """The indices, ascending, of the posters whose boxes meet tile (z, x, y)."""
    t = tiles_of_boxes(boxes, z, origin, span)
    return np.flatnonzero((t[:, 0] <= x) & (x <= t[:, 2]) & (t[:, 1] <= y) & (y <= t[:, 3]))


def pick(boxes, px: float, py: float) -> int:
    """The poster drawn on top at (px, py): the highest index whose box holds it; -1 for none."""
    boxes = np.asarray(boxes, float)
    hit = np.flatnonzero((boxes[:, 0] <= px) & (px <= boxes[:, 2]) & (boxes[:, 1] <= py) & (py <= boxes[:, 3]))
    return int(hit[-1]) if hit.size else -1


def tile_url(template: str, z: int, x: int, y: int) -> str:
    """A tile's path from its pyramid's template, such as ``.../tiles/tsne/{z}/{x}-{y}.jpg``."""
    return template.replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y))


def encode_presence(flags: np.ndarray) -> str:
    """A level's (2**z, 2**z) boolean array of written tiles (rows are y) as its ``present`` bitset."""
    bits = np.packbits(np.asarray(flags, np.uint8).ravel(), bitorder="little")
    return base64.b64encode(bits.tobytes()).decode()


def is_present(present: list[str], z: int, x: int, y: int) -> bool:
    """Whether tile (z, x, y) exists; past the deepest level, whether its ancestor there does (the page
    composes those tiles where the pyramid has imagery)."""
    deepest = len(present) - 1
    if z > deepest:
        x, y, z = x >> (z - deepest), y >> (z - deepest), deepest
    side = 1 << z
    if not (0 <= x < side and 0 <= y < side):
        return False
    bit = y * side + x
    data = base64.b64decode(present[z])
    return bool(data[bit >> 3] >> (bit & 7) & 1)
