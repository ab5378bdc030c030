"""The panel's messages from the browser: clicks and keys, History's and the comparison's
parts, and the bytes of published media for a host with no file route.

Every message is one user action; errors go to the reason line beside Generate, never
raised into the kernel's comm handler; each is acknowledged (``seq``) so the page knows the
click was heard. Mixed into ``SoraWidget``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sora_widgets.core.errors import SoraError
from sora_widgets.core.settings import preferences
from sora_widgets.ui.panel.media import MediaServer

if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from pathlib import Path

    from sora_widgets.engine.job import Job
    from sora_widgets.ui.panel.history import PanelHistory

__all__ = ["TAKE_ACTIONS", "PanelMessages"]

log = logging.getLogger("sora_widgets.ui.panel")

#: A take's buttons (the front end's "take" actions; ``press`` in Python).
TAKE_ACTIONS = ("reuse", "vary", "regenerate", "continue", "remix", "star", "note", "select")


class PanelMessages:
    """Answers the front end's messages (``on_msg``)."""

    history: PanelHistory
    _root: Path

    if TYPE_CHECKING:
        def generate(self) -> None: ...
        def confirm(self) -> None: ...
        def dismiss(self) -> None: ...
        def press(self, action: str, job: Job | str, value: Any = None) -> None: ...
        def compare_selected(self) -> None: ...
        def _on_stop_tracking(self, local_id: str) -> None: ...
        def _refresh_form(self, message: str | None = None, tone: str = "error") -> None: ...
        def hold_trait_notifications(self) -> AbstractContextManager[None]: ...
        def send(self, content: Any, buffers: Any = None) -> None: ...

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        """One click or key in the browser; errors go to the reason line, never raised."""
        if not isinstance(content, dict):
            return
        action = content.get("action")
        try:
            self._dispatch(content)
        except SoraError as exc:
            self._refresh_form(str(exc))
        except Exception as exc:   # a kernel-side bug must not break the panel
            log.exception("panel action %r failed", action)
            self._refresh_form(f"{action} failed ({type(exc).__name__})")
        finally:
            if content.get("seq") is not None:
                self.send({"ack": content.get("seq")})

    def _dispatch(self, content: dict[str, Any]) -> None:
        action, target = content.get("action"), content.get("target")
        if target in ("history", "compare"):
            self.history.receive(str(target), content)
        elif action == "generate":
            form = content.get("form")
            if isinstance(form, dict):   # what the page shows (a key can beat the sync)
                with self.hold_trait_notifications():
                    for name in ("prompt", "image", "seed"):
                        if isinstance(form.get(name), str):
                            setattr(self, name, form[name])
            self.generate()
        elif action == "confirm":
            self.confirm()
        elif action == "dismiss":
            self.dismiss()
        elif action == "cancel":
            self._on_stop_tracking(str(content.get("id", "")))
        elif action == "history":
            self.history.open(bool(content.get("open")))
        elif action == "forget":
            self.history.remember(None)
        elif action == "compare":
            self.compare_selected()
        elif action == "media":
            self._send_media(content.get("src"))
        elif action in TAKE_ACTIONS:
            self.press(str(action), str(content.get("id", "")), content.get("value"))

    def _send_media(self, src: object) -> None:
        """A published video or poster's bytes, for a host with no file route (marimo)."""
        chunks = MediaServer(self._root, preferences.media_dir).chunks(src)
        if chunks is None:
            self.send({"media": src, "error": "not published media"})
            return
        for index, chunk in enumerate(chunks):
            self.send({"media": src, "index": index, "count": len(chunks)}, buffers=[chunk])
