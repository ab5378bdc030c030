"""One ``publish`` for every UI: a saved file next to the notebook, as the src a player uses.

The magic, the storyboard view and Compare each copied a video (or a poster) next to the
notebook with their own small helper; this is the one they share. ``media.publish`` does
the file work (hard link or copy under ``media_dir``); this adds the UI's rules: a missing
file or a folder that cannot be written is no src (the caller falls back to the relay's
link and says why), ``embed`` inlines the file as base64 instead, and only a URL that
``render.safe_url`` accepts is ever returned.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sora_widgets.media import publish as media

__all__ = ["publish"]

log = logging.getLogger("sora_widgets.publish")


def publish(path: Path | None, media_dir: str = media.DEFAULT_MEDIA_DIR, *,
            root: Path | None = None, embed: bool = False) -> str | None:
    """The src of ``path`` for a notebook output: its copy under ``root/media_dir``
    (default: the kernel's working directory, the notebook's folder), or with ``embed``
    a ``data:`` URI; None when there is no such file or it could not be published."""
    if path is None or not path.is_file():
        return None
    try:
        src = media.data_uri(path) if embed else media.publish_video(path, media_dir, root)
    except (OSError, ValueError) as exc:
        log.warning("could not publish %s next to the notebook: %s", path.name, exc)
        return None
    return src
