"""The UI's two safety rules for HTML, in one place: escape every string, and let only
safe URLs become a ``src`` or ``href``.

Every string that came from a user, a server or a shared journal is escaped; only
``http(s)`` URLs, ``data:video/mp4`` and plain relative paths (the copies published next to
the notebook) become a video's ``src``, only an inline JPEG or such a URL a poster, and only
a plain ``http(s)`` URL the first-frame image an ``<img>`` preview may load. The renderers
(``render``, ``cards``, the magic's views) build their HTML on these.
"""

from __future__ import annotations

import html
from urllib.parse import urlsplit

__all__ = ["escape", "http_url", "is_inline_jpeg", "poster_attr", "safe_url", "still_src"]


def escape(text: object) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def safe_url(url: str | None) -> str | None:
    """The URL if it may become a ``src``/``href``: http(s), inline mp4, or a relative path."""
    if not url or not isinstance(url, str):
        return None
    url = url.strip()
    if any(ord(c) < 32 for c in url):
        return None
    if url.startswith("data:video/mp4;base64,"):
        return url
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.netloc:
        return url
    if not parts.scheme and not parts.netloc and not url.startswith(("/", "\\")) \
            and ":" not in url.split("/")[0] and ".." not in url.split("/"):
        return url
    return None


_JPEG_URI = "data:image/jpeg;base64,"
_BASE64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def poster_attr(poster: str | None) -> str:
    """`` poster='...'`` for a still shown before the video plays (and where it cannot):
    an inline JPEG, or a URL that may be a ``src``; anything else adds nothing."""
    still = still_src(poster)
    return f" poster='{escape(still)}'" if still else ""


def is_inline_jpeg(value: str) -> bool:
    return value.startswith(_JPEG_URI) and set(value[len(_JPEG_URI):]) <= _BASE64


def still_src(value: str | None) -> str | None:
    """A thumbnail's ``src``: an inline JPEG (base64 only), or a URL that may be a src."""
    if not value or not isinstance(value, str):
        return None
    if is_inline_jpeg(value):
        return value
    url = safe_url(value)
    return url if url and not url.startswith("data:") else None


def http_url(url: str | None) -> str | None:
    """The URL if it is a plain http(s) URL (the only kind an ``<img>`` preview may load)."""
    if not url or not isinstance(url, str):
        return None
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    if any(ord(c) < 33 for c in url):
        return None
    return url
