"""Text made safe for a terminal: what the CLI prints of relay or journal strings.

Every string the relay controls (task ids, error messages) or that comes back from the
journal (prompts, paths, a teammate's rows) goes through :func:`printable` and is handed
to rich as :class:`rich.text.Text`, never as markup.
"""

from __future__ import annotations

import re

__all__ = ["printable", "short"]

#: Terminal escape sequences, 7-bit (ESC ...) and 8-bit (C1) forms. String-type sequences
#: (OSC, DCS, SOS, PM, APC) run to their terminator (BEL or ST) or, unterminated, to the end:
#: a terminal would swallow that text too, or worse, act on it.
_ESCAPE_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"            # CSI ... final byte
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]).*?(?:\x07|\x1b\\|\x9c|\Z)"  # OSC/DCS/SOS/PM/APC
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]?",                                 # any other ESC sequence
    re.DOTALL,
)
#: Line and tab characters: a run of them (with the spaces around) becomes one space, so a
#: multi-line prompt stays on its row and a relay message cannot fake a line of its own.
_LINE_BREAKS = re.compile(r"[ ]*[\t\n\v\f\r\x1c-\x1e\x85\u2028\u2029]+[ \t\n\v\f\r\x85]*")
#: What is left to drop: C0 and C1 controls, DEL, and the bidirectional controls that
#: make text display in an order other than the one it is read in (Trojan Source).
_CONTROLS = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def printable(text: object) -> str:
    """``text`` made safe to print on a terminal, on one line.

    Escape sequences (CSI, OSC, DCS, ...) are removed whole, line breaks and tabs become
    one space, and the remaining C0/C1 controls and bidi overrides are dropped. The result
    is plain text: hand it to rich as ``Text(...)`` (not as markup) so ``[bold]`` stays
    literal. ``None`` gives ``""``.
    """
    if text is None:
        return ""
    value = text if isinstance(text, str) else str(text)
    value = _ESCAPE_SEQUENCE.sub("", value)
    value = _LINE_BREAKS.sub(" ", value)
    return _CONTROLS.sub("", value)


def short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"
