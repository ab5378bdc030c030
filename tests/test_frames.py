"""frames.py on real H.264 clips made by the emulator's renderer (small, for speed).

Every check decodes the output independently (PyAV) rather than trusting frames.py:
durations, presentation times, pixel content, and for the copy path the packet bytes.
"""

from __future__ import annotations

import base64
import io
import logging
import math
import os
import struct
import subprocess
import sys
import time
from array import array
from fractions import Fraction
from itertools import pairwise
from pathlib import Path

import av
import pytest
from PIL import Image, ImageChops, ImageStat

from sora_widgets.core.errors import SoraError
from sora_widgets.emulator.video import frame_size, render_mp4
from sora_widgets.media import frames

# 160x90 and 90x160 (whatever the emulator's base size): real H.264, fast to make and decode.
SCALE = 160 / max(frame_size("16:9"))
FRAME = 1 / 12  # the emulator renders 12 s at 12 fps: 144 frames, like a Sora clip's 12 s


# ----------------------------------------------------------------------- helpers


def render(path: Path, seed: str, aspect_ratio: str = "16:9") -> Path:
    path.write_bytes(render_mp4(seed=seed, prompt=f"clip {seed}", aspect_ratio=aspect_ratio,
                                scale=SCALE))
    return path


def with_bframes(src: Path, dst: Path) -> Path:
    """The same pictures re-encoded with B-frames (x264 'medium'): out-of-order decoding,
    negative first dts and an edit list, as many real encoders write."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4") as out:
        vin = inp.streams.video[0]
        stream = out.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = vin.width, vin.height, "yuv420p"
        stream.options = {"preset": "medium", "bf": "3", "crf": "23"}
        for i, frame in enumerate(inp.decode(vin)):
            frame.pts, frame.time_base = i, Fraction(1, 12)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return dst


def other_codec(src: Path, dst: Path) -> Path:
    """Same pictures and size, MPEG-4 Part 2 instead of H.264."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4") as out:
        vin = inp.streams.video[0]
        stream = out.add_stream("mpeg4", rate=12)
        stream.width, stream.height, stream.pix_fmt = vin.width, vin.height, "yuv420p"
        for i, frame in enumerate(inp.decode(vin)):
            frame.pts, frame.time_base = i, Fraction(1, 12)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return dst


def with_audio(src: Path, dst: Path, *, freq: float, codec: str = "aac",
               rate: int = 48_000) -> Path:
    """``src``'s video packets (copied) plus 12 s of a mono sine at ``freq`` Hz."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        aout = out.add_stream(codec, rate=rate)
        aout.layout = "mono"
        step = 1024
        total = 12 * rate
        for first in range(0, total, step):
            n = min(step, total - first)
            samples = array("f", (0.5 * math.sin(2 * math.pi * freq * (first + i) / rate)
                                  for i in range(n)))
            frame = av.AudioFrame(format="flt", layout="mono", samples=n)
            frame.planes[0].update(samples.tobytes())
            frame.sample_rate = rate
            frame.pts, frame.time_base = first, Fraction(1, rate)
            out.mux(aout.encode(frame))
        out.mux(aout.encode(None))
        for packet in inp.demux(vin):
            if packet.dts is None:
                continue
            packet.stream = vout
            out.mux(packet)
    return dst


def decoded(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as container:
        return list(container.decode(video=0))


def image_at(path: Path, index: int) -> Image.Image:
    return decoded(path)[index].to_image()


def diff(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel, 0..255."""
    assert a.size == b.size, (a.size, b.size)
    return sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean) / 3


def packets(path: Path, kind: str) -> list[bytes]:
    with av.open(str(path)) as container:
        streams = container.streams.video if kind == "video" else container.streams.audio
        return [bytes(p) for p in container.demux(streams[0]) if p.size]


def audio(path: Path) -> tuple[int, list[float]]:
    """The first channel, decoded, with its sample rate."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=stream.rate)
        out = array("f")
        for frame in container.decode(stream):
            for chunk in resampler.resample(frame):
                out.frombytes(bytes(chunk.planes[0])[: chunk.samples * 4])
        return stream.rate, list(out)


def frequency(samples: list[float], rate: int) -> float:
    """Zero-crossing estimate of a sine's frequency."""
    crossings = sum(1 for a, b in pairwise(samples) if a < 0 <= b)
    return crossings * rate / len(samples)


def presentation_times(path: Path) -> list[float]:
    return [f.time for f in decoded(path)]


def top_level_boxes(path: Path) -> list[str]:
    data, boxes, i = path.read_bytes(), [], 0
    while i < len(data):
        size, kind = struct.unpack(">I4s", data[i: i + 8])
        if size == 1:
            size = struct.unpack(">Q", data[i + 8: i + 16])[0]
        boxes.append(kind.decode())
        i += size
    return boxes


def assert_continuous(path: Path, seconds: float, fps: float = 12) -> None:
    """Frames strictly increasing in time, no gaps, no overlaps, lasting ``seconds``;
    the index in front (browsers play and seek it while it downloads)."""
    boxes = top_level_boxes(path)
    assert boxes.index("moov") < boxes.index("mdat")
    times = presentation_times(path)
    assert all(b > a for a, b in pairwise(times))
    steps = [b - a for a, b in pairwise(times)]
    assert max(steps) < 1.5 / fps and min(steps) > 0.5 / fps, (min(steps), max(steps))
    assert times[0] == pytest.approx(0, abs=1e-3)
    assert abs(frames.probe(path).duration - seconds) <= 1 / fps + 1e-6
    assert len(times) == round(seconds * fps)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    assert frame_size("16:9", SCALE) == (160, 90), "the tests' geometry assumes 160x90"
    d = tmp_path_factory.mktemp("clips")
    made = {
        "a": render(d / "a.mp4", "a"),
        "b": render(d / "b.mp4", "b"),
        "tall": render(d / "tall.mp4", "tall", "9:16"),
    }
    with av.open(str(made["a"])) as container:  # the emulator's contract, checked once
        stream = container.streams.video[0]
        assert (stream.width, stream.height, stream.frames, stream.average_rate) == (
            160, 90, 144, 12)
    made["a_bf"] = with_bframes(made["a"], d / "a_bf.mp4")
    made["b_bf"] = with_bframes(made["b"], d / "b_bf.mp4")
    made["b_mpeg4"] = other_codec(made["b"], d / "b_mpeg4.mp4")
    made["a_snd"] = with_audio(made["a"], d / "a_snd.mp4", freq=440)
    made["b_snd"] = with_audio(made["b"], d / "b_snd.mp4", freq=880)
    made["b_mp3"] = with_audio(made["b"], d / "b_mp3.mp4", freq=880, codec="libmp3lame",
                               rate=44_100)
    return made


# ------------------------------------------------------------------------- probe


def test_probe_reads_the_emulator_clip(clips: dict[str, Path]) -> None:
    info = frames.probe(clips["a"])
    assert info.duration == pytest.approx(12.0, abs=FRAME)
    assert (info.width, info.height, info.fps, info.codec) == (160, 90, 12.0, "h264")
    assert info.has_audio is False and info.frames == 144
    assert info.aspect_ratio == pytest.approx(16 / 9)
    assert frames.probe(clips["tall"]).aspect_ratio == pytest.approx(9 / 16)
    assert frames.probe(clips["a_snd"]).has_audio is True
    with pytest.raises(AttributeError):
        info.width = 1  # type: ignore[misc]  # frozen


# ------------------------------------------------------------------------ poster


def test_poster_is_a_jpeg_of_the_frame_at_one_second(clips: dict[str, Path]) -> None:
    out = frames.poster(clips["a"])
    assert out == clips["a"].with_name("a.poster.jpg")
    with Image.open(out) as img:
        assert img.format == "JPEG"
        assert img.size == (160, 90)
        assert diff(img, image_at(clips["a"], 12)) < 4  # the frame at 1.0 s, JPEG noise
        assert diff(img, image_at(clips["a"], 60)) > 10  # not some other frame


def test_poster_keeps_the_aspect_ratio_and_max_width(clips: dict[str, Path],
                                                     tmp_path: Path) -> None:
    tall = frames.poster(clips["tall"], tmp_path / "tall.jpg", max_width=45)
    with Image.open(tall) as img:
        assert img.size == (45, 80)
    wide = frames.poster(clips["a_bf"], tmp_path / "wide.jpg", max_width=64, at=5.0)
    with Image.open(wide) as img:
        assert img.size == (64, 36)
        assert diff(img, image_at(clips["a_bf"], 60).resize((64, 36))) < 6


def test_poster_of_a_short_clip_is_its_first_frame(clips: dict[str, Path],
                                                   tmp_path: Path) -> None:
    out = frames.poster(clips["a"], tmp_path / "p.jpg", at=60.0)
    with Image.open(out) as img:
        assert diff(img, image_at(clips["a"], 0)) < 4


def test_poster_is_not_redone_while_fresh(clips: dict[str, Path], tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    video.write_bytes(clips["a"].read_bytes())
    out = frames.poster(video)
    stamp = out.stat().st_mtime_ns
    time.sleep(0.02)
    assert frames.poster(video) == out
    assert out.stat().st_mtime_ns == stamp  # not rewritten
    # A newer video (here: replaced by another clip) makes it stale.
    time.sleep(0.02)
    replacement = tmp_path / "new.mp4"
    replacement.write_bytes(clips["b"].read_bytes())
    os.replace(replacement, video)
    frames.poster(video)
    assert out.stat().st_mtime_ns > stamp
    with Image.open(out) as img:
        assert diff(img, image_at(clips["b"], 12)) < 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4", "v.poster.jpg"]  # no temp


# -------------------------------------------------------------------- last frame


@pytest.mark.parametrize("name", ["a", "a_bf", "tall", "a_snd"])
def test_last_frame_is_the_clips_last_frame(clips: dict[str, Path], name: str) -> None:
    full = decoded(clips[name])
    last = max(full, key=lambda f: f.pts).to_image()
    image = frames.last_frame(clips[name])
    assert image.mode == "RGB" and image.size == last.size
    assert diff(image, last) < 1.0
    assert diff(image, full[-13].to_image()) > 5  # a second earlier is clearly different


def test_last_frame_shrinks_to_max_side(clips: dict[str, Path]) -> None:
    assert frames.last_frame(clips["a"], max_side=64).size == (64, 36)
    assert frames.last_frame(clips["tall"], max_side=64).size == (36, 64)
    assert frames.last_frame(clips["a"], max_side=4000).size == (160, 90)  # never enlarged


def test_last_frame_of_a_truncated_file_is_the_last_decodable(clips: dict[str, Path],
                                                              tmp_path: Path) -> None:
    # The index is in front (faststart): cutting the tail loses frames, not the index.
    data = clips["a"].read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    image = frames.last_frame(cut)
    naive = []  # what a plain decode loop gets before the damaged packet stops it
    with av.open(str(cut)) as container:
        try:
            for frame in container.decode(video=0):
                naive.append(frame.pts)
        except av.FFmpegError:
            pass
    original = decoded(clips["a"])
    distances = [diff(image, frame.to_image()) for frame in original]
    index = distances.index(min(distances))
    assert min(distances) < 1.0  # a clean frame of the clip, not a damaged one
    position = [f.pts for f in original].index(max(naive))
    assert position <= index < 143  # at least as late as the naive loop, before the cut


def test_data_uri_decodes_to_the_clips_aspect_ratio(clips: dict[str, Path]) -> None:
    for name, ratio in (("a", 16 / 9), ("tall", 9 / 16)):
        uri = frames.last_frame_data_uri(clips[name])
        assert uri.startswith("data:image/jpeg;base64,")
        assert len(uri) < 2_000_000
        with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as img:
            assert img.format == "JPEG"
            assert img.width / img.height == pytest.approx(ratio, rel=0.02)
            assert diff(img, frames.last_frame(clips[name])) < 4


def test_data_uri_stays_under_the_cap(clips: dict[str, Path],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    full = len(frames.last_frame_data_uri(clips["a"], quality=100))
    monkeypatch.setattr(frames, "MAX_DATA_URI_CHARS", full // 3)
    uri = frames.last_frame_data_uri(clips["a"], quality=100)
    assert len(uri) <= full // 3


# ------------------------------------------------------------------------ stitch


def test_stitch_copies_matching_clips(clips: dict[str, Path], tmp_path: Path,
                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "sora_widgets.media.frames")
    out = frames.stitch([clips["a"], clips["b"]], tmp_path / "film.mp4")
    assert out == tmp_path / "film.mp4"
    assert_continuous(out, 24.0)
    # Remuxed: the compressed packets are the inputs' own bytes, in order.
    assert packets(out, "video") == packets(clips["a"], "video") + packets(clips["b"], "video")
    assert "video copied" in caplog.text
    # And the pictures: the 145th frame is b's first, bit for bit.
    film = decoded(out)
    assert diff(film[144].to_image(), image_at(clips["b"], 0)) == 0
    assert not frames.probe(out).has_audio


def test_stitch_copies_clips_with_b_frames(clips: dict[str, Path], tmp_path: Path) -> None:
    out = frames.stitch([clips["a_bf"], clips["b_bf"], clips["a_bf"]], tmp_path / "bf.mp4")
    assert_continuous(out, 36.0)
    assert packets(out, "video") == (packets(clips["a_bf"], "video")
                                     + packets(clips["b_bf"], "video")
                                     + packets(clips["a_bf"], "video"))
    film = decoded(out)
    assert diff(film[144].to_image(), image_at(clips["b_bf"], 0)) == 0
    assert diff(film[-1].to_image(), image_at(clips["a_bf"], 143)) == 0


def test_stitch_reencodes_other_sizes_letterboxed(clips: dict[str, Path],
                                                  tmp_path: Path) -> None:
    out = frames.stitch([clips["a"], clips["tall"]], tmp_path / "mixed.mp4")
    info = frames.probe(out)
    assert (info.width, info.height, info.codec) == (160, 90, "h264")
    assert_continuous(out, 24.0)
    film = decoded(out)
    assert film[0].format.name == "yuv420p"
    assert diff(film[10].to_image(), image_at(clips["a"], 10)) < 4
    # The tall clip sits in the middle, black bars left and right.
    frame = film[144 + 30].to_image()
    left = frame.crop((0, 0, 50, 90))
    middle = frame.crop((60, 0, 100, 90))
    assert max(ImageStat.Stat(left).mean) < 20
    assert max(ImageStat.Stat(middle).mean) > 30
    expected = image_at(clips["tall"], 30).resize((51, 90))
    assert diff(frame.crop((55, 0, 106, 90)), expected) < 12


def test_stitch_reencodes_another_codec(clips: dict[str, Path], tmp_path: Path) -> None:
    out = frames.stitch([clips["a"], clips["b_mpeg4"]], tmp_path / "codec.mp4")
    assert frames.probe(out).codec == "h264"
    assert_continuous(out, 24.0)


def test_reencode_flag(clips: dict[str, Path], tmp_path: Path) -> None:
    forced = frames.stitch([clips["a"], clips["b"]], tmp_path / "forced.mp4", reencode=True)
    assert_continuous(forced, 24.0)
    assert packets(forced, "video") != packets(clips["a"], "video") + packets(clips["b"], "video")
    assert diff(decoded(forced)[150].to_image(), image_at(clips["b"], 6)) < 4
    with pytest.raises(ValueError, match="re-encod"):
        frames.stitch([clips["a"], clips["tall"]], tmp_path / "no.mp4", reencode=False)
    assert not (tmp_path / "no.mp4").exists()


def test_stitch_keeps_matching_audio_by_copying(clips: dict[str, Path],
                                                tmp_path: Path) -> None:
    out = frames.stitch([clips["a_snd"], clips["b_snd"]], tmp_path / "sound.mp4")
    assert frames.probe(out).has_audio
    assert_continuous(out, 24.0)
    assert packets(out, "video") == (packets(clips["a_snd"], "video")
                                     + packets(clips["b_snd"], "video"))
    copied = packets(out, "audio")
    inputs = packets(clips["a_snd"], "audio") + packets(clips["b_snd"], "audio")
    assert set(copied) <= set(inputs) and len(copied) >= len(inputs) - 2  # tails trimmed
    rate, samples = audio(out)
    assert len(samples) / rate == pytest.approx(24.0, abs=0.1)
    assert frequency(samples[rate: 11 * rate], rate) == pytest.approx(440, rel=0.02)
    assert frequency(samples[13 * rate: 23 * rate], rate) == pytest.approx(880, rel=0.02)


def test_stitch_reencodes_audio_of_other_codecs(clips: dict[str, Path],
                                                tmp_path: Path) -> None:
    out = frames.stitch([clips["a_snd"], clips["b_mp3"]], tmp_path / "mixed_sound.mp4")
    assert packets(out, "video") == (packets(clips["a_snd"], "video")
                                     + packets(clips["b_mp3"], "video"))  # video still copied
    with av.open(str(out)) as container:
        assert container.streams.audio[0].codec_context.name == "aac"
    rate, samples = audio(out)
    assert rate == 48_000
    assert len(samples) / rate == pytest.approx(24.0, abs=0.1)
    assert frequency(samples[rate: 11 * rate], rate) == pytest.approx(440, rel=0.02)
    assert frequency(samples[13 * rate: 23 * rate], rate) == pytest.approx(880, rel=0.02)


def test_stitch_reencoded_video_keeps_audio(clips: dict[str, Path], tmp_path: Path) -> None:
    out = frames.stitch([clips["a_snd"], clips["b_snd"]], tmp_path / "both.mp4", reencode=True)
    assert_continuous(out, 24.0)
    rate, samples = audio(out)
    assert len(samples) / rate == pytest.approx(24.0, abs=0.1)
    assert frequency(samples[13 * rate: 23 * rate], rate) == pytest.approx(880, rel=0.02)


def test_stitch_drops_audio_missing_from_a_clip(clips: dict[str, Path], tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    out = frames.stitch([clips["a_snd"], clips["b"]], tmp_path / "half.mp4")
    assert not frames.probe(out).has_audio
    assert_continuous(out, 24.0)
    assert "dropping the audio: b.mp4 has none" in caplog.text


def test_stitch_errors(clips: dict[str, Path], tmp_path: Path) -> None:
    target = tmp_path / "out" / "film.mp4"
    with pytest.raises(ValueError, match="at least one"):
        frames.stitch([], target)
    with pytest.raises(TypeError):
        frames.stitch(str(clips["a"]), target)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        frames.stitch([clips["a"], tmp_path / "missing.mp4"], target)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(SoraError, match=r"cannot read junk\.mp4"):
        frames.stitch([clips["a"], junk], target)
    with pytest.raises(SoraError, match=r"cannot read junk\.mp4"):
        frames.probe(junk)
    with pytest.raises(SoraError, match=r"cannot read junk\.mp4"):
        frames.last_frame(junk)
    with pytest.raises(FileNotFoundError):
        frames.poster(tmp_path / "missing.mp4")
    assert not target.exists()
    assert not target.parent.exists() or not any(target.parent.iterdir())  # no temp left


def test_stitch_replaces_the_target_atomically(clips: dict[str, Path], tmp_path: Path) -> None:
    target = tmp_path / "film.mp4"
    target.write_bytes(b"old")
    frames.stitch([clips["a"]], target)
    assert_continuous(target, 12.0)
    assert [p.name for p in tmp_path.iterdir()] == ["film.mp4"]


def test_importing_frames_loads_no_media_or_ui_library() -> None:
    code = ("import sys, sora_widgets; before = set(sys.modules); "
            "import sora_widgets.media.frames; "
            "new = set(sys.modules) - before; "
            "print(sorted(m for m in new if m.split('.')[0] in "
            "('av', 'PIL', 'IPython', 'ipywidgets')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
