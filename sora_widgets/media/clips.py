"""What every reader of a clip shares: opening it, FFmpeg's errors as ``SoraError``, its
timing, stills as images, atomic files, and the bounds on the work one clip may cause.

Why the bounds: the mp4s come from a relay, so PyAV/FFmpeg parse untrusted data. A file
can claim a picture of 100000x100000, last for hours, or hold garbage that keeps the
decoder busy. :class:`MediaLimits` caps what one clip may cost: its picture size (checked
from the headers, before any frame is decoded), the frames decoded or copied from it, the
wall-clock seconds spent on it and the size of a stitched film. Past a bound the answer is
a ``SoraError`` that names the file and the bound, never a hang or a huge allocation.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias, cast

from sora_widgets.core.errors import SoraError

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.video.frame import VideoFrame
    from av.video.stream import VideoStream
    from PIL import Image

__all__ = [
    "LIMITS",
    "MediaLimits",
    "StrPath",
    "Work",
    "atomic",
    "av_error",
    "cannot_read",
    "check_picture",
    "common_time_base",
    "duration_of",
    "even",
    "fit_frame",
    "fps_of",
    "image_of",
    "is_file_error",
    "open_clip",
    "reading",
    "sar_of",
    "start_seconds",
    "ticks",
    "to_image",
    "video_stream",
]

StrPath: TypeAlias = "str | os.PathLike[str]"


@dataclass(frozen=True)
class MediaLimits:
    """Bounds on the work one untrusted clip may cause (see the module docstring).

    Sora's clips are at most 1792x1024 and 25 s: the defaults leave a wide margin."""

    max_side: int = 8192
    """Widest or tallest picture decoded."""
    max_pixels: int = 4096 * 4096
    """Largest picture decoded (a 16 Mpx frame is ~50 MB as RGB)."""
    max_seconds: float = 300.0
    """Longest clip ``stitch`` takes (it copies or re-encodes the whole clip)."""
    max_frames: int = 18_000
    """Frames decoded or copied from one clip (300 s at 60 fps): a file that lies about
    its length is stopped here."""
    decode_seconds: float = 60.0
    """Wall-clock seconds for one poster, one last frame, or one clip of a stitch."""
    max_output_bytes: int = 2 * 1024 ** 3
    """Largest film ``stitch`` writes."""
    max_audio_samples: int = 300 * 48_000 * 2
    """Decoded sound ``stitch`` holds for one clip when it re-encodes the audio (samples
    of all channels: 300 s of 48 kHz stereo, ~115 MB as floats)."""


#: The bounds used when a caller gives none.
LIMITS = MediaLimits()


class Work:
    """The decoding done for one clip, counted: a frame budget and a deadline.
    ``clock`` is injectable for unit tests."""

    def __init__(self, path: Path, limits: MediaLimits,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.limits = limits
        self.clock = clock
        self.frames = 0
        self.samples = 0
        self.deadline = clock() + limits.decode_seconds

    def step(self, frames: int = 1) -> None:
        """Count ``frames`` more; raise once a bound is passed."""
        self.frames += frames
        if self.frames > self.limits.max_frames:
            raise SoraError(f"cannot read {self.path.name}: more than "
                            f"{self.limits.max_frames} frames; it was stopped")
        if self.clock() > self.deadline:
            raise SoraError(f"cannot read {self.path.name}: decoding took longer than "
                            f"{self.limits.decode_seconds:g} s; it was stopped")


    def sound(self, samples: int) -> None:
        """Count decoded audio samples (all channels) held for this clip."""
        self.samples += samples
        if self.samples > self.limits.max_audio_samples:
            raise SoraError(f"cannot read {self.path.name}: more than "
                            f"{self.limits.max_audio_samples} audio samples; it was stopped")


def check_picture(width: int, height: int, path: Path, limits: MediaLimits) -> None:
    """Refuse a picture size that is unknown or absurd, before a frame is decoded."""
    if width <= 0 or height <= 0:
        raise SoraError(f"cannot read {path.name}: its picture size is unknown")
    if max(width, height) > limits.max_side or width * height > limits.max_pixels:
        raise SoraError(f"cannot read {path.name}: it claims a {width}x{height} picture, "
                        f"more than {limits.max_side} px a side or "
                        f"{limits.max_pixels / 1e6:.1f} Mpx; it was not decoded")


def av_error() -> type[Exception]:
    import av

    return cast("type[Exception]", av.FFmpegError)


def is_file_error(exc: BaseException) -> bool:
    return isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError))


def open_clip(path: Path, limits: MediaLimits | None = None) -> InputContainer:
    """Open a clip for reading. FFmpeg decodes a frame or two while it opens a file (to
    learn its streams): ``max_pixels`` makes those decoders refuse a picture past the
    limit instead of allocating it (a 12000x12000 claim cost 380 MB before)."""
    import av

    if not path.is_file():
        raise FileNotFoundError(errno.ENOENT, "no such video", str(path))
    guard = _decoder_options(limits or LIMITS)
    try:
        # One dict per stream (PyAV's stub says ``list[str]``; its code reads dicts).
        per_stream = cast("list[str]", [guard] * _GUARDED_STREAMS)
        return av.open(str(path), "r", stream_options=per_stream)
    except av.FFmpegError as exc:
        if is_file_error(exc):
            raise
        raise cannot_read(path, exc) from exc


#: Streams whose probing decoders get the picture limit (a clip has two or three).
_GUARDED_STREAMS = 64


def _decoder_options(limits: MediaLimits) -> dict[str, str]:
    return {"max_pixels": str(limits.max_pixels)}


def cannot_read(path: Path, exc: BaseException) -> SoraError:
    return SoraError(f"cannot read {path.name}: {getattr(exc, 'strerror', None) or exc}")


@contextlib.contextmanager
def reading(path: Path) -> Iterator[None]:
    """FFmpeg's errors about an input become ``SoraError("cannot read <name>: ...")``."""
    import av

    try:
        yield
    except av.FFmpegError as exc:
        if is_file_error(exc):
            raise
        raise cannot_read(path, exc) from exc


def video_stream(container: InputContainer, path: Path,
                 limits: MediaLimits | None = None) -> VideoStream:
    """The clip's first video stream, its picture size checked against ``limits``."""
    if not container.streams.video:
        raise SoraError(f"cannot read {path.name}: it has no video stream")
    stream = container.streams.video[0]
    context = stream.codec_context
    limits = limits or LIMITS
    check_picture(context.width, context.height, path, limits)
    if not context.is_open:     # a size that changes mid-stream meets the same limit
        context.options = {**context.options, **_decoder_options(limits)}
    return stream


def duration_of(container: InputContainer, stream: VideoStream) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000
    return 0.0


def start_seconds(stream: VideoStream) -> Fraction:
    if stream.start_time is not None and stream.time_base:
        return stream.start_time * stream.time_base
    return Fraction(0)


def ticks(seconds: Fraction | float, stream: VideoStream) -> int:
    return int(Fraction(seconds) / (stream.time_base or Fraction(1, 1_000_000)))


def fps_of(stream: VideoStream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 24.0


def sar_of(stream: VideoStream) -> Fraction:
    sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
    return Fraction(sar) if sar else Fraction(1)


def even(value: Fraction | float) -> int:
    return max(2, round(value / 2) * 2)


def common_time_base(bases: Iterable[Fraction | None]) -> Fraction:
    """The coarsest time base in which every input's timestamps are whole numbers."""
    result: Fraction | None = None
    for base in bases:
        if base is None:
            continue
        result = base if result is None else Fraction(
            math.gcd(result.numerator, base.numerator),
            math.lcm(result.denominator, base.denominator))
    if result is None or result.denominator > 1 << 30:
        return Fraction(1, 90_000)
    return result


def to_image(frame: VideoFrame, sar: Fraction, max_width: int | None,
              max_height: int | None) -> Image.Image:
    """RGB at the display aspect ratio, shrunk (never enlarged) to fit the limits."""
    display_w = frame.width * sar
    scale = Fraction(1)
    if max_width is not None:
        scale = min(scale, Fraction(max_width) / display_w)
    if max_height is not None:
        scale = min(scale, Fraction(max_height, frame.height))
    width = max(1, round(display_w * scale))
    height = max(1, round(frame.height * scale))
    return image_of(frame, width, height)


def image_of(frame: VideoFrame, width: int, height: int) -> Image.Image:
    """RGB of ``frame`` scaled by swscale (area averaging: sharp and fast when shrinking)."""
    if (width, height) == (frame.width, frame.height):
        image: Image.Image = frame.to_image()  # type: ignore[no-untyped-call]
    else:
        image = frame.to_image(  # type: ignore[no-untyped-call]
            width=width, height=height, interpolation="AREA")
    return image


@contextlib.contextmanager
def atomic(target: Path) -> Iterator[Path]:
    """A temporary path beside ``target``, moved over it only when the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def fit_frame(frame: VideoFrame, sar: Fraction, width: int, height: int) -> VideoFrame:
    """``frame`` as yuv420p of exactly ``width`` x ``height``, letterboxed if its shape differs."""
    import av
    from PIL import Image

    if frame.width == width and frame.height == height and sar == 1:
        return frame.reformat(format="yuv420p")
    display_w = frame.width * sar
    scale = min(Fraction(width) / display_w, Fraction(height, frame.height))
    inner_w = max(2, min(width, round(display_w * scale)))
    inner_h = max(2, min(height, round(frame.height * scale)))
    inner = image_of(frame, inner_w, inner_h)
    canvas = Image.new("RGB", (width, height))
    canvas.paste(inner, ((width - inner_w) // 2, (height - inner_h) // 2))
    fitted: VideoFrame = av.VideoFrame.from_image(canvas)  # type: ignore[no-untyped-call]
    return fitted.reformat(format="yuv420p")
