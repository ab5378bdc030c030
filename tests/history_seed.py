"""A journal with many finished jobs, as earlier sessions leave it (tests and benchmarks).

Each job is a real journal row, claimed through the journal's own atomic step and settled
through its own state writes, with a real H.264 video and its poster on disk (one clip per
aspect ratio, rendered by the emulator's renderer and hard-linked per job, so 2,000 jobs
cost two encodes). Nothing is sent anywhere: these are jobs of the emulator backend.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable, Collection
from pathlib import Path

from sora_widgets.core.lifecycle import Phase, RelayStatus
from sora_widgets.core.models import VideoRequest
from sora_widgets.emulator.video import render_mp4
from sora_widgets.engine.job import poster_of, video_file_name
from sora_widgets.journal import open_journal
from sora_widgets.media.frames import poster

__all__ = ["seed_history"]


def _source(home: Path, ratio: str) -> Path:
    """One real clip of ``ratio`` (and its poster), rendered once per home."""
    folder = home / "seed-sources"
    folder.mkdir(parents=True, exist_ok=True)
    video = folder / f"clip-{ratio.replace(':', 'x')}.mp4"
    if not video.exists():
        video.write_bytes(render_mp4(seed=ratio, prompt="a seeded clip", aspect_ratio=ratio,
                                     seconds=2))
        poster(video, poster_of(video))
    return video


def _link(source: Path, target: Path) -> None:
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def seed_history(home: Path, count: int, *, prompt: Callable[[int], str],
                 ratio: Callable[[int], str] = lambda i: "16:9",
                 starred: Collection[int] = (), start: float | None = None) -> list[str]:
    """``count`` completed jobs in ``home``'s journal, job ``i`` created at ``start + i``
    (so the last is the newest); their local ids, oldest first."""
    journal = open_journal(str(home / "journal.sqlite3"))
    videos = home / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    start = time.time() - count - 10 if start is None else start
    requests = [VideoRequest.create(prompt(i), aspect_ratio=ratio(i)) for i in range(count)]
    claims = journal.claim_many(items=[(r, 1, 0.0) for r in requests], backend="emulator",
                                emulator=True, session="seeded-earlier", force=True,
                                new_ids=[uuid.uuid4().hex for _ in requests])
    ids = []
    for i, (request, claim) in enumerate(zip(requests, claims, strict=True)):
        (record,) = claim.created
        task_id = f"seed_{uuid.uuid4().hex[:12]}"
        source = _source(home, request.aspect_ratio)
        target = videos / video_file_name(task_id)
        _link(source, target)
        _link(poster_of(source), poster_of(target))
        state = record.state.evolve(phase=Phase.SETTLED, task_id=task_id,
                                    relay_status=RelayStatus.COMPLETED,
                                    relay_word=RelayStatus.COMPLETED.value, progress=100,
                                    local_path=str(target), completed_at=start + i + 1)
        journal.save_state(record.local_id, state, record.state)
        journal.update(record.local_id, created_at=start + i, starred=int(i in starred))
        ids.append(record.local_id)
    journal.close()
    return ids
