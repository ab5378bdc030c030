"""A continuation's request, built once: ``Studio.continue_from`` and storyboards (which
quote a shot before it is sent) must build the very same request, or the cache and the
quote disagree with what is paid.

The next shot keeps the parent's aspect ratio (and its size, on the same wire style), takes
the parent's model unless another is given, and starts from the parent's last frame: a
``data:image/jpeg`` URI, or the https URL that ``SORA_IMAGE_UPLOADER`` returns for the
still (a relay fetches it; a cleartext ``http://`` link is refused, as the README says,
unless it names this machine's loopback, which no wire carries: a local uploader for the
embedded emulator).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Protocol

from sora_widgets.core.errors import ValidationError
from sora_widgets.core.models import VideoRequest
from sora_widgets.core.settings import is_loopback_url

__all__ = ["Parent", "continuation_request", "first_frame_image"]


class Parent(Protocol):
    """What a continuation needs of the job it continues."""

    @property
    def request(self) -> VideoRequest: ...

    @property
    def aspect_ratio(self) -> str: ...


def continuation_request(parent: Parent, prompt: str, *, image: str, style: str,
                         model: str | None = None) -> VideoRequest:
    """The request of the shot after ``parent``, for the wire style in force."""
    same_style = parent.request.style == style
    return VideoRequest.create(prompt, aspect_ratio=parent.aspect_ratio, image=image,
                               model=model or parent.request.model,
                               size=parent.request.size if same_style else None, style=style)


def first_frame_image(video: Path, uploader: str = "") -> str:
    """The clip's last frame as the next job's image: a data URI, or the https URL the
    uploader (``module:function``, called with the JPEG's path) returns."""
    from sora_widgets.media.frames import last_frame, last_frame_data_uri

    if not uploader:
        return last_frame_data_uri(video)
    module_name, _, function_name = uploader.partition(":")
    if not module_name or not function_name:
        raise ValidationError("SORA_IMAGE_UPLOADER must be 'module:function'",
                              field="SORA_IMAGE_UPLOADER")
    upload = getattr(importlib.import_module(module_name), function_name)
    still = video.with_name(video.stem + ".last.jpg")
    last_frame(video).save(still, "JPEG", quality=90)
    url = upload(still)
    if not isinstance(url, str) or not (url.startswith("https://") or (
            url.startswith("http://") and is_loopback_url(url))):
        shown = url.partition(":")[0][:10] + ":" if isinstance(url, str) else type(url).__name__
        raise ValidationError(f"SORA_IMAGE_UPLOADER returned no https URL ({shown}): a "
                              "relay is sent https links only; nothing was sent",
                              field="SORA_IMAGE_UPLOADER")
    return url
