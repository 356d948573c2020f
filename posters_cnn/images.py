"""The one place that decodes images: validation, thumbnails, RGB conversion."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

from PIL import Image, ImageFile, ImageOps

# Truncated files must fail loudly, never be half-decoded.
ImageFile.LOAD_TRUNCATED_IMAGES = False


class BadImage(ValueError):
    """The bytes are not a usable image; the message says why, in a few words.

    ``kind`` is a short machine-readable reason: ``empty``, ``not-image``,
    ``truncated``, ``too-large`` or ``unreadable``.
    """

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def to_rgb(image: Image.Image, background=(255, 255, 255)) -> Image.Image:
    """Convert any Pillow mode to RGB; transparency is composited on ``background``."""
    if image.mode == "RGB":
        return image
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, background)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # 16-bit and float greys: scale to 8 bits rather than clip.
        image = image.convert("F")
        lo, hi = image.getextrema()
        scale = 255.0 / (hi - lo) if hi > lo else 1.0
        image = image.point(lambda v: (v - lo) * scale).convert("L")
    return image.convert("RGB")


def upright(image: Image.Image) -> Image.Image:
    """The image as it is meant to be seen: its EXIF orientation applied (every phone photo has one)."""
    try:
        return ImageOps.exif_transpose(image)
    except (ValueError, TypeError, SyntaxError, OSError):  # a broken EXIF block: show the pixels as stored
        return image


def upright_size(image: Image.Image) -> tuple[int, int]:
    """(width, height) of the file's full-size pixels as they are meant to be seen (EXIF orientation)."""
    width, height = image.info.get("original_size", image.size)
    try:
        orientation = image.getexif().get(0x0112, 1)
    except (ValueError, TypeError, SyntaxError, OSError):
        orientation = 1
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def open_reduced(image: Image.Image, at_least: int) -> Image.Image:
    """Ask a JPEG to decode at 1/2, 1/4 or 1/8 scale, never below ``at_least`` px on either side.

    libjpeg then skips most of the work for a large photo (about 8x faster on a
    12-megapixel one); other formats decode at full size. Call before ``load``.
    """
    if image.format == "JPEG" and min(image.size) >= 2 * at_least:
        image.draft("RGB", (at_least, at_least))
    return image


def decode(data: bytes, *, reduce_to: int | None = None) -> Image.Image:
    """Fully decode ``data`` and return the image, or raise BadImage.

    Catches the bad files a scraper meets: empty bodies, HTML error pages served
    as ``.jpg``, truncated JPEGs, and images over Pillow's decompression-bomb
    limit (``Image.MAX_IMAGE_PIXELS``; refused from the header, before any
    pixel is decoded). Any other failure of a decoder (Pillow's plugins raise
    ``NotImplementedError``, ``struct.error``, ``IndexError``... on doctored
    files) is a BadImage too: no file can stop a stage.

    With ``reduce_to``, a large JPEG is decoded at reduced scale, but never
    below ``reduce_to`` px on either side (see :func:`open_reduced`): enough for
    a thumbnail of that size. ``image.info["original_size"]`` keeps the size of
    the file's own pixels either way.
    """
    if not data:
        raise BadImage("empty", "empty file")
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body")):
        raise BadImage("not-image", "not an image (an HTML page)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            limit = Image.MAX_IMAGE_PIXELS
            if limit and image.width * image.height > limit:
                raise BadImage("too-large", f"decompression bomb: {image.width}x{image.height} pixels is over "
                               f"Pillow's limit of {limit}")
            original_size = image.size
            if reduce_to:
                open_reduced(image, reduce_to)
            image.load()
            image.info["original_size"] = original_size
    except BadImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadImage("too-large", f"decompression bomb: {exc}") from None
    except Image.UnidentifiedImageError:
        raise BadImage("not-image", "not an image (unrecognised format)") from None
    except Exception as exc:  # noqa: BLE001 - every decoder failure is a bad file, whatever its type
        text = str(exc) or exc.__class__.__name__
        if "truncated" in text.lower() or isinstance(exc, EOFError):
            raise BadImage("truncated", f"truncated image ({text})") from None
        raise BadImage("unreadable", f"unreadable image ({exc.__class__.__name__}: {text})") from None
    return image


def load(path: str | os.PathLike, *, reduce_to: int | None = None) -> Image.Image:
    """:func:`decode` the file at ``path``; a file that cannot be read is a BadImage (``unreadable``) too."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BadImage("unreadable", f"cannot read {path}: {exc.strerror or exc}") from None
    return decode(data, reduce_to=reduce_to)


def header_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """(width, height) as seen (EXIF orientation applied), from the file's header alone, without
    decoding its pixels; None for any bad file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return upright_size(image)
    except Exception:  # noqa: BLE001 - as in decode: whatever a doctored header makes Pillow raise
        return None


def thumbnail(image: Image.Image, size: int) -> Image.Image:
    """An upright RGB copy whose longest side is at most ``size`` pixels, aspect kept."""
    rgb = to_rgb(upright(image))
    thumb = rgb.copy() if rgb is image else rgb
    thumb.thumbnail((size, size), Image.Resampling.LANCZOS)
    return thumb


def jpeg_bytes(image: Image.Image, quality: int = 85) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()
