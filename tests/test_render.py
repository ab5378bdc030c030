"""HTML of jobs (render.py) and publishing next to the notebook (media.py): no network."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from sora_widgets.core.models import VideoRequest
from sora_widgets.engine.job import Backend, Job
from sora_widgets.journal import Spend
from sora_widgets.journal import SqliteJournal as Journal
from sora_widgets.media import publish as media
from sora_widgets.ui import cards, render

EVIL = "<script>alert('x')</script> & \"quotes\""
SRC = re.compile(r"<video[^>]* src='([^']*)'")


@pytest.fixture
def make_job(tmp_path: Path) -> Any:
    journal = Journal(tmp_path / "journal.sqlite3")

    def make(prompt: str | None = "a fox", *, ratio: str = "16:9", emulator: bool = False,
             **traits: Any) -> Job:
        request = VideoRequest.create(prompt, aspect_ratio=ratio,
                                      image=None if prompt else "https://example.com/i.png")
        backend = Backend("http://127.0.0.1:9", None, emulator=emulator)
        traits.setdefault("local_id", "0123456789abcdef")
        traits.setdefault("created_at", 1_700_000_000.0)
        traits.setdefault("price_usd", 0.90)
        return Job(request, backend, journal, tmp_path / "videos", **traits)

    return make


@pytest.fixture
def saved_video(tmp_path: Path) -> Path:
    path = tmp_path / "videos" / "v_1.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"x" * 2000)
    return path


def test_every_user_and_server_string_is_escaped(make_job: Any) -> None:
    job = make_job(EVIL, id="v_<u>", status="failed", error=EVIL, error_code="500",
                   poll_error=EVIL, video_url="https://e.com/a.mp4?x=<y>")
    pieces = [render.error_html(job), render.status_html(job), render.jobs_table_html([job]),
              render.video_html(job, "https://e.com/v.mp4", note=EVIL)]
    job.status = "in_progress"
    pieces.append(render.job_html(job))
    for piece in pieces:
        assert "<script>" not in piece and "<u>" not in piece
        assert "&lt;script&gt;" in piece


@pytest.mark.parametrize(("url", "ok"), [
    ("https://cdn.example.com/v.mp4?sig=1", True),
    ("http://127.0.0.1:8000/videos/v.mp4", True),
    ("sora_videos/v_1.mp4", True),
    ("data:video/mp4;base64,AAAA", True),
    ("javascript:alert(1)", False),
    ("data:text/html;base64,PHNjcmlwdD4=", False),
    ("/etc/passwd", False),
    ("../secret.mp4", False),
    ("file:///tmp/v.mp4", False),
    ("https://e.com/\nx", False),
    ("", False),
])
def test_safe_url(url: str, ok: bool) -> None:
    assert (render.safe_url(url) is not None) is ok


def test_unsafe_src_is_never_embedded(make_job: Any) -> None:
    job = make_job(status="completed", id="v_1")
    html = render.video_html(job, "javascript:alert(1)")
    assert "javascript:" not in html and "not a safe URL" in html


def test_non_vip_403_and_unknown_and_failure_words(make_job: Any) -> None:
    denied = make_job(status="failed", error="key not allowed", error_code="403")
    assert "this key is not in the VIP group" in render.error_html(denied)
    assert "this key is not in the VIP group" in render.job_text(denied)
    unknown = make_job(status="unknown", charge="maybe", error="answer lost")
    assert "may have been charged" in render.error_html(unknown)
    assert "may have been charged $0.90" in render.job_text(unknown)
    failed = make_job(status="failed", error="content policy", error_code="policy")
    html = render.error_html(failed)
    assert "Generation failed" in html and "content policy" in html and "sora-error" in html


def test_emulator_badge_in_every_state(make_job: Any, saved_video: Path) -> None:
    for status in ("submitting", "queued", "in_progress", "failed", "unknown"):
        job = make_job(emulator=True, status=status, error="x")
        assert render.EMULATOR_BADGE in render.job_html(job)
        assert render.EMULATOR_BADGE in render.job_text(job)
    done = make_job(emulator=True, status="completed", id="v_1", local_path=saved_video)
    assert render.EMULATOR_BADGE in render.video_html(done, "sora_videos/v_1.mp4")
    assert render.EMULATOR_BADGE in render.jobs_table_html([done])
    # A table of many emulator jobs says it once, not on every row.
    assert render.jobs_table_html([done, done, done]).count(render.EMULATOR_BADGE) == 1


def test_money_lines(make_job: Any) -> None:
    assert render.money_line(make_job(status="submitting")) == "$0.90 at submit"
    charged = make_job(status="completed", charge="charged", cost_usd=0.90)
    assert render.money_line(charged) == "$0.90"
    charged.reused = True
    assert render.money_line(charged) == "reused — no new charge"
    assert render.money_line(charged, reused=False) == "$0.90"     # what this call says
    free = make_job(status="completed", emulator=True)
    assert render.money_line(free) == render.EMULATOR_BADGE
    assert render.money_line(free, badge=False) == ""                # said once elsewhere
    assert render.money_line(free, reused=True, badge=False) == render.REUSED_WORDS
    maybe = make_job(status="unknown", charge="maybe", reused=True)
    assert render.money_line(maybe).startswith(render.REUSED_WORDS)
    assert "may have been charged $0.90" in render.money_line(maybe)


def test_repr_html_writes_nothing_and_plays_a_published_copy(
        make_job: Any, saved_video: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Rendering is pure (issue 11): a repr never writes next to the notebook; once a UI
    has published the copy there, the repr plays it."""
    notebook_dir = tmp_path / "nb"
    notebook_dir.mkdir()
    monkeypatch.chdir(notebook_dir)
    job = make_job(status="completed", id="v_1", local_path=saved_video, ratio="9:16",
                   video_url="https://relay.example/expiring.mp4")
    html = job._repr_html_()
    assert SRC.findall(html) == ["https://relay.example/expiring.mp4"]
    assert "may expire" in html
    assert list(notebook_dir.iterdir()) == []          # nothing written
    assert media.publish_video(saved_video) == "sora_videos/v_1.mp4"
    html = job._repr_html_()
    (src,) = SRC.findall(html)
    assert src == "sora_videos/v_1.mp4"
    assert (notebook_dir / src).read_bytes() == saved_video.read_bytes()
    assert "width='270' height='480'" in html and "download mp4" in html


def test_completed_without_a_saved_copy_plays_the_link_and_says_so(make_job: Any) -> None:
    job = make_job(status="completed", id="v_2", video_url="https://relay.example/v.mp4")
    html = render.job_html(job)
    assert SRC.findall(html) == ["https://relay.example/v.mp4"]
    assert "may expire" in html


def test_status_html_bar_and_eta(make_job: Any) -> None:
    job = make_job(status="in_progress", progress=42, eta_seconds=75.0)
    start = job.created_at + 61
    html = render.status_html(job, now=start)
    assert "42%" in html and "1:01" in html and "about 1:15 left" in html
    assert "<progress" in html and "<progress" not in render.status_html(job, bar=False)
    # Between polls the estimate counts down with the clock (a UI ticks every second)...
    later = render.status_html(job, now=start + 10)
    assert "1:11" in later and "about 1:05 left" in later
    assert "finishing…" in render.status_html(job, now=start + 80)
    # ...and a new estimate from the engine starts a new countdown.
    job.eta_seconds = 30.0
    assert "about 30s left" in render.status_html(job, now=start + 81)


def test_no_estimate_says_estimating(make_job: Any) -> None:
    for status in ("queued", "in_progress"):
        job = make_job(status=status, progress=3)
        assert job.eta_seconds is None
        assert "estimating…" in render.status_html(job, now=job.created_at + 2)
        assert "left" not in render.phase_words(job, now=job.created_at + 2)
    done = make_job(status="completed", completed_at=1_700_000_017.0)
    assert "estimating" not in render.status_html(done) and "completed in 17s" in \
        render.status_html(done)


def test_emulator_badge_once_in_a_grid_and_reuse_words(make_job: Any,
                                                      saved_video: Path) -> None:
    jobs = [make_job(emulator=True, status="completed", id=f"v_{i}", local_path=saved_video,
                     local_id=f"{i:016d}") for i in range(3)]
    tiles = [render.job_html(j, "sora_videos/v.mp4", badge=False) for j in jobs]
    grid = render.grid_html(tiles, header=render.EMULATOR_BADGE)
    assert grid.count(render.EMULATOR_BADGE) == 1
    assert "repeat(3, minmax(0, 1fr))" in grid                 # 3 in one row: no hole
    assert [render.grid_columns(n) for n in range(1, 8)] == [1, 2, 3, 2, 3, 3, 3]
    reused = render.job_html(jobs[0], "sora_videos/v.mp4", reused=True)
    assert "sora-reused" in reused and render.REUSED_WORDS in reused
    assert render.EMULATOR_BADGE not in reused                 # reuse says what matters


def test_grid_table_spend_and_sizes(make_job: Any) -> None:
    grid = render.grid_html(["<p>a</p>", "<p>b</p>"])
    assert grid.count("sora-cell") == 2 and "repeat(2, minmax(0, 1fr))" in grid
    job = make_job(status="completed", id="v_9", local_id="abc")
    table = render.jobs_table_html([job], {"abc": "sora_videos/v_9.mp4"})
    assert SRC.findall(table) == ["sora_videos/v_9.mp4"]
    assert "No jobs yet" in render.jobs_table_html([])
    spend = render.spend_html(Spend(1.8, 0.9, 0.0, 3), Spend(2.7, 0.9, 0.0, 4), 5.0,
                              emulator=True)
    assert "$1.80" in spend and "of a $5.00 budget" in spend and "may have been charged" in spend
    assert render.EMULATOR_BADGE in spend
    assert render.size_text(2048) == "2 KB" and render.size_text(3 * 1024 * 1024) == "3.0 MB"


def test_publish_video_links_once_and_refuses_odd_folders(saved_video: Path,
                                                          tmp_path: Path) -> None:
    root = tmp_path / "nb"
    first = media.publish_video(saved_video, "clips/sora", root)
    assert first == "clips/sora/v_1.mp4"
    assert media.published(saved_video, "clips/sora", root) == first
    target = root / first
    assert target.read_bytes() == saved_video.read_bytes()
    inode = target.stat().st_ino
    assert media.publish_video(saved_video, "clips/sora", root) == first
    assert target.stat().st_ino == inode  # already there: not copied again
    assert os.listdir(target.parent) == [target.name]  # no temp files left
    for bad in ("/abs", "../up", "a/../b", "", "c:/x", "./x"):
        with pytest.raises(ValueError):
            media.check_media_dir(bad)
    assert media.data_uri(saved_video).startswith("data:video/mp4;base64,AAAAGGZ0")


def test_restart_message_and_panel_snapshot(make_job: Any, saved_video: Path) -> None:
    restart = cards.restart_html("magic")
    assert "kernel restarted" in restart and "%sora resume" in restart
    assert ".sora-live.jupyter-widgets-disconnected .sora-restart" in restart
    assert "run its cell again" in cards.restart_html("panel")
    done = make_job(status="completed", id="v_1", local_path=saved_video, prompt=EVIL)
    failed = make_job(status="failed", id="v_2", error="policy", error_code="policy")
    tiles = [cards.snapshot_tile_html(done, "sora_videos/v_1.mp4"),
             cards.snapshot_tile_html(failed, None)]
    html = cards.panel_snapshot_html("abc123", tiles, running=1, emulator=True)
    assert SRC.findall(html) == ["sora_videos/v_1.mp4"]
    assert "sora-error" in html and "<script>alert" not in html
    assert "body:has(.sora-live-abc123) .sora-snapshot-abc123" in html
    assert "2 finished jobs" in html and "1 still running" in html
    assert html.count(render.EMULATOR_BADGE) == 1
    with pytest.raises(ValueError):
        cards.panel_snapshot_html("x{} body", [])


def test_a_first_frame_image_is_never_silent(make_job: Any) -> None:
    """Issue 22 (first hour): an accepted image URL shows in every output of the job."""
    job = make_job(None, status="in_progress", progress=10)    # image only
    for html in (render.status_html(job), render.job_html(job)):
        assert ("first frame: <a class='sora-first-frame' href='https://example.com/i.png'"
                in html), html
        assert ">example.com/i.png</a>" in html
    failed = make_job(None, status="failed", error="boom")
    assert "sora-first-frame" in render.error_html(failed)
    assert "first frame: https://example.com/i.png" in render.job_text(job)
    assert "first frame" not in render.job_html(make_job("a fox", status="queued"))
    # The panel's card (and its saved snapshot tile) links the image too, not just "an image".
    header = cards.card_header_html(job)
    assert "class='sora-first-frame' href='https://example.com/i.png'" in header, header
    assert "sora-first-frame" not in cards.card_header_html(make_job("a fox"))
