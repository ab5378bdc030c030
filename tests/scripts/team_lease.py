"""Shorten the heartbeat lease in a teammate's process, so a test need not wait minutes.

``lease``: the seconds after which another host's rows are presumed dead (120 s for real).
``heartbeat``: the most time between two renewals (30 s for real); the rebuilt engine also
renews at least every quarter of the lease by itself. Internal hook: the constant lives in
``sora_widgets.engine.lease`` (rebuilt) or ``sora_widgets.engine.job`` (0.2).
"""

from __future__ import annotations

import importlib

from sora_widgets.core import owner


def shorten(lease: float, heartbeat: float | None = None) -> None:
    owner.LEASE_SECONDS = lease
    if heartbeat is None:
        return
    for name in ("sora_widgets.engine.lease", "sora_widgets.engine.job"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "HEARTBEAT_SECONDS"):
            module.HEARTBEAT_SECONDS = heartbeat
            return
