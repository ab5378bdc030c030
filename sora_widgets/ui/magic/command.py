"""The ``%sora`` line, parsed once into a :class:`SoraCommand` that every part reads.

As jupysql's ``SQLCommand``: the magic splits and parses its line here, once, and hands
the result to whichever part runs it (a plain generate, a sweep, a storyboard, or a
sub-command). The rules that were written in each part live here once:

* quoting: IPython's ``arg_split`` keeps the quotes of a quoted token; its content is meant;
* notebook variables: the line is parsed *as written*, then each value has its ``{name}`` /
  ``$name`` substituted (the magic's own rule, nothing evaluated), so a variable's value is
  data and never becomes a flag or sweep syntax (a sweep reads the prompt before that);
* the ``-o NAME`` check (a plain Python variable name), and the ``-n`` range;
* an unknown flag names the valid ones, not only "unrecognized arguments".

Sub-commands (``jobs``, ``show``...) read :attr:`SoraCommand.words` with their own small
parser from :func:`sub_parser`.
"""

from __future__ import annotations

import argparse
import keyword
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from IPython.core.error import UsageError
from IPython.core.magic_arguments import MagicArgumentParser
from IPython.utils.process import arg_split  # type: ignore[attr-defined]

from sora_widgets.core.errors import ConfirmationRequired, SoraError

__all__ = [
    "MAX_VARIATIONS",
    "SUBCOMMANDS",
    "SoraCommand",
    "SoraParser",
    "sora_parser",
    "split",
    "sub_parser",
    "unquote",
    "usage_error",
    "variable_name",
]

SUBCOMMANDS = ("jobs", "show", "resume", "cost", "key", "continue", "models", "remix",
               "extend")
MAX_VARIATIONS = 10


class SoraParser(MagicArgumentParser):
    """IPython's magic parser (errors raise ``UsageError``); an unknown flag lists the valid
    ones, which the parser knows because each ``add_argument`` is recorded."""

    def __init__(self, prog: str, description: str | None = None) -> None:
        # IPython's help formatter writes the usage line as "%" + prog.
        super().__init__(prog=prog.lstrip("%"),  # type: ignore[no-untyped-call]
                         description=description)
        self.label = prog
        self.options: list[argparse.Action] = []

    def add_argument(self, *names: Any, **kwargs: Any) -> argparse.Action:
        action: argparse.Action = super().add_argument(*names, **kwargs)
        if action.option_strings:
            self.options.append(action)
        return action

    def valid_flags(self) -> str:
        """'-r/--ratio RATIO, --force, ...': every flag, as ``--help`` would spell it."""
        words = []
        for action in self.options:
            names = "/".join(action.option_strings)
            words.append(f"{names} {action.metavar}" if action.metavar else names)
        return ", ".join(words) or "none"

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments"):
            message += f"\nvalid flags of {self.label}: {self.valid_flags()}"
        raise UsageError(message)


def sub_parser(name: str) -> SoraParser:
    """The parser of one sub-command, ``%sora NAME`` in its messages."""
    return SoraParser(prog=f"%sora {name}")


#: The main line's options: (names, add_argument keywords), in the order ``%sora?`` shows.
_OPTIONS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("prompt",), {"nargs": "*", "help": "The prompt ({var} and $var interpolate notebook "
                   "variables). In %%%%sora, the cell body is the prompt."}),
    (("-r", "--ratio"), {"metavar": "RATIO", "help": "16:9 or 9:16, or both: 16:9,9:16 "
                         "(a sweep) (default: SoraMagics.default_ratio)."}),
    (("-i", "--image"), {"action": "append", "metavar": "URL_OR_FILE",
                         "help": "First-frame reference image: http(s) URL or local file "
                         "(repeatable)."}),
    (("--model",), {"help": "Model name (default: SoraMagics.model or SORA_MODEL)."}),
    (("--seconds",), {"metavar": "S", "help": "Video length where the relay's style allows "
                      "a choice (openai: 4, 8 or 12; the seed's relay: 12 only)."}),
    (("--size",), {"metavar": "WxH", "help": "Video size where the style has sizes (openai: "
                   "1280x720, 720x1280; sora-2-pro also 1792x1024, 1024x1792)."}),
    (("--seed",), {"metavar": "SEED", "help": "A seed where the model takes one (%sora "
                   "models says which), or alternatives {1|2|3} / 1,2,3: one take per seed "
                   "(a sweep). The same seed again is reused free."}),
    (("--last-frame",), {"metavar": "URL_OR_FILE", "dest": "last_frame",
                         "help": "Last-frame image (interpolation), where the model allows."}),
    (("--resolution",), {"metavar": "RES", "help": "720p or 1080p where the model takes a "
                         "resolution (router style)."}),
    (("--force",), {"action": "store_true", "help": "Submit (and pay) again even if an "
                    "identical request was made before."}),
    (("-n",), {"default": "1", "metavar": "N", "dest": "n",
               "help": f"N variations in parallel, shown as a grid (1-{MAX_VARIATIONS}); the "
               "total cost is stated before submitting."}),
    (("--wait",), {"action": "store_true", "help": "Block until the videos are done."}),
    (("-o", "--output"), {"metavar": "NAME", "help": "Store the Job (a list of Jobs with "
                          "-n > 1) in this variable."}),
    (("--embed",), {"action": "store_true", "help": "Inline the finished video as base64 "
                    "(self-contained notebook)."}),
    (("--yes",), {"action": "store_true", "help": "Confirm a call whose new charges pass "
                  "SORA_CONFIRM_USD (default $5)."}),
    (("--storyboard",), {"action": "store_true", "help": "%%%%sora only: each paragraph of the "
                         "cell is a shot, each next shot continues from the last frame of the "
                         "one before; the whole storyboard is quoted first, and the clips are "
                         "stitched into one film."}),
)


def sora_parser(description: str | None = None) -> SoraParser:
    """The parser of the ``%sora`` line (``description``: the magic's docstring, for help)."""
    parser = SoraParser(prog="%sora", description=description)
    for names, options in _OPTIONS:
        parser.add_argument(*names, **options)
    return parser


_PARSER = sora_parser()


def unquote(token: str) -> str:
    """IPython's ``arg_split`` keeps quotes on POSIX; a quoted token means its content."""
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "\"'":
        return token[1:-1]
    return token


def usage_error(exc: SoraError) -> UsageError:
    """A refusal from below, as the magic says it: the core names no UI's flag, so the
    confirmation hint is added here."""
    hint = " Add --yes to confirm." if isinstance(exc, ConfirmationRequired) else ""
    return UsageError(f"%sora: {exc}{hint}")


def split(line: str) -> list[str]:
    """The line's words, quotes kept (an unclosed quote is a usage error)."""
    try:
        return list(arg_split(line, strict=True))
    except ValueError as exc:  # "No closing quotation"
        raise UsageError(f"%sora: {exc}") from None


def variable_name(value: str | None) -> str | None:
    """The ``-o NAME`` to store a result in, checked to be a plain variable name."""
    name = unquote(value) if value else None
    if name is not None and (not name.isidentifier() or keyword.iskeyword(name)):
        raise UsageError(f"%sora: -o needs a Python variable name, not {name[:40]!r}")
    return name


def _no_expansion(text: str) -> str:
    return text


@dataclass(frozen=True, repr=False)
class SoraCommand:
    """One ``%sora`` call: its words, its options parsed once, and the cell body.

    ``raw`` is the line as written; ``words`` the same with notebook variables
    substituted (what a sub-command reads). For the main line, ``args`` holds the parsed
    options as written; the properties give each value unquoted and substituted."""

    raw: tuple[str, ...]
    words: tuple[str, ...]
    cell: str | None
    args: argparse.Namespace | None
    expand: Callable[[str], str] = _no_expansion

    def __repr__(self) -> str:
        """Never the words: ``%sora key <value>`` may carry the key itself."""
        what = f"sub-command {self.subcommand!r}" if self.args is None else "generate"
        return f"<SoraCommand {what}, {len(self.raw)} words>"

    @classmethod
    def parse(cls, line: str, cell: str | None = None,
              expand: Callable[[str], str] = _no_expansion) -> SoraCommand:
        raw = tuple(split(line))
        words = tuple(expand(word) for word in raw)
        if words and words[0] in SUBCOMMANDS:
            if cell is not None and cell.strip():
                raise UsageError(f"%%sora {words[0]} takes no cell body")
            return cls(raw, words, cell, None, expand)
        args = _PARSER.parse_intermixed_args(list(raw))
        return cls(raw, words, cell, args, expand)

    # -- sub-commands ---------------------------------------------------------------------

    @property
    def subcommand(self) -> str | None:
        return self.words[0] if self.args is None else None

    @property
    def rest(self) -> list[str]:
        """A sub-command's own words (variables substituted)."""
        return list(self.words[1:])

    # -- the main line --------------------------------------------------------------------

    def _options(self) -> argparse.Namespace:
        if self.args is None:
            raise UsageError(f"%sora {self.subcommand} takes no generation options")
        return self.args

    def value(self, name: str) -> str | None:
        """Option ``name`` as the user meant it: unquoted, variables substituted."""
        raw = getattr(self._options(), name)
        return self.expand(unquote(raw)) if raw else None

    def flag(self, name: str) -> bool:
        return bool(getattr(self._options(), name))

    @property
    def count(self) -> int:
        """``-n`` as given (argparse's words when it is not a number)."""
        text = self.value("n") or "1"
        try:
            return int(text)
        except ValueError:
            raise UsageError(f"argument -n: invalid int value: {text!r}") from None

    @property
    def n(self) -> int:
        """``-n``, checked to be 1..MAX_VARIATIONS."""
        n = self.count
        if not 1 <= n <= MAX_VARIATIONS:
            raise UsageError(f"%sora: -n must be between 1 and {MAX_VARIATIONS}, not {n}")
        return n

    @property
    def output(self) -> str | None:
        """``-o NAME``, checked once for every part (generate, sweep, storyboard)."""
        return variable_name(self.value("output"))

    @property
    def images(self) -> list[str] | None:
        raw: Sequence[str] | None = self._options().image
        return [self.expand(unquote(i)) for i in raw] if raw else None

    def ratios(self, default: str) -> list[str | None]:
        """``--ratio``'s list (a sweep when it has two), else the default (none with --size)."""
        ratio = self.value("ratio")
        if not ratio:
            return [None if self.value("size") else default]
        return [r.strip() or None for r in ratio.split(",")]

    def seeds(self) -> list[int] | None:
        """``--seed``: one seed, or alternatives ``{1|2|3}`` / ``1,2,3`` (a seed axis)."""
        text = self.value("seed")
        if not text:
            return None
        inner = text.strip()
        if inner.startswith("{") and inner.endswith("}"):
            inner = inner[1:-1].replace("|", ",")
        try:
            return [int(part) for part in inner.split(",") if part.strip()] or None
        except ValueError:
            raise UsageError(f"%sora: --seed takes whole numbers (7, or {{1|2|3}}), not "
                             f"{text[:40]!r}") from None

    def ratio(self, default: str) -> str | None:
        """One ratio: as given, or the default (none with ``--size``)."""
        ratio = self.value("ratio")
        return ratio if ratio else (None if self.value("size") else default)

    @property
    def prompt_words(self) -> str:
        """The prompt on the magic line, as written (variables not substituted)."""
        return " ".join(unquote(w) for w in self._options().prompt).strip()

    def template(self) -> str | None:
        """The prompt as written, before variables are substituted (what a sweep reads)."""
        self.prompt()     # the one "line or body, not both" check
        body = self.cell.strip() if self.cell else ""
        return body or self.prompt_words or None

    def prompt(self) -> str | None:
        """The prompt, variables substituted: the cell body or the line, never both."""
        on_line = self.expand(self.prompt_words).strip() if self.prompt_words else ""
        body = self.expand(self.cell).strip() if self.cell else ""
        if on_line and body:
            raise UsageError("%%sora: give the prompt on the magic line or in the cell "
                             "body, not both")
        return body or on_line or None
