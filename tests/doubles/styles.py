"""A paid relay of one wire style: an emulator speaking it, and the environment pointing
the package at it (key, base URL, SORA_API_STYLE), for the suites that run in every style.

What differs per style is said once here (:data:`DEFAULT_MODEL`, :data:`DEFAULT_PRICE`),
so a suite parametrized over :data:`STYLES` asks instead of branching.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from sora_widgets.emulator import EmulatorConfig, RunningEmulator, start_emulator

from .server import Served

__all__ = ["DEFAULT_MODEL", "DEFAULT_PRICE", "STYLES", "Styled", "point_at", "styled_config",
           "styled_relay"]

STYLES = ("artifex", "openai", "router")
#: The model each style is used with when a test names none: the catalogue's Sora 2 of that
#: style (the router's names are vendor-prefixed, so the default "sora-2" is not one of them).
DEFAULT_MODEL = {"artifex": "sora-2", "openai": "sora-2", "router": "openai/sora-2"}
#: What each style's default clip costs (the catalogue: $0.90 a clip; $0.10/s x 4 s).
DEFAULT_PRICE = {"artifex": 0.90, "openai": 0.40, "router": 0.40}


def styled_config(style: str, time_scale: float, **changes: Any) -> EmulatorConfig:
    """An emulator config speaking ``style`` (seeded: the same timelines every run)."""
    values: dict[str, Any] = {"time_scale": time_scale, "seed": 15}
    values.update(changes)
    made = EmulatorConfig(**values)
    made.update({"style": style})
    return made


@dataclass
class Styled:
    """A paid relay speaking ``style``; ``base_url`` is what SORA_BASE_URL says (the part
    before ``/v1/videos``: the emulator's, or a proxy's in front of it)."""

    style: str
    emu: RunningEmulator
    base_url: str
    #: The double in front of the emulator, when there is one (a recording proxy).
    front: Any = None

    @property
    def other(self) -> str:
        """A style this relay does not speak (for a misconfigured setting)."""
        return "openai" if self.style != "openai" else "artifex"

    @property
    def model(self) -> str:
        return DEFAULT_MODEL[self.style]

    @property
    def price(self) -> float:
        return DEFAULT_PRICE[self.style]

    def posts(self) -> int:
        return int(self.emu.stats()["posts"])


def point_at(monkeypatch: pytest.MonkeyPatch, style: str, base_url: str, key: str,
             poll_scale: float) -> None:
    """The environment of a paid relay of ``style`` at ``base_url`` (its default model
    too: SORA_MODEL, as a user of that relay sets it)."""
    monkeypatch.setenv("SORA_API_KEY", key)
    monkeypatch.setenv("SORA_BASE_URL", base_url)
    monkeypatch.setenv("SORA_POLL_SCALE", str(poll_scale))
    monkeypatch.setenv("SORA_API_STYLE", style)
    if style == "router":
        monkeypatch.setenv("SORA_MODEL", DEFAULT_MODEL[style])


@contextlib.contextmanager
def styled_relay(style: str, monkeypatch: pytest.MonkeyPatch, *, key: str, time_scale: float,
                 front: Callable[[int], Served] | None = None,
                 **changes: Any) -> Iterator[Styled]:
    """An emulator speaking ``style`` for the ``with`` block, the environment pointing at it,
    or at ``front(emulator_port)`` (a proxy) when given: the style's path prefix kept."""
    with start_emulator(styled_config(style, time_scale, **changes)) as emu:
        if front is None:
            point_at(monkeypatch, style, emu.api_base_url, key, time_scale)
            yield Styled(style, emu, emu.api_base_url)
            return
        with front(emu.port) as double:
            base_url = double.base_url + emu.api_base_url[len(emu.base_url):]
            point_at(monkeypatch, style, base_url, key, time_scale)
            yield Styled(style, emu, base_url, double)
