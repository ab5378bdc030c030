"""Image checks for the continuation and storyboard tests: decode a ``data:image/...`` URI,
the first frame of an mp4, and the mean pixel difference of two images (0 = identical,
255 = opposite)."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import av
from PIL import Image, ImageChops, ImageOps, ImageStat

__all__ = ["decode_data_uri", "difference", "first_frame"]


def decode_data_uri(uri: str) -> tuple[str, Image.Image]:
    """(mime type, image) of a ``data:image/...;base64,...`` URI."""
    head, _, payload = uri.partition(",")
    assert head.startswith("data:") and head.endswith(";base64"), head[:40]
    image = Image.open(io.BytesIO(base64.b64decode(payload, validate=True)))
    image.load()
    return head[5:-7], image


def first_frame(video: Path) -> Image.Image:
    with av.open(str(video)) as container:
        frame = next(iter(container.decode(video=0)))
        image: Image.Image = frame.to_image()
        return image


def difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute pixel difference, ``b`` scaled to cover ``a``'s size."""
    fitted = ImageOps.fit(b.convert("RGB"), a.size, Image.Resampling.LANCZOS)
    return float(sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), fitted)).mean) / 3)
