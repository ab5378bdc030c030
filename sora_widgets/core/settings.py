"""Settings, read from the environment at each call (never frozen at import).

A user who sets ``os.environ["SORA_API_KEY"]`` or ``SORA_BUDGET_USD`` in a cell
expects the very next call to use it, so nothing here is cached.

This module is the only one that reads a ``SORA_*`` variable (:data:`ENV_VARS` lists them
all). ``%config SoraMagics.*`` preferences (:class:`Preferences`) are an overlay with one
precedence: **a preference set in the session wins over the environment**, which wins over
the built-in default (the later, more specific choice wins, as ``%config`` is typed in the
notebook itself). An empty preference means "not set": the environment decides.
"""

from __future__ import annotations

import functools
import getpass
import ipaddress
import math
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

__all__ = [
    "API_STYLES",
    "DEFAULT_BASE_URL",
    "DEFAULT_MODEL",
    "ENV_VARS",
    "STYLE_DEFAULT_MODELS",
    "APIKey",
    "Preferences",
    "Settings",
    "api_style",
    "default_model",
    "env_key_set",
    "is_loopback_url",
    "preferences",
    "settings",
]

DEFAULT_BASE_URL = "https://artifex.help"
DEFAULT_MODEL = "sora-2"
#: A style whose models are named otherwise (vendor-prefixed): its default model.
STYLE_DEFAULT_MODELS = {"router": "openai/sora-2"}


def default_model(style: str) -> str:
    """The model used when none is named: sora-2, by the style's own name for it."""
    return STYLE_DEFAULT_MODELS.get(style, DEFAULT_MODEL)
#: Relay wire styles (SORA_API_STYLE): the seed's relay, OpenAI- and OpenRouter-shaped ones.
API_STYLES = ("artifex", "openai", "router")
#: The embedded emulator runs jobs this much faster than the real relay (demo pace).
DEFAULT_EMULATOR_TIME_SCALE = 0.1

#: Every environment variable sora-widgets reads (the tests clear all of them).
ENV_VARS = (
    "SORA_API_KEY", "SORA_BASE_URL", "SORA_API_STYLE", "SORA_MODEL", "SORA_WIDGETS_HOME",
    "SORA_JOURNAL_URL", "SORA_USER", "SORA_BUDGET_USD", "SORA_DAILY_BUDGET_USD",
    "SORA_TEAM_BUDGET_USD", "SORA_CONFIRM_USD", "SORA_PRICE_USD", "SORA_CATALOG",
    "SORA_IMAGE_UPLOADER", "SORA_EMULATOR_TIME_SCALE", "SORA_POLL_SCALE",
    "SORA_HTTP_TIMEOUT", "SORA_DOWNLOAD_TIMEOUT", "SORA_MAX_VIDEO_MB", "SORA_LOW_SPEED_LIMIT",
    "SORA_LOW_SPEED_TIME",
)

_session_key: APIKey | None = None


def _check_key(value: str) -> None:
    """A key must be sendable in an HTTP header: printable ASCII, no spaces or controls.

    Checked before anything is sent (a key with a newline or a NBSP used to fail inside
    httpcore, after the journal had marked the job "maybe charged"). The message never
    quotes the key.
    """
    if not value:
        raise ValueError("empty API key")
    bad = next((i for i, c in enumerate(value) if not 0x21 <= ord(c) <= 0x7E), None)
    if bad is not None or len(value) > 1024:
        from sora_widgets.core.errors import ValidationError

        what = (f"a character that cannot be sent in an HTTP header at position {bad + 1} "
                "(a newline, space, non-ASCII or control character)" if bad is not None
                else "more than 1024 characters")
        raise ValidationError(f"SORA_API_KEY: the key has {what}; nothing was sent. "
                              "Copy the key again without extra characters.",
                              field="api_key")


class APIKey:
    """An API key that cannot leak by accident: its repr and str are masked."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        value = value.strip()
        _check_key(value)
        self._value = value
        from sora_widgets.core.redact import register

        register(value)

    def reveal(self) -> str:
        """The key itself: only for the Authorization header."""
        return self._value

    def __repr__(self) -> str:
        return "APIKey('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, APIKey) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("APIKey is not picklable: keys are never written anywhere")


def set_session_key(key: str | None) -> None:
    """Keep a key in memory for this process only (``%sora key``); ``None`` forgets it."""
    global _session_key
    _session_key = APIKey(key) if key and key.strip() else None


@dataclass(frozen=True)
class Settings:
    api_key: APIKey | None
    base_url: str
    home: Path
    budget_usd: float | None
    model: str
    emulator_time_scale: float
    #: Multiplies every polling interval for a real relay (1.0). Tests against an emulator
    #: whose timeline is compressed set SORA_POLL_SCALE to the same factor.
    poll_scale: float = 1.0
    #: Seconds to wait for the relay's answer (SORA_HTTP_TIMEOUT).
    http_timeout: float = 30.0
    #: One call whose new charges pass this asks for confirmation (SORA_CONFIRM_USD).
    confirm_usd: float | None = 5.0
    daily_budget_usd: float | None = None
    team_budget_usd: float | None = None
    #: Who and where, recorded with each job (SORA_USER, default the OS login).
    user: str = ""
    host: str = ""
    #: Overall seconds one video download may take, and its size cap (a 12 s clip is MBs).
    download_timeout: float = 600.0
    max_video_bytes: int = 256 * 1024 * 1024
    #: A download under this many bytes a second for ``low_speed_time`` s (scaled by
    #: ``poll_scale``) is a drip, cut and retried from a fresh link, as curl's
    #: --speed-limit/--speed-time (SORA_LOW_SPEED_LIMIT, 0: off; SORA_LOW_SPEED_TIME).
    low_speed_limit: int = 16 * 1024
    low_speed_time: float = 30.0
    #: The relay's wire style (SORA_API_STYLE): "artifex" (default) or "openai".
    api_style: str = "artifex"
    #: SORA_PRICE_USD: a flat price per clip replacing the catalogue's rule (None: the rule).
    price_usd: float | None = None
    #: SORA_JOURNAL_URL: a ``postgresql://`` team journal ("" : the sqlite file in home).
    journal_url: str = ""
    #: SORA_CATALOG: a catalogue file replacing the one in home ("": none given).
    catalog_file: str = ""
    #: SORA_IMAGE_UPLOADER: ``module:function`` uploading a still, returning its https URL.
    image_uploader: str = ""

    @property
    def uses_emulator(self) -> bool:
        """No key set: the embedded emulator answers, and nothing is charged."""
        return self.api_key is None

    @property
    def journal_path(self) -> Path:
        return self.home / "journal.sqlite3"

    @property
    def journal_location(self) -> str:
        """Where the journal is: the team database's URL, else the sqlite file."""
        return self.journal_url or str(self.journal_path)

    @property
    def videos_dir(self) -> Path:
        return self.home / "videos"


def _env(name: str) -> str:
    """One variable, stripped ("" when unset): the one place the environment is read."""
    return os.environ.get(name, "").strip()


def env_key_set() -> bool:
    """Whether SORA_API_KEY is set in the environment (it wins over ``%sora key``)."""
    return bool(_env("SORA_API_KEY"))


def _float_env(name: str) -> float | None:
    """A finite, non-negative number (``nan``/``inf`` would silently disable a cap)."""
    raw = _env(name)
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        from sora_widgets.core.errors import ValidationError

        raise ValidationError(f"{name} must be a finite number ≥ 0, not {raw[:40]!r}",
                              field=name) from None
    return value


@functools.lru_cache(maxsize=1)
def _login() -> str:
    """The OS login (a process fact: looked up once; ``pwd`` costs ~0.4 ms a call)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):
        return "unknown"


@functools.lru_cache(maxsize=1)
def _hostname() -> str:
    return socket.gethostname()[:128]


def default_home() -> Path:
    from platformdirs import user_data_path

    return Path(user_data_path("sora-widgets", appauthor=False))


def settings() -> Settings:
    """The settings in force now: the environment, then the in-memory session key."""
    raw_key = _env("SORA_API_KEY")
    key = APIKey(raw_key) if raw_key else _session_key
    home_env = _env("SORA_WIDGETS_HOME")
    scale = _float_env("SORA_EMULATOR_TIME_SCALE")
    poll_scale = _float_env("SORA_POLL_SCALE")
    timeout = _float_env("SORA_HTTP_TIMEOUT")
    confirm = _env("SORA_CONFIRM_USD")
    download_timeout = _float_env("SORA_DOWNLOAD_TIMEOUT")
    max_video_mb = _float_env("SORA_MAX_VIDEO_MB")
    low_speed_limit = _float_env("SORA_LOW_SPEED_LIMIT")
    low_speed_time = _float_env("SORA_LOW_SPEED_TIME")
    style = _env("SORA_API_STYLE").lower() or API_STYLES[0]
    model = _env("SORA_MODEL") or default_model(style)
    if style not in API_STYLES:
        from sora_widgets.core.errors import ValidationError

        raise ValidationError(f"SORA_API_STYLE must be one of {', '.join(API_STYLES)}, "
                              f"not {style[:40]!r}", field="SORA_API_STYLE")
    return Settings(
        api_key=key,
        base_url=(_env("SORA_BASE_URL") or DEFAULT_BASE_URL).rstrip("/"),
        home=Path(home_env).expanduser() if home_env else default_home(),
        budget_usd=_float_env("SORA_BUDGET_USD"),
        model=model,
        emulator_time_scale=scale if scale is not None else DEFAULT_EMULATOR_TIME_SCALE,
        poll_scale=poll_scale if poll_scale and poll_scale > 0 else 1.0,
        http_timeout=timeout if timeout and timeout > 0 else 30.0,
        confirm_usd=_float_env("SORA_CONFIRM_USD") if confirm else 5.0,
        daily_budget_usd=_float_env("SORA_DAILY_BUDGET_USD"),
        team_budget_usd=_float_env("SORA_TEAM_BUDGET_USD"),
        # JupyterHub sets JUPYTERHUB_USER in every single-user server: the hub's name wins.
        user=(_env("SORA_USER") or _env("JUPYTERHUB_USER"))[:64] or _login(),
        host=_hostname(),
        download_timeout=download_timeout if download_timeout else 600.0,
        max_video_bytes=int(max_video_mb * 1024 * 1024) if max_video_mb else 256 * 1024 * 1024,
        low_speed_limit=int(low_speed_limit) if low_speed_limit is not None else 16 * 1024,
        low_speed_time=low_speed_time if low_speed_time else 30.0,
        api_style=style,
        price_usd=_float_env("SORA_PRICE_USD"),
        journal_url=_env("SORA_JOURNAL_URL"),
        catalog_file=_env("SORA_CATALOG"),
        image_uploader=_env("SORA_IMAGE_UPLOADER"),
    )


def missing_key_problem(current: Settings, base_url: str | None = None) -> str | None:
    """A relay is configured but no key is set: say so rather than fall back to the emulator
    (fake videos would hide the missing key)."""
    wanted = base_url or (current.base_url if current.base_url != DEFAULT_BASE_URL else None)
    if current.api_key is None and wanted:
        return (f"api_key: a relay is configured ({wanted}) but no SORA_API_KEY is set. "
                "Set the key (or `%sora key`), or unset SORA_BASE_URL to use the free local "
                "emulator.")
    return None


def is_loopback_url(url: str) -> bool:
    host = (urlsplit(url).hostname or "").strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class Preferences:
    """How the magic and the panel behave, shared by both (``%config SoraMagics.*`` writes
    here). Process-wide and in memory. For model, relay and wire style a preference that is
    set **wins over the environment** (SORA_MODEL, SORA_BASE_URL, SORA_API_STYLE); empty
    means not set. Read them through :meth:`model_or`, :meth:`base_url_or`, :func:`api_style`.
    """

    model: str = ""                 # empty: SORA_MODEL, else sora-2
    default_ratio: str = "16:9"
    base_url: str = ""              # empty: SORA_BASE_URL
    embed: bool = False
    autodownload: bool = True
    media_dir: str = "sora_videos"
    api_style: str = ""             # empty: SORA_API_STYLE, else artifex

    def model_or(self, current: Settings) -> str:
        """The model in force: ``%config SoraMagics.model``, else SORA_MODEL, else the
        style's name for sora-2 (``openai/sora-2`` on a router)."""
        if self.model:
            return self.model
        style = api_style(current)
        if style != current.api_style and current.model == default_model(current.api_style):
            return default_model(style)     # %config chose another style: its default
        return current.model

    def base_url_or(self, current: Settings) -> str:
        """The relay in force: ``%config SoraMagics.base_url``, else SORA_BASE_URL."""
        return (self.base_url or current.base_url).rstrip("/")


preferences = Preferences()


def api_style(current: Settings | None = None) -> str:
    """The wire style in force now: ``%config SoraMagics.api_style``, else SORA_API_STYLE,
    else "artifex". Requests, clients and the studio all ask here."""
    return preferences.api_style or (current or settings()).api_style
