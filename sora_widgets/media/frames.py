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
- A damaged input is the user's problem to know about, so it becomes a ``SoraError`` naming
  the file; a missing one is a plain ``FileNotFoundError``; a bad argument a ``ValueError``.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import io
import logging
import math
import os
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, cast

from sora_widgets.core.errors import SoraError, ValidationError

if TYPE_CHECKING:
    from av.audio.frame import AudioFrame
    from av.audio.stream import AudioStream
    from av.container import InputContainer, OutputContainer
    from av.packet import Packet
    from av.video.frame import VideoFrame
    from av.video.stream import VideoStream
    from PIL import Image

__all__ = [
    "VideoInfo",
    "last_frame",
    "last_frame_data_uri",
    "poster",
    "probe",
    "stitch",
]

logger = logging.getLogger("sora_widgets.media.frames")

StrPath: TypeAlias = "str | os.PathLike[str]"

#: A data URI longer than this is shrunk (relays and JSON bodies have size caps).
MAX_DATA_URI_CHARS = 2_000_000
#: The re-encode path's time base: exact for 12, 24, 25, 30, 50 and 60 fps alike.
_ENCODE_TIME_BASE = Fraction(1, 90_000)
_AUDIO_BIT_RATE = 160_000


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


def probe(video: StrPath) -> VideoInfo:
    """Duration, size, frame rate and codec of ``video`` (no decoding: fast on any size)."""
    path = Path(video)
    with _open(path) as container, _reading(path):
        stream = _video_stream(container, path)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        return VideoInfo(
            duration=_duration(container, stream),
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            fps=float(rate) if rate else 0.0,
            codec=stream.codec_context.name,
            has_audio=bool(container.streams.audio),
            frames=stream.frames or None,
            sample_aspect_ratio=_sar(stream),
        )


# -------------------------------------------------------------------------- poster


def poster(
    video: StrPath, target: StrPath | None = None, *, at: float = 1.0, max_width: int = 640
) -> Path:
    """A JPEG still of ``video`` for ``<video poster>`` and the History list; its path.

    The frame at ``at`` seconds (the first frame when the clip is shorter), at most
    ``max_width`` wide, in the video's display aspect ratio. Written beside the video as
    ``<stem>.poster.jpg`` unless ``target`` says otherwise. A poster newer than its video is
    returned as it is (cheap to call on every render); delete it to make another.
    """
    if max_width < 1:
        raise ValueError(f"max_width must be at least 1, not {max_width}")
    path = Path(video)
    out = Path(target) if target is not None else path.with_name(f"{path.stem}.poster.jpg")
    source = path.stat()  # FileNotFoundError for a missing video
    # ctime too: os.replace() of a new video keeps the temp file's older mtime.
    if _modified_after(out, max(source.st_mtime_ns, source.st_ctime_ns)):
        return out
    with _open(path) as container, _reading(path):
        stream = _video_stream(container, path)
        frame = _frame_at(container, stream, max(0.0, at))
        if frame is None:
            raise SoraError(f"cannot read {path.name}: no decodable video frame")
        image = _to_image(frame, _sar(stream), max_width, None)
    with _atomic(out) as tmp:
        image.save(tmp, format="JPEG", quality=85, optimize=True)
    logger.debug("poster %s: %dx%d", out, image.width, image.height)
    return out


def _modified_after(path: Path, ns: int) -> bool:
    try:
        return path.stat().st_mtime_ns >= ns
    except OSError:
        return False


def _frame_at(container: InputContainer, stream: VideoStream, at: float) -> VideoFrame | None:
    """The first frame shown at or after ``at`` s, or the first frame if the clip is shorter."""
    start = _start_seconds(stream)
    if 0 < at < _duration(container, stream):
        container.seek(_ticks(start + at, stream), stream=stream)
        half = 0.5 / _fps(stream)
        chosen: VideoFrame | None = None
        for frame in container.decode(stream):
            chosen = frame
            if frame.time is None or frame.time - start + half >= at:
                return frame
        if chosen is not None:
            return chosen
        container.seek(_ticks(start, stream), stream=stream)
    return next(iter(container.decode(stream)), None)


# ---------------------------------------------------------------------- last frame


def last_frame(video: StrPath, *, max_side: int = 1280) -> Image.Image:
    """The clip's last decodable frame as an RGB image, at most ``max_side`` on its long side.

    Why: continuing a clip starts the next job from where this one ended. Seeks to the
    keyframe before the last half second and decodes to the end, keeping the frame with
    the latest presentation time (with B-frames the file's last packet is not the last
    frame shown). A damaged tail is skipped: the last frame that decodes wins.
    """
    if max_side < 1:
        raise ValueError(f"max_side must be at least 1, not {max_side}")
    path = Path(video)
    with _open(path) as container, _reading(path):
        stream = _video_stream(container, path)
        frame = _last_video_frame(container, stream, path)
        return _to_image(frame, _sar(stream), max_side, max_side)


def last_frame_data_uri(video: StrPath, *, max_side: int = 1280, quality: int = 90) -> str:
    """The last frame as ``data:image/jpeg;base64,...``: the next job's first-frame image.

    Kept under ``MAX_DATA_URI_CHARS`` (~2 MB) by lowering the quality, then the size.
    """
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be between 1 and 100, not {quality}")
    image = last_frame(video, max_side=max_side)
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


def _last_video_frame(container: InputContainer, stream: VideoStream, path: Path) -> VideoFrame:
    duration = _duration(container, stream)
    start = _start_seconds(stream)
    for window in (0.5, 5.0, math.inf):  # seconds before the end; seek lands on a keyframe
        from_start = window >= duration
        position = start if from_start else start + duration - window
        try:
            container.seek(_ticks(position, stream), stream=stream)
        except _av_error():
            if from_start:
                raise
            continue  # try a wider window, then the whole clip
        frame = _decode_to_end(container, stream, path)
        if frame is not None:
            return frame
        if from_start:
            break
    raise SoraError(f"cannot read {path.name}: no decodable video frame")


def _decode_to_end(
    container: InputContainer, stream: VideoStream, path: Path
) -> VideoFrame | None:
    """The latest-presented frame from here to the end; damaged packets are skipped."""
    best: VideoFrame | None = None
    packets = container.demux(stream)
    while True:
        try:
            packet: Packet[Any] | None = next(packets)
        except StopIteration:
            break
        except _av_error() as exc:
            if _is_file_error(exc):
                raise
            logger.debug("%s: stopped reading at a damaged tail: %s", path.name, exc)
            packet = None  # flush: the decoder still holds frames (B-frames wait for later ones)
        try:
            frames = packet.decode() if packet is not None else stream.codec_context.decode(None)
        except _av_error() as exc:
            if _is_file_error(exc):
                raise
            logger.debug("%s: skipped an undecodable packet: %s", path.name, exc)
            frames = []
        for frame in frames:
            if best is None or frame.pts is None or best.pts is None or frame.pts >= best.pts:
                best = frame
        if packet is None:
            break
    return best


# -------------------------------------------------------------------------- stitch


def stitch(videos: Sequence[StrPath], target: StrPath, *, reencode: bool | None = None) -> Path:
    """One mp4 of ``videos`` in order, written atomically to ``target``; its path.

    ``reencode=None`` (auto) copies the compressed video when every clip's video has the
    same codec, size, pixel format and codec headers (lossless, seconds for minutes of
    film), else re-encodes it (H.264/yuv420p at the first clip's size; other shapes are
    scaled and letterboxed). ``True`` always re-encodes; ``False`` never does and raises
    ``ValidationError`` (a ``ValueError``) when the clips cannot be joined as they are.
    The timeline is continuous: each clip starts where the previous one's video ended.
    Audio is kept when every clip has some (copied when all match, else re-encoded to
    AAC and fitted to each clip's video), and dropped otherwise. One clip's compressed
    video and audio are held in memory at a time.
    """
    if isinstance(videos, (str, bytes, os.PathLike)):
        raise TypeError("stitch() takes a list of videos, not a single path")
    paths = [Path(v) for v in videos]
    if not paths:
        raise ValidationError("stitch() needs at least one video", field="videos")
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(errno.ENOENT, "no such video", str(path))
    out = Path(target)
    specs = [_read_spec(path) for path in paths]

    copy_video = _same(s.video_key for s in specs)
    if reencode is False and not copy_video:
        raise ValidationError(
            "the clips' videos differ (" + _describe(specs) + "): they cannot be joined "
            "without re-encoding; use reencode=True or None", field="reencode")
    if reencode is True:
        copy_video = False

    audio_mode: Literal["copy", "encode", "drop"] = "drop"
    if all(s.audio_key is not None for s in specs):
        audio_mode = "copy" if _same(s.audio_key for s in specs) and not reencode else "encode"
        if reencode is False and audio_mode == "encode":
            raise ValidationError("the clips' audio tracks differ: they cannot be joined "
                                  "without re-encoding; use reencode=True or None",
                                  field="reencode")
    elif any(s.audio_key is not None for s in specs):
        silent = ", ".join(s.path.name for s in specs if s.audio_key is None)
        logger.warning("stitch: dropping the audio: %s has none", silent)

    logger.info("stitch %d clips into %s: video %s, audio %s", len(paths), out.name,
                "copied" if copy_video else "re-encoded", audio_mode)
    import av

    with _atomic(out) as tmp:
        with av.open(str(tmp), "w", format="mp4",
                     options={"movflags": "+faststart"}) as container:
            _Stitcher(container, specs, copy_video=copy_video, audio_mode=audio_mode).run()
        with open(tmp, "rb+") as written:
            os.fsync(written.fileno())
    return out


@dataclass(frozen=True)
class _Spec:
    """One input clip's stream parameters: what decides copy or re-encode."""

    path: Path
    video_key: tuple[Any, ...]
    audio_key: tuple[Any, ...] | None
    width: int
    height: int
    sar: Fraction
    fps: float
    video_time_base: Fraction
    audio_time_base: Fraction | None
    sample_rate: int
    layout: str


def _read_spec(path: Path) -> _Spec:
    with _open(path) as container, _reading(path):
        vs = _video_stream(container, path)
        cc = vs.codec_context
        audio = container.streams.audio[0] if container.streams.audio else None
        audio_key = None
        if audio is not None:
            ac = audio.codec_context
            audio_key = (ac.name, ac.sample_rate, ac.layout.name, bytes(ac.extradata or b""))
        return _Spec(
            path=path,
            # The codec headers (H.264 SPS/PPS) too: an mp4 track has one set for all clips.
            video_key=(cc.name, cc.width, cc.height, cc.format.name if cc.format else None,
                       _sar(vs), bytes(cc.extradata or b"")),
            audio_key=audio_key,
            width=cc.width,
            height=cc.height,
            sar=_sar(vs),
            fps=_fps(vs),
            video_time_base=vs.time_base or Fraction(1, 90_000),
            audio_time_base=audio.time_base if audio is not None else None,
            sample_rate=audio.codec_context.sample_rate if audio is not None else 0,
            layout=audio.codec_context.layout.name if audio is not None else "",
        )


def _same(keys: Iterable[Any]) -> bool:
    return len(set(keys)) <= 1


def _describe(specs: Sequence[_Spec]) -> str:
    kinds = dict.fromkeys(f"{s.video_key[0]} {s.width}x{s.height} {s.video_key[3]}"
                          for s in specs)
    return "; ".join(kinds) if len(kinds) > 1 else "same size, different codec headers"


@dataclass
class _Clip:
    """Timing of the clip being joined: where it starts in its file and on the output."""

    start: Fraction
    offset: Fraction
    frame_duration: Fraction
    sar: Fraction
    shift: int | None = None
    end: Fraction | None = None

    def extend(self, end: Fraction) -> None:
        if self.end is None or end > self.end:
            self.end = end

    def ticks(self, seconds: Fraction, time_base: Fraction) -> int:
        """Output ticks for a time in the input file."""
        return round((seconds - self.start + self.offset) / time_base)


class _Stitcher:
    """One pass over the clips in order; each starts where the previous clip's video ended."""

    def __init__(self, out: OutputContainer, specs: Sequence[_Spec], *, copy_video: bool,
                 audio_mode: Literal["copy", "encode", "drop"]) -> None:
        self.out = out
        self.specs = specs
        self.copy_video = copy_video
        self.audio_mode = audio_mode
        self.offset = Fraction(0)  # output seconds where the next clip starts
        self.last_video_dts: int | None = None  # output ticks of the last video packet/frame
        self.last_audio_end: int | None = None  # output ticks where the copied audio ends
        self.video_tb = _common_time_base(s.video_time_base for s in specs)
        self.audio_tb = _common_time_base(s.audio_time_base for s in specs)
        self.video_out: VideoStream | None = None
        self.audio_out: AudioStream | None = None
        self.audio_encoder: _AudioEncoder | None = None
        if not copy_video:
            self.video_out = self._video_encoder(specs[0])
        if audio_mode == "encode":
            self.audio_encoder = _AudioEncoder(out, specs[0].sample_rate, specs[0].layout)

    def run(self) -> None:
        # Every output stream exists before the first packet: the header is written then.
        if self.copy_video or self.audio_mode == "copy":
            path = self.specs[0].path
            with _open(path) as first:
                if self.copy_video:
                    self.video_out = self.out.add_stream_from_template(
                        _video_stream(first, path))
                    self.video_out.time_base = self.video_tb
                if self.audio_mode == "copy":
                    self.audio_out = self.out.add_stream_from_template(first.streams.audio[0])
                    self.audio_out.time_base = self.audio_tb
        for spec in self.specs:
            self._clip(spec)
        if self.video_out is not None and not self.copy_video:
            self.out.mux(self.video_out.encode(None))
        if self.audio_encoder is not None:
            self.audio_encoder.finish()

    def _video_encoder(self, first: _Spec) -> VideoStream:
        fps = Fraction(first.fps).limit_denominator(1001)
        stream = self.out.add_stream("libx264", rate=fps)
        stream.width, stream.height = _even(first.width * first.sar), _even(first.height)
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = _ENCODE_TIME_BASE
        stream.time_base = _ENCODE_TIME_BASE
        stream.codec_context.gop_size = max(1, round(2 * fps))  # seekable in a browser
        stream.options = {"preset": "veryfast", "crf": "20"}
        return stream

    def _clip(self, spec: _Spec) -> None:
        path = spec.path
        with _open(path) as container:
            vs = _video_stream(container, path)
            streams: list[Any] = [vs]
            if self.audio_mode != "drop":
                streams.append(container.streams.audio[0])
            if not self.copy_video:
                vs.thread_type = "AUTO"
            clip = _Clip(start=_start_seconds(vs), offset=self.offset, sar=spec.sar,
                         frame_duration=1 / Fraction(spec.fps).limit_denominator(1001))
            audio_packets: list[Packet[Any]] = []
            audio_frames: list[AudioFrame] = []
            for packet in _demux(container, streams, path):
                if packet.stream.type == "video":
                    if self.copy_video:
                        self._copy_video(packet, clip)
                    else:
                        for frame in _decode(packet, path):
                            self._encode_video(cast("VideoFrame", frame), clip)
                elif self.audio_mode == "copy":
                    if packet.dts is not None and packet.pts is not None and packet.size:
                        audio_packets.append(packet)
                else:
                    audio_frames.extend(cast("list[AudioFrame]", _decode(packet, path)))
            if clip.end is None:
                raise SoraError(f"cannot read {path.name}: no video frames")
            if self.audio_mode == "copy":
                self._copy_audio(audio_packets, clip)
            elif self.audio_encoder is not None:
                self.audio_encoder.add_clip(audio_frames, clip)
            self.offset = clip.end

    def _copy_video(self, packet: Packet[Any], clip: _Clip) -> None:
        if packet.dts is None or packet.pts is None or not packet.size:
            return  # the demuxer's end-of-stream marker
        assert self.video_out is not None
        tb = packet.time_base
        pts = clip.ticks(packet.pts * tb, self.video_tb)
        dts = clip.ticks(packet.dts * tb, self.video_tb)
        if clip.shift is None:  # the first packet: never step back over the previous clip
            clip.shift = 0
            if self.last_video_dts is not None and dts <= self.last_video_dts:
                clip.shift = self.last_video_dts + 1 - dts
        pts, dts = pts + clip.shift, dts + clip.shift
        duration = packet.duration * tb if packet.duration else clip.frame_duration
        clip.extend(pts * self.video_tb + duration)
        self.last_video_dts = dts
        packet.stream = self.video_out
        packet.time_base = self.video_tb
        packet.pts, packet.dts = pts, dts
        self.out.mux(packet)

    def _encode_video(self, frame: VideoFrame, clip: _Clip) -> None:
        assert self.video_out is not None
        if frame.pts is None or frame.time_base is None:
            return
        pts = clip.ticks(frame.pts * frame.time_base, _ENCODE_TIME_BASE)
        if self.last_video_dts is not None and pts <= self.last_video_dts:
            pts = self.last_video_dts + 1
        duration = (frame.duration * frame.time_base if frame.duration
                    else clip.frame_duration)
        clip.extend(pts * _ENCODE_TIME_BASE + duration)
        self.last_video_dts = pts
        fitted = _fit_frame(frame, clip.sar, self.video_out.width, self.video_out.height)
        fitted.pts, fitted.time_base = pts, _ENCODE_TIME_BASE
        self.out.mux(self.video_out.encode(fitted))

    def _copy_audio(self, packets: list[Packet[Any]], clip: _Clip) -> None:
        assert clip.end is not None
        if not packets:
            return
        assert self.audio_out is not None
        shift: int | None = None
        video_end = round(clip.end / self.audio_tb)
        for packet in packets:
            assert packet.dts is not None and packet.pts is not None
            tb = packet.time_base
            pts = clip.ticks(packet.pts * tb, self.audio_tb)
            dts = clip.ticks(packet.dts * tb, self.audio_tb)
            if shift is None:
                shift = 0
                if self.last_audio_end is not None and dts < self.last_audio_end:
                    shift = self.last_audio_end - dts
            pts, dts = pts + shift, dts + shift
            if pts >= video_end:
                break  # sound past the clip's last frame would run into the next clip
            duration = round(packet.duration * tb / self.audio_tb) if packet.duration else 0
            self.last_audio_end = dts + max(1, duration)
            packet.stream = self.audio_out
            packet.time_base = self.audio_tb
            packet.pts, packet.dts = pts, dts
            self.out.mux(packet)


class _AudioEncoder:
    """AAC out, fed clip by clip: each clip's sound is fitted to exactly its video's span
    (padded with silence or cut), so sound and picture stay together across the joins."""

    def __init__(self, out: OutputContainer, rate: int, layout: str) -> None:
        self.out = out
        self.rate = rate or 48_000
        self.layout = layout or "stereo"
        self.stream = out.add_stream("aac", rate=self.rate)
        self.stream.layout = self.layout
        self.stream.bit_rate = _AUDIO_BIT_RATE
        self.stream.options = {"aac_coder": "fast"}  # 4x faster than the default, same rate
        self.written = 0  # samples on the output

    def add_clip(self, frames: list[AudioFrame], clip: _Clip) -> None:
        import av

        assert clip.end is not None
        resampler = av.AudioResampler(format="fltp", layout=self.layout, rate=self.rate)
        channels = [bytearray() for _ in range(av.AudioLayout(self.layout).nb_channels)]
        first_time: Fraction | None = None
        for frame in [*frames, None]:
            if (frame is not None and first_time is None and frame.pts is not None
                    and frame.time_base is not None):
                first_time = frame.pts * frame.time_base
            for chunk in resampler.resample(frame):
                for buffer, plane in zip(channels, chunk.planes, strict=True):
                    buffer += bytes(plane)[: chunk.samples * 4]  # fltp: 4 bytes a sample
        start = self.written
        begin = clip.ticks(first_time if first_time is not None else clip.start,
                           Fraction(1, self.rate))
        lead = begin - start  # > 0: silence before the sound; < 0: cut its head
        count = max(0, round(clip.end * self.rate) - start)
        for i, buffer in enumerate(channels):
            if lead > 0:
                buffer[:0] = bytes(4 * lead)
            elif lead < 0:
                del buffer[: 4 * -lead]
            channels[i] = buffer[: 4 * count] + bytes(max(0, 4 * count - len(buffer)))
        step = self.rate  # one second a frame; the encoder cuts its own 1024-sample frames
        for first in range(0, count, step):
            samples = min(step, count - first)
            chunk = av.AudioFrame(format="fltp", layout=self.layout, samples=samples)
            for plane, buffer in zip(chunk.planes, channels, strict=True):
                plane.update(bytes(buffer[4 * first: 4 * (first + samples)]))
            chunk.sample_rate = self.rate
            chunk.pts, chunk.time_base = start + first, Fraction(1, self.rate)
            self.out.mux(self.stream.encode(chunk))
        self.written = start + count

    def finish(self) -> None:
        self.out.mux(self.stream.encode(None))


def _demux(container: InputContainer, streams: list[Any], path: Path) -> Iterator[Packet[Any]]:
    """The packets of ``streams``; only reading errors become "cannot read <name>"."""
    with _reading(path):
        yield from container.demux(*streams)


def _decode(packet: Packet[Any], path: Path) -> list[Any]:
    with _reading(path):
        return list(packet.decode())
    raise AssertionError("unreachable")  # pragma: no cover


def _fit_frame(frame: VideoFrame, sar: Fraction, width: int, height: int) -> VideoFrame:
    """``frame`` as yuv420p of exactly ``width`` x ``height``, letterboxed if its shape differs."""
    import av
    from PIL import Image

    if frame.width == width and frame.height == height and sar == 1:
        return frame.reformat(format="yuv420p")
    display_w = frame.width * sar
    scale = min(Fraction(width) / display_w, Fraction(height, frame.height))
    inner_w = max(2, min(width, round(display_w * scale)))
    inner_h = max(2, min(height, round(frame.height * scale)))
    inner = _image(frame, inner_w, inner_h)
    canvas = Image.new("RGB", (width, height))
    canvas.paste(inner, ((width - inner_w) // 2, (height - inner_h) // 2))
    fitted: VideoFrame = av.VideoFrame.from_image(canvas)  # type: ignore[no-untyped-call]
    return fitted.reformat(format="yuv420p")


# ------------------------------------------------------------------------- helpers


def _av_error() -> type[Exception]:
    import av

    return cast("type[Exception]", av.FFmpegError)


def _is_file_error(exc: BaseException) -> bool:
    return isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError))


def _open(path: Path) -> InputContainer:
    import av

    if not path.is_file():
        raise FileNotFoundError(errno.ENOENT, "no such video", str(path))
    try:
        return av.open(str(path), "r")
    except av.FFmpegError as exc:
        if _is_file_error(exc):
            raise
        raise _cannot_read(path, exc) from exc


def _cannot_read(path: Path, exc: BaseException) -> SoraError:
    return SoraError(f"cannot read {path.name}: {getattr(exc, 'strerror', None) or exc}")


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """FFmpeg's errors about an input become ``SoraError("cannot read <name>: ...")``."""
    import av

    try:
        yield
    except av.FFmpegError as exc:
        if _is_file_error(exc):
            raise
        raise _cannot_read(path, exc) from exc


def _video_stream(container: InputContainer, path: Path) -> VideoStream:
    if not container.streams.video:
        raise SoraError(f"cannot read {path.name}: it has no video stream")
    return container.streams.video[0]


def _duration(container: InputContainer, stream: VideoStream) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000
    return 0.0


def _start_seconds(stream: VideoStream) -> Fraction:
    if stream.start_time is not None and stream.time_base:
        return stream.start_time * stream.time_base
    return Fraction(0)


def _ticks(seconds: Fraction | float, stream: VideoStream) -> int:
    return int(Fraction(seconds) / (stream.time_base or Fraction(1, 1_000_000)))


def _fps(stream: VideoStream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 24.0


def _sar(stream: VideoStream) -> Fraction:
    sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
    return Fraction(sar) if sar else Fraction(1)


def _even(value: Fraction | float) -> int:
    return max(2, round(value / 2) * 2)


def _common_time_base(bases: Iterable[Fraction | None]) -> Fraction:
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


def _to_image(frame: VideoFrame, sar: Fraction, max_width: int | None,
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
    return _image(frame, width, height)


def _image(frame: VideoFrame, width: int, height: int) -> Image.Image:
    """RGB of ``frame`` scaled by swscale (area averaging: sharp and fast when shrinking)."""
    if (width, height) == (frame.width, frame.height):
        image: Image.Image = frame.to_image()  # type: ignore[no-untyped-call]
    else:
        image = frame.to_image(  # type: ignore[no-untyped-call]
            width=width, height=height, interpolation="AREA")
    return image


@contextlib.contextmanager
def _atomic(target: Path) -> Iterator[Path]:
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

