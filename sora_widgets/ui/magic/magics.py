"""``%sora`` / ``%%sora``: generate Sora 2 videos from a notebook cell.

This module is the magic's face only, as anywidget's ``_cellmagic.py``: the ``%config``
settings (``SoraMagics.*``, shared with the panel through ``settings.preferences``), the
help text, and one dispatch. The line is parsed once into a
:class:`~sora_widgets.ui.magic.command.SoraCommand` (as jupysql's ``SQLCommand``) that
every part reads; the parts live beside it:

* :mod:`.generate` a plain request (``-n N`` variations), :mod:`.sweep` ``{a|b}``
  alternatives and ratio lists, :mod:`.storyboard` ``%%sora --storyboard``;
* :mod:`.subcommands` ``jobs``, ``show``, ``resume``, ``cost``, ``key``, ``continue``;
* :mod:`.live` the live slot (progress, then the final HTML of :mod:`.look`),
  :mod:`.wait` ``job.wait()``'s progress in a cell, :mod:`.grid` ``sw.grid``.

Usage errors (bad options, bad input, budget) raise ``UsageError`` before anything is
sent. The API key never reaches an output, a widget trait or a message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from traitlets import Bool, Enum, TraitError, Unicode, observe, validate
from traitlets.config import Configurable

from sora_widgets.core.settings import preferences
from sora_widgets.core.text import substitute_names
from sora_widgets.media import publish as media
from sora_widgets.ui.magic.command import SoraCommand, sora_parser
from sora_widgets.ui.magic.kernel import live_widgets
from sora_widgets.ui.magic.wait import before_cell, install_wait_hook

if TYPE_CHECKING:
    from collections.abc import Iterable

    from IPython.core.interactiveshell import InteractiveShell

    from sora_widgets.engine.job import Job
    from sora_widgets.ui.magic.context import MagicContext
    from sora_widgets.ui.magic.grid import JobGrid

# The parts (views, sweeps, storyboards, sub-commands) are imported when a call first needs
# them: ``%load_ext sora_widgets`` registers the magic and its help text only.

__all__ = ["JobGrid", "SoraMagics", "grid", "install_wait_hook", "load_ipython_extension"]

#: SoraMagics settings shared with the panel through ``config.preferences``.
_SHARED_NAMES = ("default_ratio", "model", "base_url", "autodownload", "embed", "media_dir",
                 "api_style")

@magics_class
class SoraMagics(Magics, Configurable):
    """The ``%sora`` magics; defaults are ``%config SoraMagics.<trait> = ...`` settings."""

    default_ratio = Enum(["16:9", "9:16"], "16:9",
                         help="Aspect ratio when --ratio is not given.").tag(config=True)
    model = Unicode("", help="Model when --model is not given (empty: SORA_MODEL, "
                    "else sora-2).").tag(config=True)
    base_url = Unicode("", help="Relay base URL (empty: SORA_BASE_URL); used only with "
                       "an API key.").tag(config=True)
    autodownload = Bool(True, help="Play finished videos from a copy next to the notebook "
                        "(media_dir), so saved and exported notebooks keep them. Off: play "
                        "the relay's link, which expires.").tag(config=True)
    embed = Bool(False, help="Inline finished videos as base64 (a self-contained notebook, "
                 "several MB per video).").tag(config=True)
    api_style = Enum(["", "artifex", "openai"], "", help="The relay's wire style (empty: "
                     "SORA_API_STYLE, else artifex): 'artifex' (aspect_ratio, 12 s) or 'openai' "
                     "(size, seconds, /content).").tag(config=True)
    media_dir = Unicode(media.DEFAULT_MEDIA_DIR, help="Folder, relative to the notebook, "
                        "that finished videos are copied to.").tag(config=True)

    def __init__(self, shell: InteractiveShell | None = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        for name in _SHARED_NAMES:
            setattr(preferences, name, getattr(self, name))
        #: Live progress as ipywidgets (None: only in a Jupyter kernel, where they render).
        self.live_widgets: bool | None = None

    @observe(*_SHARED_NAMES)
    def _share(self, change: dict[str, Any]) -> None:
        """``%config SoraMagics.*`` is the one place the magic and the panel read."""
        setattr(preferences, change["name"], change["new"])

    @validate("media_dir")
    def _check_media_dir(self, proposal: dict[str, Any]) -> str:
        try:
            return media.check_media_dir(str(proposal["value"]))
        except ValueError as exc:
            raise TraitError(str(exc)) from None

    @validate("base_url")
    def _check_base_url(self, proposal: dict[str, Any]) -> str:
        url = str(proposal["value"]).strip().rstrip("/")
        if url and not url.startswith(("http://", "https://")):
            raise TraitError(f"base_url must be an http(s) URL, not {url[:40]!r}")
        return url

    # -- the magic ------------------------------------------------------------------------

    @no_var_expand
    @line_cell_magic
    def sora(self, line: str, cell: str | None = None) -> None:
        """Generate a Sora 2 video (12 s) and play it in this cell.

        %sora a golden retriever puppy running through sunflowers
        %sora "a portrait of a cat" --ratio 9:16 --image https://.../cat.jpg
        %sora a {red|blue} fox {running|sleeping} --ratio 16:9,9:16   (a sweep: 8 jobs)
        %%sora --ratio 9:16 -n 3
        a multi-line prompt in the cell body

        The cell returns at once; progress shows live and the finished video replaces it
        (played from a copy in ./sora_videos/, so saved and exported notebooks keep it).
        Each submit costs $0.90 on the relay (nothing on the local emulator, used when no
        SORA_API_KEY is set). Re-running an identical request shows the earlier result
        for free; --force pays again. With -n N, the N newest earlier identical jobs are
        reused the same way and only the missing variations are submitted (--force: N new).

        Sub-commands:
          %sora jobs [-n LIMIT] [--page P]   history: status, cost, thumbnails
          %sora show ID [--embed] [--wait]   re-render a past job
          %sora resume                 re-attach unfinished jobs (after a kernel restart)
          %sora cost                   spend this session and all time
          %sora key [--forget]         ask for an API key (getpass; memory only, never shown)
          %sora continue ID "prompt"   a new clip that starts from the last frame of job ID
        %%sora --storyboard: one shot per paragraph (blank lines between), then one film.
        A prompt that starts with one of these words must be quoted: %sora "show me a cat".
        ``{name}`` and ``$name`` take a notebook variable; nothing else is evaluated.
        """
        from sora_widgets.ui.magic.generate import run_generate
        from sora_widgets.ui.magic.storyboard import run_storyboard
        from sora_widgets.ui.magic.subcommands import run_subcommand

        install_wait_hook()
        cmd = SoraCommand.parse(line, cell, self.expand)
        ctx = self.context()
        if cmd.subcommand is not None:
            run_subcommand(ctx, cmd)
        elif cmd.flag("storyboard"):
            run_storyboard(ctx, cmd)
        else:
            run_generate(ctx, cmd)

    def expand(self, text: str) -> str:
        """``{name}`` / ``$name``: plain notebook variables only, never an expression."""
        namespace = self.shell.user_ns if self.shell is not None else {}
        return substitute_names(text, namespace)

    def widgets_live(self) -> bool:
        """Live progress as ipywidgets: in a kernel (where they render), unless set."""
        return live_widgets(self.shell, self.live_widgets)

    def context(self) -> MagicContext:
        """This call's settings, as the magic's parts read them."""
        from sora_widgets.ui.magic.context import MagicContext
        from sora_widgets.ui.magic.look import Look

        look = Look(embed=self.embed, autodownload=self.autodownload,
                    media_dir=self.media_dir)
        return MagicContext(shell=self.shell, look=look, default_ratio=self.default_ratio,
                            base_url=self.base_url or None, widgets=self.widgets_live())


def grid(jobs: Iterable[Job], *, wait: bool = False) -> JobGrid:
    """``sw.grid(jobs)``: the jobs side by side (see :mod:`.grid`)."""
    from sora_widgets.ui.magic.grid import grid as make

    return make(jobs, wait=wait)


def __getattr__(name: str) -> object:
    """``JobGrid`` on first use (the class lives in :mod:`.grid`)."""
    if name == "JobGrid":
        from sora_widgets.ui.magic.grid import JobGrid

        return JobGrid
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """``%load_ext sora_widgets``: register the magics once (loading again is harmless)."""
    if any(isinstance(c, SoraMagics) for c in getattr(ipython, "configurables", [])):
        return
    ipython.register_magics(SoraMagics(shell=ipython))
    install_wait_hook()
    events = getattr(ipython, "events", None)
    if events is not None:
        events.register("pre_run_cell", before_cell)


def _plain_help(doc: str | None) -> str:
    """``%sora?`` as a person reads it: the options first (IPython's usage block, which
    starts with a Sphinx ``::``), then the docstring; 'Usage:' and no ``quotes``."""
    text = sora_parser(description=doc).format_help()
    if text.startswith("::\n\n"):
        text = "Usage:\n" + text[4:]
    return text.replace("``", "")


SoraMagics.sora.__doc__ = _plain_help(SoraMagics.sora.__doc__)
