"""Posters inline: a small JPEG of a saved video's poster as a ``data:`` URI.

The engine writes ``<video>.poster.jpg`` beside each saved video (``job.poster_path``).
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

__all__ = ["poster_data_uri"]

log = logging.getLogger("sora_widgets.media.posters")

#: The inline still's width (the player is 320-640 px wide; the video replaces it).
WIDTH = 320
QUALITY = 70


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
