"""Posters inline: a small JPEG of a saved video's poster as a ``data:`` URI; and the check
that a still a relay rendered (its thumbnail, its spritesheet) is an image worth keeping.

The engine writes ``<video>.poster.jpg`` beside each saved video (``job.poster_path``): the
relay's own thumbnail where its style renders one (``check_still`` passed it), else a frame
decoded from the video.
In ``text/html`` output JupyterLab resolves a relative ``src`` but not a relative
``poster`` attribute, and a notebook opened where its ``sora_videos/`` copy is missing (or
video cannot play) should still show the still: so the magic's players and the panel's
cards carry the poster inline, shrunk to a thumbnail (a few KB as base64). Reading only:
nothing is written.
"""

from __future__ import annotations

import base64
import functools
import io
import logging
from pathlib import Path

__all__ = ["MAX_STILL_PIXELS", "STILL_FORMATS", "check_still", "poster_data_uri",
           "sprite_grid"]

log = logging.getLogger("sora_widgets.media.posters")

#: The inline still's width (the player is 320-640 px wide; the video replaces it).
WIDTH = 320
QUALITY = 70
#: What a relay's still may be: the formats browsers show and the relays send.
STILL_FORMATS = ("JPEG", "PNG", "WEBP")
#: A still with more pixels than this is refused before it is decoded (a decompression
#: bomb is a few KB of file); a spritesheet of 10 frames at 1080p is ~21 M.
MAX_STILL_PIXELS = 40_000_000


def check_still(path: Path) -> str:
    """The format of the relay's still at ``path``, once it decoded whole; a SoraError says
    why it is not an image to keep (not an image, another format, too many pixels, cut)."""
    from PIL import Image

    from sora_widgets.core.errors import SoraError

    try:
        with Image.open(path) as image:
            kind = str(image.format)
            if kind not in STILL_FORMATS:
                raise SoraError(f"the still is {kind[:20]}, not one of "
                                f"{', '.join(STILL_FORMATS)}")
            width, height = image.size
            if width * height > MAX_STILL_PIXELS:
                raise SoraError(f"the still is {width}x{height}, more than "
                                f"{MAX_STILL_PIXELS:,} pixels")
            image.load()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise SoraError(f"the still is not a readable image ({type(exc).__name__})") from None
    return kind


#: The largest grid a spritesheet is read as (columns and rows).
MAX_SPRITE_SIDE = 20


def sprite_grid(path: Path | None, aspect_ratio: str) -> tuple[int, int] | None:
    """(columns, rows) of a spritesheet of a video of ``aspect_ratio`` ("16:9"): the
    smallest grid whose tiles have the video's shape (the relay does not say its grid; the
    emulator's 10 frames in 5 columns read as 5 x 2). None when there is no sheet or no
    grid fits within 3 %. Read once per file version (a live History asks every second)."""
    if path is None:
        return None
    try:
        stat = path.stat()
    except OSError:
        return None
    return _grid(str(path), stat.st_mtime_ns, stat.st_size, aspect_ratio)


@functools.lru_cache(maxsize=512)
def _grid(path: str, _mtime_ns: int, _size: int, aspect_ratio: str) -> tuple[int, int] | None:
    from PIL import Image

    try:
        with Image.open(path) as image:     # the header only: no decoding
            width, height = image.size
    except (OSError, ValueError):
        return None
    wide, tall = (int(n) for n in aspect_ratio.split(":"))
    shape = wide / tall
    fits = [(cols * rows, cols, rows)
            for cols in range(1, MAX_SPRITE_SIDE + 1) for rows in range(1, MAX_SPRITE_SIDE + 1)
            if cols * rows > 1 and abs((width / cols) / (height / rows) / shape - 1) <= 0.03]
    if not fits:
        return None
    _, cols, rows = min(fits)
    return cols, rows


def poster_data_uri(path: Path | None, *, width: int = WIDTH) -> str | None:
    """``data:image/jpeg;base64,...`` of the poster at ``path`` (at most ``width`` wide),
    or None when there is none (not saved yet, no poster, unreadable)."""
    if path is None:
        return None
    try:
        stat = path.stat()
    except OSError:
        return None
    return _encode(str(path), stat.st_mtime_ns, stat.st_size, width)


@functools.lru_cache(maxsize=256)
def _encode(path: str, _mtime_ns: int, _size: int, width: int) -> str | None:
    from PIL import Image

    try:
        with Image.open(path) as image:
            still = image.convert("RGB")
        still.thumbnail((width, width))
        out = io.BytesIO()
        still.save(out, "JPEG", quality=QUALITY, optimize=True)
    except (OSError, ValueError) as exc:
        log.warning("cannot read the poster %s: %s", Path(path).name, exc)
        return None
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")
