"""The ``{a|b}`` alternatives of a prompt: parsed, counted, then expanded (pure text).

The grammar, in full::

    text        := (literal | '{{' | '}}' | group | braces)*
    group       := '{' alternative ('|' alternative)+ '}'     one axis of the sweep
    alternative := text, trimmed, never empty                  nested groups expand in it
    braces      := '{' text-without-'|' '}'                    kept as written

* ``{{`` and ``}}`` are literal braces in the prompt's text. Inside braces, braces are
  structure (``{red|{dark|light}}`` nests, as in ``str.format`` fields): a literal brace
  inside an alternative is written as braces without ``|`` (``{a|{x}}``: "a" or "{x}").
* Braces with no ``|`` at their own level are kept as written: ``{name}`` of a notebook
  variable the magic could not substitute, or ``{x}`` in a prompt about code. Nothing in
  braces is ever evaluated. Such braces may not hold a sweep (``{x {a|b}}``): that is
  refused, with the hint to write ``{{``.
* A group nested in an alternative adds values to the same axis:
  ``{red|{dark|light} blue}`` is one axis of three values.
* Refused before anything is sent, with the column: an empty alternative (``{red|}``), a
  repeated one, an unclosed ``{``, a stray ``}``, braces nested deeper than
  :data:`MAX_DEPTH`, more than :data:`MAX_JOBS` combinations.

The combinations are **counted on the parsed template before any is built** (one pass,
linear in the template): ``{x {a|b|c|d}{a|b|c|d}…|y}`` with 12 groups stands for 16.7
million prompts, and building them first hung the kernel (issue 21, item 8). Counts
saturate at :data:`_HUGE`, so even a template written to overflow costs nothing.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

from sora_widgets.core.errors import ValidationError

__all__ = ["MAX_DEPTH", "MAX_JOBS", "Axis", "count", "escape_braces", "expand"]

#: One call never makes more jobs than this (``Studio.submit`` has the same cap).
MAX_JOBS = 100
#: Braces nest at most this deep (a parser's recursion, and no prompt needs more).
MAX_DEPTH = 32
#: Counts stop growing here: any count this large is refused, and stays a small number.
_HUGE = 10**12
_HINT = "write {{ or }} for a literal brace"


@dataclass(frozen=True)
class Axis:
    """One varying part: its name (the group as written, or "ratio") and its values."""

    name: str
    values: tuple[str, ...]


# -- parsing ----------------------------------------------------------------------------------

@dataclass
class _Group:
    """Braces in the source: alternatives (each a sequence of pieces), where they start."""

    alternatives: list[list[_Piece]]
    start: int
    end: int = 0


_Piece = Union[str, _Group]  # noqa: UP007 (a runtime alias: 3.10 has no str | class here)


def _error(template: str, at: int, message: str) -> ValidationError:
    snippet = template[max(0, at - 12):at + 12]
    return ValidationError(f"prompt: {message} at column {at + 1} (…{snippet}…); {_HINT}",
                           field="prompt")


def _parse(template: str, at: int = 0, depth: int = 0,
           keep: bool = False) -> tuple[list[list[_Piece]], int]:
    """Alternatives of the text from ``at`` up to the ``}`` that closes this level."""
    alternatives: list[list[_Piece]] = [[]]
    text: list[str] = []

    def flush() -> None:
        if text:
            alternatives[-1].append("".join(text))
            text.clear()

    if depth > MAX_DEPTH:
        raise _error(template, at - 1, f"braces nested more than {MAX_DEPTH} deep")
    i = 0 + at
    while i < len(template):
        char = template[i]
        pair = template[i:i + 2]
        if depth == 0 and pair in ("{{", "}}"):
            text.append(pair if keep else char)
            i += 2
        elif char == "{":
            flush()
            inner, end = _parse(template, i + 1, depth + 1)
            alternatives[-1].append(_Group(inner, i, end))
            i = end + 1
        elif char == "}":
            if depth == 0:
                raise _error(template, i, "a '}' that closes nothing")
            flush()
            return alternatives, i
        elif char == "|" and depth > 0:
            flush()
            alternatives.append([])
            i += 1
        else:
            text.append(char)
            i += 1
    if depth > 0:
        raise _error(template, at - 1, "a '{' that is never closed")
    flush()
    return alternatives, i


def _flatten(pieces: Sequence[_Piece], template: str) -> list[str]:
    """Every text a sequence of pieces expands to (nested groups multiply)."""
    options: list[list[str]] = []
    for piece in pieces:
        if isinstance(piece, str):
            options.append([piece])
        else:
            options.append(list(_values(piece, template)))
    return ["".join(parts) for parts in itertools.product(*options)]


def _is_sweep(group: _Group) -> bool:
    return len(group.alternatives) > 1


def _literal(group: _Group, template: str) -> str:
    """Braces without '|': kept as written (after ``{{``/``}}`` were read)."""
    for piece in group.alternatives[0]:
        if isinstance(piece, _Group) and (_is_sweep(piece) or _has_sweep(piece)):
            raise _error(template, piece.start,
                         "alternatives inside braces that are not a sweep")
    return "{" + "".join(_flatten(group.alternatives[0], template)[0:1]) + "}"


def _has_sweep(group: _Group) -> bool:
    return any(isinstance(p, _Group) and (_is_sweep(p) or _has_sweep(p))
               for alt in group.alternatives for p in alt)


def _values(group: _Group, template: str) -> tuple[str, ...]:
    """The values one group stands for (one literal text, or every alternative)."""
    if not _is_sweep(group):
        return (_literal(group, template),)
    values: list[str] = []
    for alternative in group.alternatives:
        for value in _flatten(alternative, template):
            value = value.strip()
            if not value:
                raise _error(template, group.start, "an empty alternative")
            if value in values:
                raise _error(template, group.start, f"the alternative {value!r} twice")
            values.append(value)
    return tuple(values)


def _count_group(group: _Group) -> int:
    """How many values ``group`` stands for (repeats counted), without building them."""
    if not _is_sweep(group):
        return 1
    total = 0
    for alternative in group.alternatives:
        total = min(_HUGE, total + _count_pieces(alternative))
    return total


def _count_pieces(pieces: Sequence[_Piece]) -> int:
    product = 1
    for piece in pieces:
        if isinstance(piece, _Group):
            product = min(_HUGE, product * _count_group(piece))
    return product


def _refuse_over_cap(pieces: Sequence[_Piece]) -> None:
    combinations = _count_pieces(pieces)
    if combinations > MAX_JOBS:
        said = f"more than {_HUGE:,}" if combinations >= _HUGE else str(combinations)
        raise ValidationError(f"prompt: {said} combinations; one sweep makes at most "
                              f"{MAX_JOBS} jobs", field="prompt")


def count(template: str) -> int:
    """How many prompts ``template`` expands to, counted without expanding (capped at a
    trillion). Raises ``ValidationError`` on a malformed template."""
    alternatives, _ = _parse(template)
    return _count_pieces(alternatives[0])


def expand(template: str, *, keep_escapes: bool = False,
           ) -> tuple[tuple[Axis, ...], list[tuple[str, tuple[str, ...]]]]:
    """The axes of ``template`` and every (prompt, values) combination, first axis slowest.

    ``expand("a {red|blue} fox")`` → ``((Axis("{red|blue}", ("red", "blue")),),
    [("a red fox", ("red",)), ("a blue fox", ("blue",))])``. Raises ``ValidationError``.

    ``keep_escapes``: ``{{``/``}}`` stay doubled in the texts, for a substitution of
    ``{name}`` variables that runs after the expansion (the magic's: a variable's value is
    never sweep syntax, and ``{{`` is still a literal brace for it).
    """
    alternatives, _ = _parse(template, keep=keep_escapes)
    pieces = alternatives[0]
    _refuse_over_cap(pieces)     # before a single combination is built
    axes: list[Axis] = []
    slots: list[tuple[str, ...]] = []   # per piece: its texts (one, or an axis's values)
    axis_of_slot: list[int | None] = []
    for piece in pieces:
        if isinstance(piece, str):
            slots.append((piece,))
            axis_of_slot.append(None)
        elif _is_sweep(piece):
            values = _values(piece, template)
            name = template[piece.start:piece.end + 1]
            taken = {axis.name for axis in axes}
            name = next(f"{name} ({n})" for n in itertools.count(2)
                        if f"{name} ({n})" not in taken) if name in taken else name
            axes.append(Axis(name, values))
            slots.append(values)
            axis_of_slot.append(len(axes) - 1)
        else:
            slots.append((_literal(piece, template),))
            axis_of_slot.append(None)
    combos: list[tuple[str, tuple[str, ...]]] = []
    for chosen in itertools.product(*(axis.values for axis in axes)):
        parts = [chosen[a] if a is not None else slot[0]
                 for slot, a in zip(slots, axis_of_slot, strict=True)]
        combos.append(("".join(parts), tuple(chosen)))
    return tuple(axes), combos


def escape_braces(text: str) -> str:
    """``text`` as literal sweep text: its braces doubled (a variable's value is data)."""
    return text.replace("{", "{{").replace("}", "}}")
