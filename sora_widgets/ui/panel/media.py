"""Videos and posters over the widget's own messages, for hosts that serve no files.

JupyterLab and Notebook 7 load a published video (``sora_videos/...`` next to the notebook)
through their ``/files/`` route; marimo and other hosts of anywidget have no such route, so
the front end asks the kernel for the bytes and plays them from a ``blob:`` URL. Only files
inside the published media folder are ever read (resolved, symlinks followed): a hostile
front end cannot ask for ``~/.ssh``.
"""

from __future__ import annotations

import logging
from pathlib import Path

__all__ = ["CHUNK_BYTES", "MEDIA_SUFFIXES", "MediaServer"]

log = logging.getLogger("sora_widgets.ui.panel.media")

#: One message's buffer: small enough for every host's websocket frame limit.
CHUNK_BYTES = 1 << 21
MEDIA_SUFFIXES = frozenset({".mp4", ".webm", ".jpg", ".jpeg", ".png", ".webp"})
#: The largest file sent this way (a 1080p clip is a few tens of MB).
MAX_BYTES = 512 << 20


class MediaServer:
    """Reads published media for the front end: ``root / media_dir`` and nothing else."""

    def __init__(self, root: Path, media_dir: str) -> None:
        self.root = root
        self.media_dir = media_dir

    def path_of(self, src: object) -> Path | None:
        """The file a relative ``src`` names, if it is published media (else None)."""
        if not isinstance(src, str) or not src or src.startswith(("/", "\\")) or "\x00" in src:
            return None
        if ":" in src.split("/", 1)[0] or ".." in src.replace("\\", "/").split("/"):
            return None
        folder = (self.root / self.media_dir).resolve()
        try:
            path = (self.root / src).resolve()
            path.relative_to(folder)
        except (OSError, ValueError):
            return None
        if path.suffix.lower() not in MEDIA_SUFFIXES or not path.is_file():
            return None
        return path

    def chunks(self, src: object) -> list[bytes] | None:
        """The file's bytes in message-sized pieces, or None (not published media)."""
        path = self.path_of(src)
        if path is None:
            return None
        try:
            if path.stat().st_size > MAX_BYTES:
                return None
            data = path.read_bytes()
        except OSError:
            log.warning("could not read published media %s", path.name)
            return None
        return [data[i:i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)] or [b""]
