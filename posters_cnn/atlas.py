"""Sprite atlases: every thumbnail packed into a few JPEG sheets for the page.

Each poster gets a ``cell`` x ``cell`` slot (its thumbnail fitted inside,
aspect kept, centred) in a sheet of ``sheet`` x ``sheet`` pixels, so the page
loads thousands of thumbnails in a handful of requests and draws each with
one ``drawImage`` from a sub-rectangle.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from .concurrency import bounded_map
from .fsutil import write_bytes_atomic
from .images import jpeg_bytes, to_rgb

log = logging.getLogger(__name__)


@dataclass
class Sprite:
    atlas: int
    x: int
    y: int
    w: int
    h: int


def _fitted(path: str, cell: int) -> Image.Image | None:
    try:
        with Image.open(path) as image:
            # JPEG: decode straight at 1/2, 1/4 or 1/8 scale, as small as still covers the slot.
            scale = cell / max(image.size)
            image.draft("RGB", (max(1, int(image.width * scale)), max(1, int(image.height * scale))))
            image.load()
            rgb = to_rgb(image)
        rgb.thumbnail((cell, cell), Image.Resampling.BILINEAR, reducing_gap=2.0)
        return rgb
    except (OSError, ValueError, SyntaxError):
        return None


def build_atlases(thumb_paths: list[str], out_dir: str | os.PathLike, *, cell: int = 64,
                  sheet: int = 2048, jobs: int = 2, quality: int = 82) -> tuple[list[Sprite], list[str]]:
    """Pack ``thumb_paths`` (in order) into sheets ``out_dir/NNN.jpg``.

    ``out_dir`` belongs to one map: sheets an earlier, bigger run of that map
    left there are removed, and nothing else is touched. Returns one Sprite per
    input and the sheet file names. An unreadable thumbnail gets a grey slot
    and a warning, never an error.
    """
    out_dir = Path(out_dir)
    per_row = sheet // cell
    per_sheet = per_row * per_row
    n = len(thumb_paths)
    sheets_needed = max(1, -(-n // per_sheet))
    names = [f"{i:03d}.jpg" for i in range(sheets_needed)]
    sprites: list[Sprite] = []
    canvas = None
    missing = 0

    writes: list[cf.Future] = []

    def flush(index: int, used: int) -> None:
        rows = -(-used // per_row)
        image = canvas.crop((0, 0, sheet if rows > 1 else min(sheet, used * cell), rows * cell))
        # Encoding releases the GIL: let it run beside the decoding of the next sheet.
        writes.append(pool.submit(lambda: write_bytes_atomic(out_dir / names[index], jpeg_bytes(image, quality))))

    with cf.ThreadPoolExecutor(jobs) as pool:
        fitted_iter = bounded_map(pool, lambda p: _fitted(p, cell), thumb_paths, window=jobs * 16)
        for i, fitted in enumerate(fitted_iter):
            index, slot = divmod(i, per_sheet)
            if slot == 0:
                if canvas is not None:
                    flush(index - 1, per_sheet)
                canvas = Image.new("RGB", (sheet, sheet), (34, 34, 34))
            if fitted is None:
                missing += 1
                fitted = Image.new("RGB", (cell * 2 // 3, cell), (90, 90, 90))
            col, row = slot % per_row, slot // per_row
            x = col * cell + (cell - fitted.width) // 2
            y = row * cell + (cell - fitted.height) // 2
            canvas.paste(fitted, (x, y))
            sprites.append(Sprite(index, x, y, fitted.width, fitted.height))
        if canvas is not None:
            flush(len(names) - 1, n - (len(names) - 1) * per_sheet)
        for write in writes:
            write.result()
    if missing:
        log.warning("%d thumbnails could not be read; they show as grey tiles", missing)
    # Remove sheets a bigger earlier run of this map left behind.
    for old in out_dir.glob("*.jpg"):
        if old.name not in names:
            old.unlink()
    return sprites, names
