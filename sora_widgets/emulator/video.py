"""The emulator's videos: real, playable H.264 mp4s (12 s, or 4/8/12 s in the openai
style), different for every task.

Browsers must be able to play and seek them, so they are H.264 main profile, yuv420p,
with the moov atom in front (``+faststart``; that needs a seekable file, hence the temp
file) and a keyframe every 2 s. Each video is a moving colour gradient and shapes seeded
from the task id, with the prompt, the shape and a running clock drawn by Pillow.

With a first-frame image the video starts *on* that image, scaled to cover the frame:
frame 0 is the image itself (only the small clock and progress bar drawn on it), it holds
for half a second, then cross-fades into the animation while the prompt fades in, so a
clip continued from another clip's last frame joins it visibly. The last frame is the
animation with the prompt, never black, since clients take it to continue a story; with a
last-frame image (router ``frame_images``) the clip ends on that image, the mirror of the start.

The long side is 640 px x ``video_scale`` (640x360 for 16:9, 360x640 for 9:16; the
openai sizes 1792x1024 and 1024x1792 give 640x366 and 366x640). PyAV and Pillow are
imported only when a video is rendered: without them the API still works. A 12 s clip at
640x360 takes ~0.3-0.4 s on two shared cores and weighs ~350-400 KB; renders are lazy, cached
(LRU) and done once per task even under concurrent requests.
"""

from __future__ import annotations

import colorsys
import functools
import io
import logging
import math
import os
import random
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from PIL import Image, ImageFont

__all__ = [
    "DURATION_SECONDS", "FPS", "LONG_SIDE", "SPRITES", "STILL_HOLD_FRAMES", "VideoCache",
    "frame_size", "render_mp4", "render_still", "title_layout",
]

logger = logging.getLogger("sora_widgets.emulator")

FPS = 12
DURATION_SECONDS = 12
#: Pixels of a frame's long side at ``video_scale`` 1.
LONG_SIDE = 640
#: Frames that show the first-frame image alone (then it fades out until 1 s).
STILL_HOLD_FRAMES = FPS // 2
#: Frames in a spritesheet (a grid of 5 columns).
SPRITES = 10
_RATIOS = {"16:9": (16, 9), "9:16": (9, 16)}
_FONT_PATH = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
_Font: TypeAlias = "ImageFont.FreeTypeFont | ImageFont.ImageFont"
#: x264 "ultrafast" with CABAC back on (Main profile, as browsers want) and, like the
#: "zerolatency" setup of 0.1, no B-frames: decode order = display order, no edit list.
#: At 640x360 it encodes ~2.5x faster than "veryfast" + "zerolatency" (0.13 s against
#: 0.32 s for 144 frames) for ~30 % more bytes.
_X264_OPTIONS = {"preset": "ultrafast", "crf": "28", "x264-params": "cabac=1"}
_Patch: TypeAlias = "tuple[Image.Image, tuple[int, int]]"


def frame_size(shape: str, scale: float = 1.0) -> tuple[int, int]:
    """Frame width and height for ``shape`` ("16:9", "9:16" or a "WIDTHxHEIGHT" size):
    the long side is ``LONG_SIDE * scale``; both even, as yuv420p requires."""
    if shape in _RATIOS:
        w, h = _RATIOS[shape]
    else:
        w_text, _, h_text = shape.partition("x")
        w, h = int(w_text), int(h_text)
        if w <= 0 or h <= 0:
            raise ValueError(f"bad video shape {shape!r}")
    long_side = LONG_SIDE * scale
    if w >= h:
        return _even(long_side), _even(long_side * h / w)
    return _even(long_side * w / h), _even(long_side)


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


@functools.lru_cache(maxsize=16)
def _font(size: int) -> _Font:
    from PIL import ImageFont

    if _FONT_PATH.exists():
        return ImageFont.truetype(str(_FONT_PATH), size)
    return ImageFont.load_default(size)


def _make_scene(seed: str, prompt: str, aspect_ratio: str, scale: float, caption: str,
                first_frame: bytes | None, last_frame: bytes | None = None) -> _Scene:
    width, height = frame_size(aspect_ratio, scale)
    rng = random.Random(seed)
    background = _gradient_strip(rng, width, height)
    clock_font = _clock_font(width, height)
    title = f"{aspect_ratio} · {caption}".strip(" ·")
    return _Scene(
        background=background,
        patches=_text_overlay(prompt, title, width, height),
        shapes=[_shape_colour(rng) for _ in range(2)],
        phases=[rng.uniform(0, 2 * math.pi) for _ in range(4)],
        clock_font=clock_font,
        still=_still(first_frame, width, height),
        last=_still(last_frame, width, height),
    )


def render_still(*, seed: str, prompt: str, aspect_ratio: str, variant: str,
                 scale: float = 1.0, caption: str = "", seconds: int = DURATION_SECONDS,
                 first_frame: bytes | None = None,
                 last_frame: bytes | None = None) -> tuple[bytes, str]:
    """A still of the video ``render_mp4`` makes from the same arguments, and its media type:
    ``thumbnail`` (the middle frame, WebP; JPEG where Pillow has no WebP), ``spritesheet``
    (``SPRITES`` frames spread over the clip, in a grid, JPEG) or ``last`` (the last frame,
    JPEG: where an extension starts)."""
    from PIL import Image, features

    scene = _make_scene(seed, prompt, aspect_ratio, scale, caption, first_frame, last_frame)
    frames = FPS * seconds
    out = io.BytesIO()
    if variant == "last":
        _frame(frames - 1, frames, scene).save(out, "JPEG", quality=90)
        return out.getvalue(), "image/jpeg"
    if variant == "thumbnail":
        image = _frame(frames // 2, frames, scene)
        if features.check("webp"):
            image.save(out, "WEBP", quality=80)
            return out.getvalue(), "image/webp"
        image.save(out, "JPEG", quality=85)
        return out.getvalue(), "image/jpeg"
    tile_w, tile_h = _even(scene.width / 4), _even(scene.height / 4)
    columns = 5
    sheet = Image.new("RGB", (tile_w * columns, tile_h * math.ceil(SPRITES / columns)))
    for n in range(SPRITES):
        tile = _frame(n * (frames - 1) // (SPRITES - 1), frames, scene).resize((tile_w, tile_h))
        sheet.paste(tile, ((n % columns) * tile_w, (n // columns) * tile_h))
    sheet.save(out, "JPEG", quality=80)
    return out.getvalue(), "image/jpeg"


def render_mp4(*, seed: str, prompt: str, aspect_ratio: str, scale: float = 1.0,
               caption: str = "", seconds: int = DURATION_SECONDS,
               first_frame: bytes | None = None, last_frame: bytes | None = None) -> bytes:
    """Render one video and return the mp4 bytes (ImportError without PyAV and Pillow).

    ``aspect_ratio`` is any shape ``frame_size`` takes; ``first_frame`` the bytes of an
    image (any format Pillow reads) the video starts on, ``last_frame`` one it ends on. The
    same arguments give the same bytes (everything is drawn from ``seed``; x264 is
    deterministic).
    """
    # Imported here: heavy, and only needed for videos.
    import av

    started = time.perf_counter()
    scene = _make_scene(seed, prompt, aspect_ratio, scale, caption, first_frame, last_frame)
    width, height = scene.width, scene.height

    fd, tmp = tempfile.mkstemp(prefix="sora-emulator-", suffix=".mp4")
    os.close(fd)
    try:
        with av.open(tmp, "w", format="mp4", options={"movflags": "+faststart"}) as out:
            stream = out.add_stream("libx264", rate=FPS)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.codec_context.profile = "Main"
            stream.codec_context.gop_size = 2 * FPS
            stream.options = dict(_X264_OPTIONS)
            frames = FPS * seconds
            for i in range(frames):
                image = _frame(i, frames, scene)
                frame = av.VideoFrame.from_image(image)  # type: ignore[no-untyped-call]
                frame.pts, frame.time_base = i, Fraction(1, FPS)
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
        data = Path(tmp).read_bytes()
    finally:
        Path(tmp).unlink(missing_ok=True)
    logger.debug("rendered %dx%d video: %d bytes in %.3f s", width, height, len(data),
                 time.perf_counter() - started)
    return data


def _shape_colour(rng: random.Random) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.5, 0.9), rng.uniform(0.8, 1.0))
    return int(r * 255), int(g * 255), int(b * 255)


def _gradient_strip(rng: random.Random, width: int, height: int) -> Image.Image:
    """A horizontally periodic gradient, 3 frames wide, to slide a frame-sized window over."""
    from PIL import Image
    hue = rng.random()
    colours = []
    for shift in (0.0, rng.uniform(0.2, 0.5)):
        r, g, b = colorsys.hsv_to_rgb((hue + shift) % 1.0, 0.7, rng.uniform(0.35, 0.6))
        colours.append((int(r * 255), int(g * 255), int(b * 255)))
    ramp = Image.linear_gradient("L").transpose(Image.Transpose.ROTATE_90).resize((width, height))
    mask = Image.new("L", (2 * width, height))
    mask.paste(ramp, (0, 0))
    mask.paste(ramp.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (width, 0))
    period = Image.composite(
        Image.new("RGB", mask.size, colours[0]), Image.new("RGB", mask.size, colours[1]), mask
    )
    strip = Image.new("RGB", (3 * width, height))
    strip.paste(period, (0, 0))
    strip.paste(period.crop((0, 0, width, height)), (2 * width, 0))
    return strip


def _still(data: bytes | None, width: int, height: int) -> Image.Image | None:
    """The first-frame image scaled to cover the frame (centre crop), or None."""
    if data is None:
        return None
    from PIL import Image, ImageOps
    try:
        with Image.open(io.BytesIO(data)) as image:
            return ImageOps.fit(image.convert("RGB"), (width, height),
                                Image.Resampling.LANCZOS)
    except Exception:  # stored at submit after a successful decode: should not happen
        logger.warning("first-frame image unreadable; rendering without it", exc_info=True)
        return None


def _text_overlay(prompt: str, title: str, width: int, height: int) -> list[_Patch]:
    """The static layer: a title at the top (left of the clock) and the prompt in the middle,
    clear of the player's controls, which browsers draw over the bottom of the frame.

    Returned as the few non-transparent rectangles of the layer (with their positions), so
    each frame composites only those, not a whole transparent frame.
    """
    from PIL import Image, ImageDraw
    overlay = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    unit = min(width, height)
    pad = max(3, unit // 36)
    title_font, title_lines = title_layout(title, width, height)
    title_height = int(title_font.getbbox("Ag")[3]) + 1
    for n, line in enumerate(title_lines):
        draw.text((pad, pad + n * title_height), line, font=title_font,
                  fill=(255, 255, 255, 230))
    title_bottom = min(height, pad + len(title_lines) * title_height + pad)
    font = _font(max(9, unit // 12))
    max_lines = 3 if width > height else 5
    lines = _wrap(prompt or "(image to video)", font, width - 4 * pad, max_lines=max_lines)
    line_height = int(font.getbbox("Ag")[3]) + 2
    block = line_height * len(lines)
    top = (height - block) // 2
    draw.rectangle((pad, top - pad, width - pad, top + block + pad), fill=(0, 0, 0, 150))
    for n, line in enumerate(lines):
        draw.text((2 * pad, top + n * line_height), line, font=font, fill=(255, 255, 255, 255))
    patches: list[_Patch] = []
    # Two horizontal bands; if the title reaches down into the prompt box, one band.
    bands = [(0, title_bottom), (title_bottom, height)] if title_bottom < top - pad \
        else [(0, height)]
    for band_top, band_bottom in bands:
        band = overlay.crop((0, band_top, width, band_bottom))
        box = band.getchannel("A").getbbox()
        if box is not None:
            patches.append((band.crop(box), (box[0], band_top + box[1])))
    return patches


def _clock_font(width: int, height: int) -> _Font:
    return _font(max(9, min(width, height) // 12))


def title_layout(title: str, width: int, height: int) -> tuple[_Font, list[str]]:
    """The title's font and lines, left of the clock: a portrait frame is narrow, so its
    title (ratio · caption · task id) gets a smaller font and a third line, not a cut."""
    unit = min(width, height)
    portrait = height > width
    font = _font(max(8, unit // (24 if portrait else 15)))
    room = int(width - _clock_font(width, height).getlength("00.0s") - 12 - max(3, unit // 36))
    return font, _wrap(title, font, room, max_lines=3 if portrait else 2)


def _wrap(text: str, font: _Font, max_width: int, *, max_lines: int) -> list[str]:
    """Greedy word wrap by pixel width; over-long words are cut, extra lines end in "…"."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if font.getlength(candidate) <= max_width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = word
        while font.getlength(current) > max_width and len(current) > 1:
            cut = len(current) - 1
            while cut > 1 and font.getlength(current[:cut]) > max_width:
                cut -= 1
            lines.append(current[:cut])
            current = current[cut:]
        if len(lines) > max_lines:
            break
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        last = lines[-1]
        while last and font.getlength(last + "…") > max_width:
            last = last[:-1]
        lines[-1] = last.rstrip() + "…"
    return lines


class _Scene:
    """Everything that stays the same over a video's frames."""

    def __init__(self, *, background: Image.Image, patches: list[_Patch],
                 shapes: list[tuple[int, int, int]], phases: list[float], clock_font: _Font,
                 still: Image.Image | None, last: Image.Image | None = None) -> None:
        self.background = background
        self.patches = patches
        self.shapes = shapes
        self.phases = phases
        self.clock_font = clock_font
        self.still = still
        self.last = last
        self.width, self.height = background.width // 3, background.height


def _animated(i: int, frames: int, scene: _Scene) -> Image.Image:
    from PIL import ImageDraw
    width, height, phases, shapes = scene.width, scene.height, scene.phases, scene.shapes
    t = i / frames  # 0..1 over the clip
    offset = int(t * 2 * width)
    image = scene.background.crop((offset, 0, offset + width, height))
    draw = ImageDraw.Draw(image)
    radius = min(width, height) // 7
    x = width / 2 + width / 3 * math.sin(2 * math.pi * 2 * t + phases[0])
    y = height / 2 + height / 4 * math.sin(2 * math.pi * 3 * t + phases[1])
    draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=shapes[0])
    side = radius * 0.8
    x = width / 2 + width / 2.5 * math.cos(2 * math.pi * t + phases[2])
    y = height / 2 + height / 3 * math.cos(2 * math.pi * 2 * t + phases[3])
    draw.rectangle((x - side, y - side, x + side, y + side), fill=shapes[1])
    return image


def _frame(i: int, frames: int, scene: _Scene) -> Image.Image:
    from PIL import Image, ImageDraw
    width, height, still = scene.width, scene.height, scene.still
    fade_in = 1.0
    if still is not None and i < FPS:
        # The given image alone, then a cross-fade into the animation; the text fades in.
        fade_in = i / FPS
        if i < STILL_HOLD_FRAMES:
            image = still.copy()
        else:
            mix = (i - STILL_HOLD_FRAMES + 1) / (FPS - STILL_HOLD_FRAMES + 1)
            image = Image.blend(still, _animated(i, frames, scene), mix)
    else:
        image = _animated(i, frames, scene)
    to_end = frames - 1 - i
    if scene.last is not None and to_end < FPS:
        # The mirror of the start: the clip ends *on* the given last frame (interpolation).
        fade_in = min(fade_in, to_end / FPS)
        if to_end < STILL_HOLD_FRAMES:
            image = scene.last.copy()
        else:
            mix = (to_end - STILL_HOLD_FRAMES + 1) / (FPS - STILL_HOLD_FRAMES + 1)
            image = Image.blend(scene.last, image, mix)
    for patch, position in scene.patches:
        if fade_in < 1.0:
            if fade_in <= 0.0:
                continue
            alpha = patch.getchannel("A").point(lambda a: int(a * fade_in))
            patch = patch.copy()
            patch.putalpha(alpha)
        image.paste(patch, position, patch)
    draw = ImageDraw.Draw(image)
    seconds = i / FPS
    draw.text((width - 4, 4), f"{seconds:04.1f}s", font=scene.clock_font, fill=(255, 255, 255),
              anchor="ra")
    draw.rectangle((0, height - 3, int(width * (i + 1) / frames), height), fill=(255, 255, 255))
    return image


class VideoCache:
    """Rendered videos by key, LRU-bounded; each key is rendered once even when asked for
    by many requests at the same time (a per-key lock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[Hashable, bytes] = OrderedDict()
        self._rendering: dict[Hashable, threading.Lock] = {}
        self.renders = 0
        self.render_seconds = 0.0

    def get(self, key: Hashable, render: Callable[[], bytes], *, max_entries: int) -> bytes:
        """The cached bytes for ``key``, rendering them with ``render()`` if needed."""
        with self._lock:
            data = self._lookup(key)
            if data is not None:
                return data
            key_lock = self._rendering.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                data = self._lookup(key)
            if data is not None:
                return data
            started = time.perf_counter()
            try:
                data = render()
            finally:
                with self._lock:
                    self._rendering.pop(key, None)
            with self._lock:
                self.renders += 1
                self.render_seconds += time.perf_counter() - started
                self._items[key] = data
                while len(self._items) > max_entries:
                    self._items.popitem(last=False)
        return data

    def _lookup(self, key: Hashable) -> bytes | None:
        data = self._items.get(key)
        if data is not None:
            self._items.move_to_end(key)
        return data
