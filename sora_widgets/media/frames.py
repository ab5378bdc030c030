"""Stills and joins of finished clips: a poster, the last frame, one film from many clips.

Why it exists: a History of 2,000 jobs shows posters, not 2,000 players; ``continue_with``
sends a clip's last frame as the next job's first-frame image; a storyboard ends as one
film. Everything here is local work on saved mp4s (no relay, no charge).

Why it is built this way:

- PyAV and Pillow are imported inside the functions, so ``import sora_widgets`` stays fast;
  no IPython or ipywidgets here (the core rule).
- Every file is written to a temporary name beside the target and moved into place with
  ``os.replace``: a crash or a concurrent reader never sees half a poster or half a film.
- ``stitch`` copies the compressed packets when every clip's video is the same kind (the
  normal case: clips from one model) — lossless and fast — and re-encodes only when it must.
- The clips come from a relay: FFmpeg parses untrusted data. Every reader is bounded by
  :class:`~sora_widgets.media.clips.MediaLimits` (picture size checked before decoding,
  frames, wall-clock seconds, a stitched film's size), given as ``limits=``.
- ``stitch`` lives in ``stitch.py`` (re-exported here), the shared helpers in ``clips.py``.
- A damaged input is the user's problem to know about, so it becomes a ``SoraError`` naming
  the file; a missing one is a plain ``FileNotFoundError``; a bad argument a ``ValueError``.
"""

from __future__ import annotations

import base64
import io
import logging
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sora_widgets.core.errors import SoraError
from sora_widgets.media.clips import (
    LIMITS,
    MediaLimits,
    StrPath,
    Work,
    atomic,
    av_error,
    duration_of,
    fps_of,
    is_file_error,
    open_clip,
    reading,
    sar_of,
    start_seconds,
    ticks,
    to_image,
    video_stream,
)
from sora_widgets.media.stitch import stitch

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.packet import Packet
    from av.video.frame import VideoFrame
    from av.video.stream import VideoStream
    from PIL import Image

__all__ = [
    "LIMITS",
    "MediaLimits",
    "VideoInfo",
    "last_frame",
    "last_frame_data_uri",
    "poster",
    "probe",
    "stitch",
]

logger = logging.getLogger("sora_widgets.media.frames")

#: A data URI longer than this is shrunk (relays and JSON bodies have size caps).
MAX_DATA_URI_CHARS = 2_000_000


@dataclass(frozen=True)
class VideoInfo:
    """What the UI and the tests need to know about a clip, read from its headers only."""

    duration: float
    """Seconds of video (the video stream's length; the container's if unknown)."""
    width: int
    height: int
    fps: float
    codec: str
    has_audio: bool
    frames: int | None = None
    """The frame count when the container records it (mp4 does), else ``None``."""
    sample_aspect_ratio: Fraction = Fraction(1)

    @property
    def aspect_ratio(self) -> float:
        """Display width over height: what a player shows (non-square pixels included)."""
        return self.width * float(self.sample_aspect_ratio) / self.height


# --------------------------------------------------------------------------- probe


def probe(video: StrPath, *, limits: MediaLimits | None = None) -> VideoInfo:
    """Duration, size, frame rate and codec of ``video`` (no decoding: fast on any size).
    A picture size past ``limits`` is refused as for every other reader."""
    path = Path(video)
    with open_clip(path, limits) as container, reading(path):
        stream = video_stream(container, path, limits)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        return VideoInfo(
            duration=duration_of(container, stream),
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            fps=float(rate) if rate else 0.0,
            codec=stream.codec_context.name,
            has_audio=bool(container.streams.audio),
            frames=stream.frames or None,
            sample_aspect_ratio=sar_of(stream),
        )


# -------------------------------------------------------------------------- poster


def poster(
    video: StrPath, target: StrPath | None = None, *, at: float = 1.0, max_width: int = 640,
    limits: MediaLimits | None = None,
) -> Path:
    """A JPEG still of ``video`` for ``<video poster>`` and the History list; its path.

    The frame at ``at`` seconds (the first frame when the clip is shorter), at most
    ``max_width`` wide, in the video's display aspect ratio. Written beside the video as
    ``<stem>.poster.jpg`` unless ``target`` says otherwise. A poster newer than its video is
    returned as it is (cheap to call on every render); delete it to make another.
    Bounded by ``limits`` (a hostile file is a ``SoraError``, quickly).
    """
    if max_width < 1:
        raise ValueError(f"max_width must be at least 1, not {max_width}")
    path = Path(video)
    out = Path(target) if target is not None else path.with_name(f"{path.stem}.poster.jpg")
    source = path.stat()  # FileNotFoundError for a missing video
    # ctime too: os.replace() of a new video keeps the temp file's older mtime.
    if _modified_after(out, max(source.st_mtime_ns, source.st_ctime_ns)):
        return out
    with open_clip(path, limits) as container, reading(path):
        stream = video_stream(container, path, limits)
        work = Work(path, limits or LIMITS)
        frame = _frame_at(container, stream, max(0.0, at), work)
        if frame is None:
            raise SoraError(f"cannot read {path.name}: no decodable video frame")
        image = to_image(frame, sar_of(stream), max_width, None)
    with atomic(out) as tmp:
        image.save(tmp, format="JPEG", quality=85, optimize=True)
    logger.debug("poster %s: %dx%d", out, image.width, image.height)
    return out


def _modified_after(path: Path, ns: int) -> bool:
    try:
        return path.stat().st_mtime_ns >= ns
    except OSError:
        return False


def _frame_at(container: InputContainer, stream: VideoStream, at: float,
              work: Work) -> VideoFrame | None:
    """The first frame shown at or after ``at`` s, or the first frame if the clip is shorter."""
    start = start_seconds(stream)
    if 0 < at < duration_of(container, stream):
        container.seek(ticks(start + at, stream), stream=stream)
        half = 0.5 / fps_of(stream)
        chosen: VideoFrame | None = None
        for frame in container.decode(stream):
            work.step()
            chosen = frame
            if frame.time is None or frame.time - start + half >= at:
                return frame
        if chosen is not None:
            return chosen
        container.seek(ticks(start, stream), stream=stream)
    for frame in container.decode(stream):
        return frame
    return None


# ---------------------------------------------------------------------- last frame


def last_frame(video: StrPath, *, max_side: int = 1280,
               limits: MediaLimits | None = None) -> Image.Image:
    """The clip's last decodable frame as an RGB image, at most ``max_side`` on its long side.

    Why: continuing a clip starts the next job from where this one ended. Seeks to the
    keyframe before the last half second and decodes to the end, keeping the frame with
    the latest presentation time (with B-frames the file's last packet is not the last
    frame shown). A damaged tail is skipped: the last frame that decodes wins. Bounded by
    ``limits`` (frames decoded, seconds spent, picture size).
    """
    if max_side < 1:
        raise ValueError(f"max_side must be at least 1, not {max_side}")
    path = Path(video)
    with open_clip(path, limits) as container, reading(path):
        stream = video_stream(container, path, limits)
        frame = _last_video_frame(container, stream, Work(path, limits or LIMITS))
        return to_image(frame, sar_of(stream), max_side, max_side)


def last_frame_data_uri(video: StrPath, *, max_side: int = 1280, quality: int = 90,
                        limits: MediaLimits | None = None) -> str:
    """The last frame as ``data:image/jpeg;base64,...``: the next job's first-frame image.

    Kept under ``MAX_DATA_URI_CHARS`` (~2 MB) by lowering the quality, then the size.
    """
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be between 1 and 100, not {quality}")
    image = last_frame(video, max_side=max_side, limits=limits)
    while True:
        data = _jpeg(image, quality)
        uri = "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")
        if len(uri) <= MAX_DATA_URI_CHARS or max(image.size) <= 64:
            return uri
        if quality > 60:
            quality = max(60, quality - 15)
        else:
            image = image.resize((max(1, image.width * 3 // 4), max(1, image.height * 3 // 4)))


def _jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


def _last_video_frame(container: InputContainer, stream: VideoStream, work: Work) -> VideoFrame:
    path = work.path
    duration = duration_of(container, stream)
    start = start_seconds(stream)
    for window in (0.5, 5.0, math.inf):  # seconds before the end; seek lands on a keyframe
        from_start = window >= duration
        position = start if from_start else start + duration - window
        try:
            container.seek(ticks(position, stream), stream=stream)
        except av_error():
            if from_start:
                raise
            continue  # try a wider window, then the whole clip
        frame = _decode_to_end(container, stream, work)
        if frame is not None:
            return frame
        if from_start:
            break
    raise SoraError(f"cannot read {path.name}: no decodable video frame")


def _decode_to_end(container: InputContainer, stream: VideoStream, work: Work
                   ) -> VideoFrame | None:
    """The latest-presented frame from here to the end; damaged packets are skipped."""
    path = work.path
    best: VideoFrame | None = None
    packets = container.demux(stream)
    while True:
        try:
            packet: Packet[Any] | None = next(packets)
        except StopIteration:
            break
        except av_error() as exc:
            if is_file_error(exc):
                raise
            logger.debug("%s: stopped reading at a damaged tail: %s", path.name, exc)
            packet = None  # flush: the decoder still holds frames (B-frames wait for later ones)
        try:
            frames = packet.decode() if packet is not None else stream.codec_context.decode(None)
        except av_error() as exc:
            if is_file_error(exc):
                raise
            logger.debug("%s: skipped an undecodable packet: %s", path.name, exc)
            frames = []
        work.step(max(1, len(frames)))
        for frame in frames:
            if best is None or frame.pts is None or best.pts is None or frame.pts >= best.pts:
                best = frame
        if packet is None:
            break
    return best
