"""Lineage: how a prompt differs from the prompt it was made from, word by word.

A job made from another (vary, reuse, continue) records ``job.parent_id``; history and
compare show its prompt as a word diff against the parent. :func:`word_diff` gives plain
data (for a front end that puts it in the DOM as text); :func:`diff_html` the same as
escaped HTML (``<ins>`` / ``<del>``). Whitespace is kept as it was in the new prompt.
:func:`provenance` says what else made a take what it is (its seed, resolution, a remix
or an extension of which task): two takes that differ in one word at the same seed are
the comparison prompt iteration wants.
"""

from __future__ import annotations

import difflib
import html
import re
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from sora_widgets.core.models import VideoRequest

__all__ = ["Op", "diff_html", "provenance", "word_diff"]

Op = Literal["same", "add", "del"]
_TOKENS = re.compile(r"\s+|\w+(?:['’-]\w+)*|[^\w\s]")


def _tokens(text: str) -> list[str]:
    return _TOKENS.findall(text)


def word_diff(old: str | None, new: str | None) -> list[tuple[Op, str]]:
    """``new`` against ``old`` as runs of ("same" | "add" | "del", text), in reading order.

    Words are compared, whitespace is carried along: joining the "same" and "add" runs
    gives ``new`` back exactly; a "del" run holds the removed words (spaced apart).
    """
    a, b = _tokens(old or ""), _tokens(new or "")
    words_a = [t for t in a if not t.isspace()]
    words_b = [t for t in b if not t.isspace()]
    # Map word indexes back to token runs so whitespace stays where the new prompt had it.
    runs: list[tuple[Op, str]] = []

    def push(op: Op, text: str) -> None:
        if not text:
            return
        if runs and runs[-1][0] == op:
            runs[-1] = (op, runs[-1][1] + text)
        else:
            runs.append((op, text))

    b_spans = _word_spans(b)
    a_spans = _word_spans(a)
    matcher = difflib.SequenceMatcher(a=words_a, b=words_b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag in ("delete", "replace"):
            push("del", _join(a, a_spans, i1, i2, trailing=False))
        if tag == "equal":
            push("same", _join(b, b_spans, j1, j2))
        elif tag in ("insert", "replace"):
            push("add", _join(b, b_spans, j1, j2))
    # A removed run reads as its own words: a space between it and its neighbours.
    for k, (op, text) in enumerate(runs):
        if op == "del":
            before = " " if k > 0 and not runs[k - 1][1][-1:].isspace() else ""
            after = " " if k + 1 < len(runs) and not runs[k + 1][1][:1].isspace() else ""
            runs[k] = (op, before + text + after)
    return runs


def _word_spans(tokens: list[str]) -> list[tuple[int, int]]:
    """For each word: (index of its token, index after its trailing whitespace)."""
    spans = []
    for i, token in enumerate(tokens):
        if not token.isspace():
            end = i + 1
            if end < len(tokens) and tokens[end].isspace():
                end += 1
            spans.append((i, end))
    return spans


def _join(tokens: list[str], spans: list[tuple[int, int]], start: int, stop: int, *,
          trailing: bool = True) -> str:
    if start >= stop:
        return ""
    first = spans[start][0] if start > 0 else 0
    last = spans[stop - 1][1] if trailing else spans[stop - 1][0] + 1
    return "".join(tokens[first:last])


def diff_html(old: str | None, new: str | None) -> str:
    """The word diff as escaped HTML: additions in ``<ins>``, removals struck in ``<del>``."""
    out = []
    for op, text in word_diff(old, new):
        safe = html.escape(text, quote=True)
        if op == "add":
            out.append(f"<ins class='sora-diff-add' style='background: #e6ffec; "
                       f"text-decoration: none'>{safe}</ins>")
        elif op == "del":
            out.append(f"<del class='sora-diff-del' style='background: #ffebe9; "
                       f"color: #82071e'>{safe}</del>")
        else:
            out.append(safe)
    return "".join(out)


def provenance(request: VideoRequest) -> str:
    """'seed 42 · 1080p · no audio · remix of video_1' ('' when there is nothing to say)."""
    parts = []
    if request.seed is not None:
        parts.append(f"seed {request.seed}")
    if request.resolution:
        parts.append(request.resolution)
    if request.generate_audio is False:
        parts.append("no audio")
    if request.last_frame:
        parts.append("first+last frame")
    if request.operation and request.source_task:
        parts.append(f"{request.operation} of {request.source_task}")
    return " · ".join(parts)
