"""Issue 21 item 12: hostile or huge mp4s from a relay, fed to posters, last frames and
``stitch`` (PyAV/FFmpeg parse untrusted data). Each yields a clear ``SoraError`` naming the
file, or a capped result, quickly: never a hang or a huge allocation.

"Quickly" is a generous deadline (a busy 2-core machine), never a speed claim. Memory is
read from the process's peak RSS (FFmpeg's allocations are outside tracemalloc): a
12000x12000 picture is 216 MB a frame as YUV and twice that as RGB.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from sora_widgets.core.errors import SoraError
from sora_widgets.media import frames
from sora_widgets.media.clips import MediaLimits

from .hostile_mp4 import claiming, random_mp4, tiny_clip, truncated

#: Seconds any one hostile file may take, with a wide margin for a loaded machine.
DEADLINE = 20.0
MB = 1024 * 1024


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_clip(tmp_path_factory.mktemp("hostile") / "clip.mp4")


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@pytest.fixture
def bounded() -> Iterator[Callable[[Callable[[], Any]], Any]]:
    """``bounded(action)``: run it, check it ended in time and grew the peak RSS < 150 MB."""

    def run(action: Callable[[], Any]) -> Any:
        before, started = _peak_rss(), time.monotonic()
        try:
            return action()
        finally:
            elapsed = time.monotonic() - started
            grown = _peak_rss() - before
            assert elapsed < DEADLINE, f"took {elapsed:.1f} s"
            assert grown < 150 * MB, f"peak memory grew {grown / MB:.0f} MB"

    yield run


READERS: dict[str, Callable[[Path, Path], Any]] = {
    "poster": lambda video, tmp: frames.poster(video, tmp / "poster.jpg"),
    "last_frame": lambda video, tmp: frames.last_frame(video),
    "stitch": lambda video, tmp: frames.stitch([video, video], tmp / "film.mp4"),
    "probe": lambda video, tmp: frames.probe(video),
}


@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize("size", [12000, 100000])
def test_a_clip_claiming_an_absurd_picture_is_refused_before_decoding(
        clip: Path, tmp_path: Path, reader: str, size: int,
        bounded: Callable[[Callable[[], Any]], Any]) -> None:
    """FFmpeg itself refuses 100000x100000; 12000x12000 it accepts and would decode (each
    frame a 216 MB allocation). Both are refused from the headers, by name."""
    hostile = claiming(clip, tmp_path / "huge.mp4", size, size)
    with pytest.raises(SoraError, match=r"cannot read huge\.mp4: .*(picture|size)"):
        bounded(lambda: READERS[reader](hostile, tmp_path))
    assert not (tmp_path / "film.mp4").exists() and not (tmp_path / "poster.jpg").exists()


@pytest.mark.parametrize("reader", sorted(READERS))
def test_random_bytes_with_an_mp4_header_are_a_clear_error(
        tmp_path: Path, reader: str, bounded: Callable[[Callable[[], Any]], Any]) -> None:
    hostile = random_mp4(tmp_path / "noise.mp4")
    with pytest.raises(SoraError, match=r"cannot read noise\.mp4"):
        bounded(lambda: READERS[reader](hostile, tmp_path))
    assert [p.name for p in tmp_path.iterdir()] == ["noise.mp4"]     # no temp file left


@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.95])
def test_a_truncated_mp4_is_a_clear_error_or_a_capped_result(
        clip: Path, tmp_path: Path, reader: str, fraction: float,
        bounded: Callable[[Callable[[], Any]], Any]) -> None:
    """The index (moov) comes last, so a cut file has none: an error naming the file."""
    hostile = truncated(clip, tmp_path / "cut.mp4", fraction)
    with pytest.raises(SoraError, match=r"cannot read cut\.mp4"):
        bounded(lambda: READERS[reader](hostile, tmp_path))


def test_a_truncated_faststart_clip_gives_its_last_decodable_frame(
        tmp_path: Path, bounded: Callable[[Callable[[], Any]], Any]) -> None:
    """With the index first (faststart, as the emulator writes), a cut file still plays
    up to the cut: the last frame that decodes is a capped result, not an error."""
    from sora_widgets.emulator.video import render_mp4

    whole = tmp_path / "whole.mp4"
    whole.write_bytes(render_mp4(seed="cut", prompt="a cut clip", aspect_ratio="16:9",
                                 scale=0.125))
    hostile = truncated(whole, tmp_path / "cut.mp4", 0.6)
    try:
        image = bounded(lambda: frames.last_frame(hostile))
    except SoraError as exc:
        assert "cut.mp4" in str(exc)
    else:
        assert isinstance(image, Image.Image) and image.width > 0
    poster = bounded(lambda: frames.poster(hostile, tmp_path / "cut.jpg"))
    assert poster.stat().st_size > 0


def test_a_very_long_clip_is_refused_by_stitch_before_any_packet_is_read(
        tmp_path: Path, bounded: Callable[[Callable[[], Any]], Any]) -> None:
    """400 s (one frame a second): longer than the 300 s a clip may have. A poster and a
    last frame only seek, so they still come back quickly."""
    long = tiny_clip(tmp_path / "long.mp4", frames=400, fps=1)
    with pytest.raises(SoraError, match=r"cannot join long\.mp4: it claims 400 s"):
        bounded(lambda: frames.stitch([long], tmp_path / "film.mp4"))
    assert not (tmp_path / "film.mp4").exists()
    assert bounded(lambda: frames.last_frame(long)).size == (64, 64)
    assert bounded(lambda: frames.poster(long, tmp_path / "p.jpg")).exists()


def test_frames_decoded_from_one_clip_are_capped(
        tmp_path: Path, bounded: Callable[[Callable[[], Any]], Any]) -> None:
    """A poster far into a clip decodes from the keyframe before it: past ``max_frames``
    that is stopped; stitch refuses a clip that claims more frames before reading it."""
    long = tiny_clip(tmp_path / "long.mp4", frames=400, fps=1)
    limits = MediaLimits(max_frames=20)
    with pytest.raises(SoraError, match=r"cannot read long\.mp4: more than 20 frames"):
        bounded(lambda: frames.poster(long, tmp_path / "p.jpg", at=200, limits=limits))
    with pytest.raises(SoraError, match=r"claims 400 s \(400 frames\), more than the "
                                        r"1000 s or 20 frames"):
        bounded(lambda: frames.stitch([long], tmp_path / "film.mp4",
                                      limits=MediaLimits(max_frames=20, max_seconds=1000)))


def test_decoding_has_a_deadline(clip: Path, tmp_path: Path) -> None:
    """No time at all to decode: the first step past the deadline stops the work."""
    with pytest.raises(SoraError, match=r"decoding took longer than 0 s"):
        frames.last_frame(clip, limits=MediaLimits(decode_seconds=0.0))


def test_a_stitched_film_stops_at_its_size_cap_and_leaves_no_file(
        clip: Path, tmp_path: Path) -> None:
    with pytest.raises(SoraError, match=r"film\.mp4 would pass"):
        frames.stitch([clip, clip], tmp_path / "film.mp4",
                      limits=MediaLimits(max_output_bytes=2000))
    assert list(tmp_path.iterdir()) == []


def test_a_normal_clip_is_within_every_bound(clip: Path, tmp_path: Path) -> None:
    assert frames.last_frame(clip).size == (64, 64)
    film = frames.stitch([clip, clip], tmp_path / "film.mp4")
    assert frames.probe(film).frames == 48


def test_sound_held_for_one_clip_is_capped(clip: Path, tmp_path: Path) -> None:
    """Re-encoding audio holds a clip's decoded sound: a file claiming hours of 8-channel
    192 kHz sound would be gigabytes, so the samples held are capped too."""
    from .test_frames import with_audio

    aac = with_audio(clip, tmp_path / "aac.mp4", freq=440)
    mp3 = with_audio(clip, tmp_path / "mp3.mp4", freq=880, codec="libmp3lame", rate=44_100)
    with pytest.raises(SoraError, match=r"more than 1000 audio samples"):
        frames.stitch([aac, mp3], tmp_path / "film.mp4",
                      limits=MediaLimits(max_audio_samples=1000))
    assert not (tmp_path / "film.mp4").exists()
    film = frames.stitch([aac, mp3], tmp_path / "film.mp4")
    assert frames.probe(film).has_audio
