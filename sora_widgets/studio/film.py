"""One film of several clips: :func:`stitch` (``sw.stitch``), and the last step of a
storyboard."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sora_widgets.core.errors import SoraError, ValidationError
from sora_widgets.core.lifecycle import Status
from sora_widgets.engine.job import Job

__all__ = ["stitch"]


def stitch(jobs: Sequence[Job | str], path: str | Path, *,
           reencode: bool | None = None) -> Path:
    """One mp4 of the jobs' clips in order (their saved videos; fetched first if needed):
    copied without re-encoding when the clips match, re-encoded otherwise; audio kept."""
    from sora_widgets.media.frames import stitch as join
    from sora_widgets.studio.studio import default_studio

    videos = []
    for index, item in enumerate(jobs):
        job = default_studio().get(item) if isinstance(item, str) else item
        if job.status != Status.COMPLETED:
            raise SoraError(f"clip {index + 1} (job {job.id or job.local_id}) is "
                            f"{job.status}: only completed clips can be stitched")
        videos.append(job.download())
    if not videos:
        raise ValidationError("stitch() needs at least one job", field="jobs")
    return join(videos, Path(path).expanduser())
