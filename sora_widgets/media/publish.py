"""Where a notebook's ``<video>`` gets its file from.

JupyterLab rewrites a *relative* ``src`` in ``text/html`` output (and in outputs
inside an ``ipywidgets.Output``) to ``/files/<notebook dir>/...``, which serves
only files under the Jupyter root; the per-user data dir is not. The relay's
links expire and the emulator's ``127.0.0.1`` links fail from a remote
browser. So a finished video is published next to the notebook — the kernel's
working directory — as ``sora_videos/<task id>.mp4`` (a hard link when
possible, else a copy), and referenced relatively: it plays live, after the
notebook is saved and reopened, and in an ``nbconvert --to html`` export
written beside it.
"""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

__all__ = ["DEFAULT_MEDIA_DIR", "check_media_dir", "data_uri", "publish_video", "published"]

DEFAULT_MEDIA_DIR = "sora_videos"


def check_media_dir(media_dir: str) -> str:
    """``media_dir`` if it is a plain relative folder (a browser resolves it from the notebook)."""
    parts = media_dir.replace("\\", "/").strip("/").split("/")
    if (not media_dir.strip() or Path(media_dir).is_absolute() or ":" in media_dir
            or any(p in ("", ".", "..") for p in parts)):
        raise ValueError(f"media_dir must be a relative folder like 'sora_videos', "
                         f"not {media_dir!r}")
    return "/".join(parts)


def published(local_path: Path, media_dir: str = DEFAULT_MEDIA_DIR,
              root: Path | None = None) -> str | None:
    """The relative URL of a video already published next to the notebook (writes nothing:
    reprs and history views only look)."""
    media_dir = check_media_dir(media_dir)
    target = (root or Path.cwd()) / media_dir / local_path.name
    try:
        if target.is_file() and target.stat().st_size == local_path.stat().st_size:
            return f"{media_dir}/{target.name}"
    except OSError:
        pass
    return None


def publish_video(local_path: Path, media_dir: str = DEFAULT_MEDIA_DIR,
                  root: Path | None = None) -> str:
    """Place the video under ``root/media_dir`` and return its relative URL path (the UI
    layer calls this; the saved file's name is already unique per task id)."""
    media_dir = check_media_dir(media_dir)
    root = root or Path.cwd()
    folder = root / media_dir
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / local_path.name
    if not (target.exists() and target.stat().st_size == local_path.stat().st_size):
        tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
        tmp.unlink(missing_ok=True)
        try:
            os.link(local_path, tmp)
        except OSError:
            shutil.copyfile(local_path, tmp)
        os.replace(tmp, target)
    return f"{media_dir}/{target.name}"


def data_uri(local_path: Path) -> str:
    """The whole video inline (``--embed``): a self-contained notebook, at a size cost."""
    return "data:video/mp4;base64," + base64.b64encode(local_path.read_bytes()).decode("ascii")
