"""The map's imagery as a pyramid of 256-px tiles, so that the page's work follows the screen.

Where posters and tiles lie is :mod:`posters_cnn.contracts.geometry`, which
the page shares: level ``z`` cuts the pyramid's square into ``2**z`` x ``2**z``
tiles of 256 x 256 pixels, each level doubling the resolution of the one
above. Every poster is drawn, in index order (a later poster on top, as the
page picks), in its box, exactly as the page draws it.
The deepest level is the first at which a poster is at least ``min_poster``
(128) pixels tall: beyond it the page composes its own tiles from the 256-px
thumbnails of the few posters on screen. Tiles where no poster lies are not
written, and the levels' ``present`` bitsets tell the page which exist.

The deepest level is rendered in blocks of up to 8 x 8 tiles (2048 px square),
each from the thumbnails of the posters that meet it, decoded at reduced
scale (JPEG draft); each block is then halved three times for the levels
above it. The blocks are taken in Z order, so that a tile of the levels above
is halved from its four children's pixels as soon as they are drawn. Blocks
run in a thread pool: decoding, resizing and encoding release the GIL. Memory
stays at a few blocks plus at most three tiles a level waiting for a sibling,
whatever the number of posters.

An update of a map (``reuse``: the earlier pyramid; the posters from
``new_from`` on are new, ``removed`` the boxes of those that left) draws only
the tiles those boxes meet; every other tile is a hard link to the earlier
pyramid's file, byte for byte. New posters come last, so they lie on top: a
deepest tile that only new posters meet is the earlier tile with them pasted
over it; one that a removed poster met is drawn again from the thumbnails of
every poster in it, as a full run draws it. A tile above is halved from its
four children's files, level by level. Either way the earlier pixels go
through JPEG once more (at the same quality and on the same 8-px grid, so
mostly to the same coefficients): within a level or two of grey of a full
run's tile, for a fraction of the cost (at 100,000 posters a touched deepest
tile holds about 30).
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import math
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..concurrency import bounded_map
from ..contracts.geometry import TILE, deepest_level, encode_presence, pyramid_frame, tiles_of_boxes
from ..fsutil import link_or_copy, write_bytes_atomic
from ..images import BadImage, jpeg_bytes, load, to_rgb

log = logging.getLogger(__name__)

BLOCK_TILES = 8  # a block is at most 8 x 8 tiles of the deepest level: 2048 px
BACKGROUND = (17, 17, 17)  # the page's background, so that tiles and empty space meet seamlessly
# px: posters are at least this tall at the deepest level. Measured at 100,000 posters: with 64 (posters
# 95 px deep down), a dense view at 64x needed 550 thumbnails, 2.5 s of loading; with 128 (190 px) the
# server's tiles serve it, and the first view composed from thumbnails needs a third as many.
MIN_POSTER = 128
QUALITY = 80


@dataclass
class Pyramid:
    """What the page needs to find and place the tiles of one layout."""

    levels: int  # 0 .. levels - 1
    origin: float  # the pyramid square is [origin, origin + span] in both map axes (unit square units)
    span: float
    present: list[str]  # per level, base64 of a bitset of 4**z bits (row-major, y then x), 1 = written
    files: int
    reused: int = 0  # of the files, how many are links to an earlier pyramid's (an update's untouched tiles)

    def as_json(self, path_template: str) -> dict:
        return {"path": path_template, "size": TILE, "levels": self.levels, "origin": round(self.origin, 6),
                "span": round(self.span, 6), "present": self.present}


def _fitted(path: str, width: int, height: int) -> Image.Image | None:
    """The thumbnail at ``path`` resized to width x height (decoded at reduced scale when it can be)."""
    try:
        rgb = to_rgb(load(path, reduce_to=max(width, height)))
    except BadImage as exc:
        log.warning("tile: thumbnail left out: %s: %s", path, exc)
        return None
    return rgb.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=2.0)


def _levels_up(deepest: np.ndarray) -> list[np.ndarray]:
    """A deepest level's tile flags, and every level's above it (a tile is set when a child is): [z] is 2**z square."""
    levels = [deepest]
    while levels[-1].shape[0] > 1:
        half = levels[-1].shape[0] // 2
        levels.append(levels[-1].reshape(half, 2, half, 2).any(axis=(1, 3)))
    return levels[::-1]


def build_pyramid(thumb_paths: list[str], boxes: np.ndarray, out_dir: str | os.PathLike, *,
                  slot: float, jobs: int = 2, min_poster: int = MIN_POSTER, reuse: str | os.PathLike | None = None,
                  new_from: int | None = None, removed: np.ndarray | None = None, progress=None) -> Pyramid:
    """Render the tiles of one layout into ``out_dir/{z}/{x}-{y}.jpg``; see the module docstring.

    ``boxes`` are the posters' boxes (``geometry.poster_boxes``) in the unit frame. Files of an earlier run that are not written
    again are removed from ``out_dir``, which belongs to this map and layout. With ``reuse`` (the earlier
    pyramid's folder, made with the same ``slot``), only the tiles that the boxes of new posters (from index
    ``new_from`` on) and of ``removed`` ones meet are drawn. In a full run, ``progress(done, total)`` is called
    after each block with the posters drawn so far (a poster that meets two blocks counts twice).
    """
    out_dir = Path(out_dir)
    origin, span = pyramid_frame(slot)
    levels = deepest_level(slot, min_poster, span) + 1
    deepest = levels - 1
    side = 2 ** deepest  # tiles per side at the deepest level
    scale = TILE * side / span  # px per map unit at the deepest level
    px = (boxes - origin) * scale  # boxes in deepest-level pixels
    block_tiles = min(BLOCK_TILES, side)
    block_px = block_tiles * TILE

    # Which deepest tiles hold a poster.
    ranges = tiles_of_boxes(boxes, deepest, origin, span)  # each poster's deepest tiles
    present = np.zeros((side, side), bool)
    for tx0, ty0, tx1, ty1 in ranges:
        present[ty0:ty1 + 1, tx0:tx1 + 1] = True
    presence = _levels_up(present)  # presence[z] is (2**z, 2**z)
    if reuse is not None:
        new_from = len(boxes) if new_from is None else new_from
        gone = np.zeros((side, side), bool)  # deepest tiles a removed poster met: drawn again whole
        for tx0, ty0, tx1, ty1 in tiles_of_boxes(np.zeros((0, 4)) if removed is None else removed, deepest, origin,
                                                 span):
            gone[ty0:ty1 + 1, tx0:tx1 + 1] = True
        meets = gone.copy()
        for tx0, ty0, tx1, ty1 in tiles_of_boxes(boxes[new_from:], deepest, origin, span):
            meets[ty0:ty1 + 1, tx0:tx1 + 1] = True
        drawn, linked = _redraw(thumb_paths, ranges, px, presence, _levels_up(meets), gone, new_from, out_dir,
                                Path(reuse), jobs=jobs)
        log.info("tiles: %d drawn again, %d kept from the earlier pyramid", drawn, linked)
        return Pyramid(levels=levels, origin=origin, span=span, present=[encode_presence(p) for p in presence],
                       files=drawn + linked, reused=linked)

    # Which posters each block draws.
    members: dict[tuple[int, int], list[int]] = {}
    for i, (tx0, ty0, tx1, ty1) in enumerate(ranges):
        for by in range(ty0 // block_tiles, ty1 // block_tiles + 1):
            for bx in range(tx0 // block_tiles, tx1 // block_tiles + 1):
                members.setdefault((bx, by), []).append(i)

    written = 0
    written_lock = threading.Lock()
    top_level = deepest - int(math.log2(block_tiles))  # each block ends as one tile of this level

    def save(z: int, x: int, y: int, image: Image.Image) -> None:
        nonlocal written
        if not presence[z][y, x]:
            return
        write_bytes_atomic(out_dir / str(z) / f"{x}-{y}.jpg", jpeg_bytes(image, QUALITY))
        with written_lock:
            written += 1

    def render_block(key: tuple[int, int]) -> Image.Image:
        """Draw one block and its tiles down to ``top_level``; its last tile, for the levels above."""
        bx, by = key
        canvas = Image.new("RGB", (block_px, block_px), BACKGROUND)
        left, top = bx * block_px, by * block_px
        for i in members[key]:
            x0, y0, x1, y1 = px[i]
            w, h = max(1, round(x1 - x0)), max(1, round(y1 - y0))
            image = _fitted(thumb_paths[i], w, h)
            if image is None:
                image = Image.new("RGB", (w, h), (90, 90, 90))
            canvas.paste(image, (round(x0) - left, round(y0) - top))
        level_canvas, z, per_side = canvas, deepest, block_tiles
        while True:
            for ty in range(per_side):
                for tx in range(per_side):
                    tile = level_canvas.crop((tx * TILE, ty * TILE, (tx + 1) * TILE, (ty + 1) * TILE))
                    save(z, bx * per_side + tx, by * per_side + ty, tile)
            if per_side == 1:
                return level_canvas
            level_canvas, z, per_side = level_canvas.reduce(2), z - 1, per_side // 2

    # The levels above the blocks' own: each tile halved from its four children as soon as they are drawn.
    # Blocks are taken in Z order, so the children of one parent finish one after another and at most three
    # tiles a level wait for a sibling (a whole-map mosaic of the blocks' tiles was 3 GiB at 1,000,000 posters).
    waiting: dict[tuple[int, int, int], Image.Image] = {}

    def climb(z: int, x: int, y: int, image: Image.Image) -> None:
        while z > 0:
            waiting[z, x, y] = image
            px_, py_ = x // 2, y // 2
            children = [(2 * px_ + dx, 2 * py_ + dy) for dy in (0, 1) for dx in (0, 1)]
            if any(presence[z][cy, cx] and (z, cx, cy) not in waiting for cx, cy in children):
                return
            canvas = Image.new("RGB", (2 * TILE, 2 * TILE), BACKGROUND)
            for cx, cy in children:
                child = waiting.pop((z, cx, cy), None)
                if child is not None:
                    canvas.paste(child, ((cx - 2 * px_) * TILE, (cy - 2 * py_) * TILE))
            z, x, y, image = z - 1, px_, py_, canvas.reduce(2)
            save(z, x, y, image)

    keys = sorted(members, key=_z_order)
    total, drawn = sum(len(held) for held in members.values()), 0
    with cf.ThreadPoolExecutor(max(1, jobs)) as pool:
        for (bx, by), last in zip(keys, bounded_map(pool, render_block, keys, 2 * max(1, jobs))):
            climb(top_level, bx, by, last)
            drawn += len(members[bx, by])
            if progress is not None:
                progress(drawn, total)
    assert not waiting, "every tile above the blocks was drawn"
    # Remove tiles of an earlier, different run of this map: every tile written is a present one.
    if out_dir.is_dir():
        for old in out_dir.rglob("*.jpg"):
            if not _is_present(old, presence, out_dir):
                old.unlink()
    log.info("tiles: %d levels, %d files, posters %.0f px tall at the deepest", levels, written,
             slot * scale)
    return Pyramid(levels=levels, origin=origin, span=span, present=[encode_presence(p) for p in presence],
                   files=written)


def _z_order(key: tuple[int, int]) -> int:
    """``(x, y)``'s place on the Z curve: the bits of x and y interleaved, so that the four children of
    every quadtree node come one after another."""
    x, y = key
    code = 0
    for bit in range(max(x.bit_length(), y.bit_length())):
        code |= ((x >> bit) & 1) << (2 * bit) | ((y >> bit) & 1) << (2 * bit + 1)
    return code


def _is_present(path: Path, presence: list[np.ndarray], out_dir: Path) -> bool:
    """Whether ``path`` is ``out_dir/{z}/{x}-{y}.jpg`` of a tile the levels' ``presence`` holds."""
    found = re.fullmatch(r"(\d+)-(\d+)\.jpg", path.name)
    if path.parent.parent != out_dir or not path.parent.name.isdigit() or not found:
        return False
    z, (x, y) = int(path.parent.name), map(int, found.groups())
    return z < len(presence) and x < len(presence[z]) and y < len(presence[z]) and bool(presence[z][y, x])


def _redraw(thumb_paths: list[str], ranges: np.ndarray, px: np.ndarray, presence: list[np.ndarray],
            touched: list[np.ndarray], gone: np.ndarray, new_from: int, out_dir: Path, reuse: Path, *,
            jobs: int) -> tuple[int, int]:
    """An update's pyramid (see the module docstring): (tiles drawn, tiles linked from ``reuse``).

    ``ranges``: each poster's deepest tiles, ``px``: its box in deepest-level pixels."""
    deepest = len(presence) - 1
    drawn = linked = 0
    # The posters each touched deepest tile draws, in index order: all of them where a poster left (or the
    # earlier tile is missing), else only the new ones, over the earlier tile.
    members: dict[tuple[int, int], list[int]] = {}

    def collect(tiles: np.ndarray, first: int) -> None:
        for i in range(first, len(ranges)):
            tx0, ty0, tx1, ty1 = ranges[i]
            if tiles[ty0:ty1 + 1, tx0:tx1 + 1].any():
                for ty in range(ty0, ty1 + 1):
                    for tx in range(tx0, tx1 + 1):
                        if tiles[ty, tx]:
                            members.setdefault((tx, ty), []).append(i)

    over = touched[deepest] & ~gone
    for ty, tx in zip(*np.nonzero(over)):
        if not (reuse / str(deepest) / f"{tx}-{ty}.jpg").is_file():
            gone[ty, tx], over[ty, tx] = True, False
    collect(gone, 0)
    collect(over, new_from)

    # Each tile drawn at the level below, halved, before JPEG: its parent is halved from these pixels, so that
    # the earlier pixels go through JPEG once more, not once per level.
    halves: dict[tuple[int, int], Image.Image] = {}

    def done(z: int, key: tuple[int, int], canvas: Image.Image) -> tuple[tuple[int, int], Image.Image]:
        write_bytes_atomic(out_dir / str(z) / f"{key[0]}-{key[1]}.jpg", jpeg_bytes(canvas, QUALITY))
        return key, canvas.reduce(2)

    def draw_deepest(key: tuple[int, int]) -> tuple[tuple[int, int], Image.Image]:
        tx, ty = key
        canvas = None
        if over[ty, tx]:
            with Image.open(reuse / str(deepest) / f"{tx}-{ty}.jpg") as earlier:
                canvas = to_rgb(earlier).copy()
        if canvas is None:
            canvas = Image.new("RGB", (TILE, TILE), BACKGROUND)
        left, top = tx * TILE, ty * TILE
        for i in members.get(key, ()):  # placed and sized exactly as a block of a full run places them
            x0, y0, x1, y1 = px[i]
            w, h = max(1, round(x1 - x0)), max(1, round(y1 - y0))
            image = _fitted(thumb_paths[i], w, h) or Image.new("RGB", (w, h), (90, 90, 90))
            canvas.paste(image, (round(x0) - left, round(y0) - top))
        return done(deepest, key, canvas)

    def halve(z: int, key: tuple[int, int]) -> tuple[tuple[int, int], Image.Image]:
        tx, ty = key
        canvas = Image.new("RGB", (TILE, TILE), BACKGROUND)
        half = TILE // 2
        for dy in (0, 1):
            for dx in (0, 1):
                child = (2 * tx + dx, 2 * ty + dy)
                if child in halves:
                    canvas.paste(halves[child], (dx * half, dy * half))
                elif presence[z + 1][child[1], child[0]]:
                    with Image.open(out_dir / str(z + 1) / f"{child[0]}-{child[1]}.jpg") as image:
                        canvas.paste(to_rgb(image).reduce(2), (dx * half, dy * half))
        return done(z, key, canvas)

    with cf.ThreadPoolExecutor(max(1, jobs)) as pool:
        for z in range(deepest, -1, -1):
            todo = []
            for ty, tx in zip(*np.nonzero(presence[z])):
                if not touched[z][ty, tx]:
                    try:
                        link_or_copy(reuse / str(z) / f"{tx}-{ty}.jpg", out_dir / str(z) / f"{tx}-{ty}.jpg")
                        linked += 1
                        continue
                    except FileNotFoundError:  # the earlier pyramid lacks it: draw it
                        pass
                todo.append((int(tx), int(ty)))
            if z == deepest:
                missing = np.zeros_like(gone)
                for tx, ty in todo:
                    missing[ty, tx] = not touched[z][ty, tx]  # untouched, but the earlier pyramid lacks it
                if missing.any():
                    collect(missing, 0)
                made = dict(pool.map(draw_deepest, todo))
            else:
                made = dict(pool.map(lambda key, z=z: halve(z, key), todo))
            halves = made
            drawn += len(todo)
    return drawn, linked
