"""One film from many clips: ``stitch``, bounded like every reader of an untrusted clip.

Why it is built this way: ``stitch`` copies the compressed packets when every clip's video
is the same kind (the normal case: clips from one model), lossless and fast, and
re-encodes only when it must. The output is written to a temporary name and moved into
place (``clips.atomic``). The clips come from a relay, so ``limits``
(:class:`~sora_widgets.media.clips.MediaLimits`) bounds each clip's picture size and
length before anything is decoded, the frames and seconds spent on each clip while it is
read, and the bytes of the film written.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from sora_widgets.core.errors import SoraError, ValidationError
from sora_widgets.media.clips import (
    LIMITS,
    MediaLimits,
    StrPath,
    Work,
    atomic,
    common_time_base,
    duration_of,
    even,
    fit_frame,
    fps_of,
    open_clip,
    reading,
    sar_of,
    start_seconds,
    video_stream,
)

if TYPE_CHECKING:
    from av.audio.frame import AudioFrame
    from av.audio.stream import AudioStream
    from av.container import InputContainer, OutputContainer
    from av.packet import Packet
    from av.video.frame import VideoFrame
    from av.video.stream import VideoStream

__all__ = ["stitch"]

#: The name stitch has always logged under (what a user's logging config names).
logger = logging.getLogger("sora_widgets.media.frames")

#: The re-encode path's time base: exact for 12, 24, 25, 30, 50 and 60 fps alike.
_ENCODE_TIME_BASE = Fraction(1, 90_000)
_AUDIO_BIT_RATE = 160_000


def stitch(videos: Sequence[StrPath], target: StrPath, *, reencode: bool | None = None,
           limits: MediaLimits | None = None) -> Path:
    """One mp4 of ``videos`` in order, written atomically to ``target``; its path.

    ``reencode=None`` (auto) copies the compressed video when every clip's video has the
    same codec, size, pixel format and codec headers (lossless, seconds for minutes of
    film), else re-encodes it (H.264/yuv420p at the first clip's size; other shapes are
    scaled and letterboxed). ``True`` always re-encodes; ``False`` never does and raises
    ``ValidationError`` (a ``ValueError``) when the clips cannot be joined as they are.
    The timeline is continuous: each clip starts where the previous one's video ended.
    Audio is kept when every clip has some (copied when all match, else re-encoded to
    AAC and fitted to each clip's video), and dropped otherwise. One clip's compressed
    video and audio are held in memory at a time. ``limits`` bounds the work (default
    :data:`~sora_widgets.media.clips.LIMITS`): a clip past a bound is a ``SoraError``.
    """
    limits = limits or LIMITS
    if isinstance(videos, (str, bytes, os.PathLike)):
        raise TypeError("stitch() takes a list of videos, not a single path")
    paths = [Path(v) for v in videos]
    if not paths:
        raise ValidationError("stitch() needs at least one video", field="videos")
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(errno.ENOENT, "no such video", str(path))
    out = Path(target)
    specs = [_read_spec(path, limits) for path in paths]

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

    with atomic(out) as tmp:
        with av.open(str(tmp), "w", format="mp4",
                     options={"movflags": "+faststart"}) as container:
            _Stitcher(container, specs, copy_video=copy_video, audio_mode=audio_mode,
                      limits=limits, name=out.name).run()
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


def _read_spec(path: Path, limits: MediaLimits) -> _Spec:
    """A clip's parameters from its headers; one too long to join is refused here, before
    a packet is read."""
    with open_clip(path, limits) as container, reading(path):
        vs = video_stream(container, path, limits)
        seconds = duration_of(container, vs)
        if seconds > limits.max_seconds or (vs.frames or 0) > limits.max_frames:
            raise SoraError(f"cannot join {path.name}: it claims {seconds:.0f} s "
                            f"({vs.frames or '?'} frames), more than the "
                            f"{limits.max_seconds:g} s or {limits.max_frames} frames a "
                            "clip may have")
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
                       sar_of(vs), bytes(cc.extradata or b"")),
            audio_key=audio_key,
            width=cc.width,
            height=cc.height,
            sar=sar_of(vs),
            fps=fps_of(vs),
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
                 audio_mode: Literal["copy", "encode", "drop"], limits: MediaLimits,
                 name: str) -> None:
        self.out = out
        self.limits = limits
        self.mux = _CappedMux(out, limits.max_output_bytes, name)
        self.specs = specs
        self.copy_video = copy_video
        self.audio_mode = audio_mode
        self.offset = Fraction(0)  # output seconds where the next clip starts
        self.last_video_dts: int | None = None  # output ticks of the last video packet/frame
        self.last_audio_end: int | None = None  # output ticks where the copied audio ends
        self.video_tb = common_time_base(s.video_time_base for s in specs)
        self.audio_tb = common_time_base(s.audio_time_base for s in specs)
        self.video_out: VideoStream | None = None
        self.audio_out: AudioStream | None = None
        self.audio_encoder: _AudioEncoder | None = None
        if not copy_video:
            self.video_out = self._video_encoder(specs[0])
        if audio_mode == "encode":
            self.audio_encoder = _AudioEncoder(out, self.mux, specs[0].sample_rate,
                                               specs[0].layout)

    def run(self) -> None:
        # Every output stream exists before the first packet: the header is written then.
        if self.copy_video or self.audio_mode == "copy":
            path = self.specs[0].path
            with open_clip(path, self.limits) as first:
                if self.copy_video:
                    self.video_out = self.out.add_stream_from_template(
                        video_stream(first, path, self.limits))
                    self.video_out.time_base = self.video_tb
                if self.audio_mode == "copy":
                    self.audio_out = self.out.add_stream_from_template(first.streams.audio[0])
                    self.audio_out.time_base = self.audio_tb
        for spec in self.specs:
            self._clip(spec)
        if self.video_out is not None and not self.copy_video:
            self.mux(self.video_out.encode(None))
        if self.audio_encoder is not None:
            self.audio_encoder.finish()

    def _video_encoder(self, first: _Spec) -> VideoStream:
        fps = Fraction(first.fps).limit_denominator(1001)
        stream = self.out.add_stream("libx264", rate=fps)
        stream.width, stream.height = even(first.width * first.sar), even(first.height)
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = _ENCODE_TIME_BASE
        stream.time_base = _ENCODE_TIME_BASE
        stream.codec_context.gop_size = max(1, round(2 * fps))  # seekable in a browser
        stream.options = {"preset": "veryfast", "crf": "20"}
        return stream

    def _clip(self, spec: _Spec) -> None:
        path = spec.path
        work = Work(path, self.limits)
        with open_clip(path, self.limits) as container:
            vs = video_stream(container, path, self.limits)
            streams: list[Any] = [vs]
            if self.audio_mode != "drop":
                streams.append(container.streams.audio[0])
            if not self.copy_video:
                vs.thread_type = "AUTO"
            clip = _Clip(start=start_seconds(vs), offset=self.offset, sar=spec.sar,
                         frame_duration=1 / Fraction(spec.fps).limit_denominator(1001))
            audio_packets: list[Packet[Any]] = []
            audio_frames: list[AudioFrame] = []
            for packet in _demux(container, streams, path):
                work.step(1 if packet.stream.type == "video" else 0)
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
                    decoded = cast("list[AudioFrame]", _decode(packet, path))
                    audio_frames.extend(decoded)
                    work.sound(sum(f.samples * len(f.layout.channels) for f in decoded))
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
        self.mux(packet)

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
        fitted = fit_frame(frame, clip.sar, self.video_out.width, self.video_out.height)
        fitted.pts, fitted.time_base = pts, _ENCODE_TIME_BASE
        self.mux(self.video_out.encode(fitted))

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
            self.mux(packet)


class _AudioEncoder:
    """AAC out, fed clip by clip: each clip's sound is fitted to exactly its video's span
    (padded with silence or cut), so sound and picture stay together across the joins."""

    def __init__(self, out: OutputContainer, mux: _CappedMux, rate: int, layout: str) -> None:
        self.mux = mux
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
            self.mux(self.stream.encode(chunk))
        self.written = start + count

    def finish(self) -> None:
        self.mux(self.stream.encode(None))


class _CappedMux:
    """``OutputContainer.mux`` that counts the bytes written and stops at the cap."""

    def __init__(self, out: OutputContainer, cap: int, name: str) -> None:
        self.out = out
        self.cap = cap
        self.name = name
        self.written = 0

    def __call__(self, packets: Packet[Any] | list[Packet[Any]]) -> None:
        batch = packets if isinstance(packets, list) else [packets]
        self.written += sum(packet.size for packet in batch)
        if self.written > self.cap:
            raise SoraError(f"stitch: {self.name} would pass {self.cap // (1024 * 1024)} MB; "
                            "it was stopped")
        self.out.mux(batch)


def _demux(container: InputContainer, streams: list[Any], path: Path) -> Iterator[Packet[Any]]:
    """The packets of ``streams``; only reading errors become "cannot read <name>"."""
    with reading(path):
        yield from container.demux(*streams)


def _decode(packet: Packet[Any], path: Path) -> list[Any]:
    with reading(path):
        return list(packet.decode())
    raise AssertionError("unreachable")  # pragma: no cover



