"""Plain-text helpers shared by the UIs: safe variable substitution in prompts.

A pasted prompt is data, never code: IPython's own expansion (``DollarFormatter``)
evaluates ``{__import__('os')...}`` and ``{os.environ[...]}``, so the magic turns it off
and substitutes plain variable names only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["substitute_names"]

_NAME = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def substitute_names(text: str, namespace: Mapping[str, object], *,
                     unescape: bool = True) -> str:
    """``{name}`` and ``$name`` become ``str(namespace[name])``; nothing is evaluated.

    Anything else in braces (an expression, an attribute, an index, ``{a|b}``) stays as
    written, and so does a name that is not defined. ``{{`` / ``}}`` are literal braces
    (kept doubled with ``unescape=False``, for a later parser that reads them).
    """

    def one(match: re.Match[str]) -> str:
        whole = match.group(0)
        if whole in ("{{", "}}"):
            return whole[0] if unescape else whole
        name = match.group(1) or match.group(2)
        if name in namespace and not name.startswith("_"):
            return str(namespace[name])
        return whole

    return _NAME.sub(one, text)
