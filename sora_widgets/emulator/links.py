"""Signed, expiring video links, like the short-lived CDN links real relays hand out.

A link is ``/videos/{id}.mp4?expires=E&sig=S`` with ``S = hmac(secret, id:E)``: ``E`` is
whole unix seconds, with milliseconds when the TTL is fractional (fast tests), and ``0``
means "no expiry". ``expire_all()`` rotates the secret, which invalidates every link
issued so far while a fresh task GET signs a working one. With a state directory the
secret is kept there, so links survive a restart of the emulator.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import secrets
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs

__all__ = ["LinkSigner"]

_KEY_FILE = "link-signing.key"


class LinkSigner:
    """Signs and checks video link query strings."""

    def __init__(self, state_dir: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._path = None if state_dir is None else Path(state_dir) / _KEY_FILE
        self._secret = self._load() or self._rotate()

    def query(self, task_id: str, ttl_seconds: float | None) -> str:
        """The query string of a fresh link to ``task_id``."""
        expires = "0" if ttl_seconds is None else _expiry(ttl_seconds)
        return f"expires={expires}&sig={self._sign(task_id, expires)}"

    def check(self, task_id: str, query: str) -> bool:
        """True when the query carries a valid, unexpired signature for ``task_id``."""
        params = parse_qs(query)
        try:
            expires, sig = params["expires"][0], params["sig"][0]
            deadline = float(expires)
        except (KeyError, IndexError, ValueError):
            return False
        if deadline and time.time() > deadline:
            return False
        return hmac.compare_digest(sig, self._sign(task_id, expires))

    def expire_all(self) -> None:
        """Invalidate every link issued so far."""
        self._secret = self._rotate()

    def _sign(self, task_id: str, expires: str) -> str:
        message = f"{task_id}:{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:32]

    def _load(self) -> bytes | None:
        if self._path is None:
            return None
        try:
            secret = bytes.fromhex(self._path.read_text().strip())
        except (OSError, ValueError):
            return None
        return secret or None

    def _rotate(self) -> bytes:
        secret = secrets.token_bytes(32)
        with self._lock:
            if self._path is not None:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                tmp = self._path.with_suffix(".tmp")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as fh:
                    fh.write(secret.hex())
                tmp.replace(self._path)
        return secret


def _expiry(ttl_seconds: float) -> str:
    """Whole unix seconds (rounded up) as real links carry; milliseconds for sub-second TTLs."""
    when = time.time() + ttl_seconds
    return str(math.ceil(when)) if float(ttl_seconds).is_integer() else f"{when:.3f}"
