"""The panel's one ES module and stylesheet, assembled from the package's static files.

``static/panel.js`` draws the panel; History and the comparison keep their own front ends
(``history.js``, ``compare.js``, also the standalone widgets'), each wrapped here in a
function scope so their names cannot meet, and handed to the panel as
``historyFrontEnd`` / ``compareFrontEnd``. Plain files, read once: no build step, nothing
fetched from a CDN.
"""

from __future__ import annotations

import re

from sora_widgets.ui.compare import STATIC

__all__ = ["PANEL_CSS", "PANEL_ESM"]

_DEFAULT_EXPORT = re.compile(r"^export default ", re.MULTILINE)


def _module(name: str, as_name: str) -> str:
    """``static/<name>`` as ``const <as_name> = (() => { ...; return {render}; })();``."""
    source = (STATIC / name).read_text("utf-8")
    if len(_DEFAULT_EXPORT.findall(source)) != 1:
        raise RuntimeError(f"{name} must have exactly one `export default`")
    return f"const {as_name} = (() => {{\n{_DEFAULT_EXPORT.sub('return ', source)}\n}})();\n"


PANEL_ESM = "\n".join([
    (STATIC / "common.js").read_text("utf-8"),
    _module("history.js", "historyFrontEnd"),
    _module("compare.js", "compareFrontEnd"),
    (STATIC / "panel.js").read_text("utf-8"),
])
PANEL_CSS = "\n".join((STATIC / name).read_text("utf-8")
                      for name in ("panel.css", "history.css", "compare.css"))
