"""Keep API keys out of text that leaves our hands: messages, stored strings, log records.

Every :class:`~sora_widgets.core.settings.APIKey` registers its secret here when it is made, so
relay-controlled text (error messages, status words, video links that echo the key) can
be scrubbed before it is stored, shown or logged, and a log filter on ``httpx``,
``httpcore`` and ``sora_widgets`` scrubs every record (httpx logs request URLs at INFO).
"""

from __future__ import annotations

import logging
import threading

__all__ = ["MASK", "install_log_filter", "register", "scrub"]

MASK = "********"
_lock = threading.Lock()
_secrets: tuple[str, ...] = ()
#: Loggers whose records may quote a URL or an answer of the relay.
LOGGERS = ("httpx", "httpcore", "sora_widgets")


def register(secret: str) -> None:
    global _secrets
    with _lock:
        if secret not in _secrets:
            _secrets = (*_secrets, secret)


def scrub(text: str) -> str:
    """``text`` without any registered key, nor any 8-character piece of one."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
        for size in (16, 8):
            for start in range(max(0, len(secret) - size + 1)):
                piece = secret[start:start + size]
                if piece in text:
                    text = text.replace(piece, MASK)
    return text


class _ScrubFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            message = record.getMessage()
            clean = scrub(message)
            if clean != message:
                record.msg, record.args = clean, None
        return True


_filter = _ScrubFilter()


def install_log_filter() -> None:
    """Idempotent: attach the scrubbing filter to every logger that may quote the relay.

    A logger's filters do not see records of its children (httpcore logs as
    ``httpcore.http11`` ...), so each existing logger under those names gets it.
    """
    names = [name for name in list(logging.root.manager.loggerDict)
             if any(name == p or name.startswith(p + ".") for p in LOGGERS)]
    for name in {*LOGGERS, *names}:
        logger = logging.getLogger(name)
        if _filter not in logger.filters:
            logger.addFilter(_filter)
