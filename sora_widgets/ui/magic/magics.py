"""``%sora`` / ``%%sora``: generate Sora 2 videos from a notebook cell.

Output design, and why:

* One call, one display slot (a ``display_id``). While jobs run, the slot holds an
  ipywidgets view (``IntProgress`` + an ``HTML`` status line) that the poller thread
  updates by *setting traits only*: output printed or displayed from that thread would
  land in whatever cell runs now.
* When every job has settled, the slot is replaced (``update_display_data``) by plain
  ``text/html`` playing the video's *local copy* published next to the notebook
  (``media.publish_video``: a relative ``src`` JupyterLab serves as ``/files/...``), or
  a base64 ``data:`` URI with ``--embed``. The live widgets are then closed, so the saved
  notebook keeps just that HTML: it plays after reopening, without a kernel and in an
  ``nbconvert --to html`` export written beside the notebook.
* That final update is sent from the poller thread, so it borrows the parent header
  captured when the magic ran (ipykernel >= 7 ``set_thread_parent``). JupyterLab keeps
  every cell's execute future alive, so the update lands in the cell that started the
  job. In plain IPython (no such API) it is simply published. With ``--wait``
  everything happens on the main thread, inside the cell.

Usage errors (bad options, bad input, budget) raise ``UsageError`` before anything
is sent. The API key never reaches an output, a widget trait or a message.
Modelled on anywidget's ``_cellmagic.py`` and jupysql's ``magic.py``.
"""

from __future__ import annotations

import contextlib
import getpass
import keyword
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from IPython.core import magic_arguments as _margs
from IPython.core.error import StdinNotImplementedError, UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import MagicArgumentParser
from IPython.display import display as _display
from IPython.utils.process import arg_split  # type: ignore[attr-defined]
from traitlets import All, Bool, Enum, TraitError, Unicode, observe, validate
from traitlets.config import Configurable

from sora_widgets.core.errors import ConfirmationRequired, SoraError
from sora_widgets.core.lifecycle import Status
from sora_widgets.core.settings import env_key_set, preferences, set_session_key, settings
from sora_widgets.core.text import substitute_names
from sora_widgets.media import publish as media
from sora_widgets.ui import render
from sora_widgets.ui.display import Slot

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from sora_widgets.engine.job import Job

__all__ = ["JobGrid", "SoraMagics", "grid", "install_wait_hook", "load_ipython_extension"]

log = logging.getLogger("sora_widgets.magic")

SUBCOMMANDS = ("jobs", "show", "resume", "cost", "key", "continue")
#: SoraMagics settings shared with the panel through ``config.preferences``.
_SHARED_NAMES = ("default_ratio", "model", "base_url", "autodownload", "embed", "media_dir",
                 "api_style")
MAX_VARIATIONS = 10
Bundle = dict[str, str]

# IPython leaves these untyped; typed aliases keep ``mypy --strict`` meaningful here.
_Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]
argument = cast("Callable[..., _Decorator]", _margs.argument)
magic_arguments = cast("Callable[..., _Decorator]", _margs.magic_arguments)
display = cast("Callable[..., object]", _display)
_new_parser = cast("Callable[..., MagicArgumentParser]", MagicArgumentParser)


def _unquote(token: str) -> str:
    """IPython's ``arg_split`` keeps quotes on POSIX; a quoted token means its content."""
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "\"'":
        return token[1:-1]
    return token


def _split(line: str) -> list[str]:
    try:
        return list(arg_split(line, strict=True))
    except ValueError as exc:  # "No closing quotation"
        raise UsageError(f"%sora: {exc}") from None


def _publish(job: Job, media_dir: str) -> str | None:
    """Copy the saved video next to the notebook (the UI's act) and return its relative src."""
    if job.local_path is None or not job.local_path.is_file():
        return None
    try:
        return media.publish_video(job.local_path, media_dir)
    except (OSError, ValueError):
        return None


def _poster(job: Job) -> str | None:
    """The still shown before (or instead of) the video: inline, a few KB (Lab does not
    resolve a relative ``poster``)."""
    from sora_widgets.media.posters import poster_data_uri

    return poster_data_uri(job.poster_path)


def _thumbnail(job: Job) -> str | None:
    """A row's still, inline (a few KB): listing history writes no file."""
    from sora_widgets.media.posters import poster_data_uri

    return poster_data_uri(job.poster_path, width=160)


def _show_live(shell: InteractiveShell, jobs: Sequence[Job], look: _Look, *, widgets: bool,
              wait: bool, reused: Mapping[str, bool] | None = None) -> None:
    """Show ``jobs`` in one live slot (progress, then ``look``'s players); with ``wait``,
    block the cell until every job is finished."""
    view = _LiveView(shell, jobs, look, widgets=widgets, wait=wait, reused=reused)
    view.show()
    if wait and not view.finished:
        view.wait()


def _settled(job: Job) -> bool:
    """Nothing more will change here: settled (true already while the observers of that
    transition run), or no longer tracked by this process."""
    return job.settled or job.finished


@dataclass(frozen=True)
class _Look:
    """How finished jobs are shown, fixed when the magic runs (``%config`` may change later)."""

    embed: bool = False
    autodownload: bool = True
    media_dir: str = media.DEFAULT_MEDIA_DIR

    def job(self, job: Job, *, badge: bool = True,
            reused: bool | None = None) -> tuple[str, str]:
        """(html, text) of a settled job: the player of the local copy, or the red box."""
        if job.status != Status.COMPLETED:
            return (render.job_html(job, badge=badge, reused=reused),
                    render.job_text(job, reused=reused))
        path = job.local_path if job.local_path is not None and job.local_path.is_file() else None
        src: str | None = None
        note: str | None = None
        if path is None:
            why = job.download_error or "no file"
            note = f"the video could not be saved ({why}); job.download() retries"
            src = job.video_url
        elif self.embed:
            src = media.data_uri(path)
            note = (f"embedded in this notebook: {render.size_text(path.stat().st_size)} mp4, "
                    f"{render.size_text(len(src))} as base64")
        elif self.autodownload:
            src = _publish(job, self.media_dir)
            if src is None:
                note = "could not copy the video next to the notebook; the relay's link expires"
                src = job.video_url
        else:
            note = "SoraMagics.autodownload is off: this plays the relay's link, which expires"
            src = job.video_url
        return (render.job_html(job, src, note=note, poster=_poster(job),
                                media_dir=self.media_dir, badge=badge,
                                reused=reused),
                render.job_text(job, src, reused=reused))

    def bundle(self, jobs: Sequence[Job], reused: Mapping[str, bool] | None = None) -> Bundle:
        reused = reused or {}
        once = _badge_once(jobs)
        parts = [self.job(j, badge=not once, reused=reused.get(j.local_id)) for j in jobs]
        if len(parts) == 1:
            html, text = parts[0]
        else:
            html = render.grid_html((p[0] for p in parts),
                                    header=render.EMULATOR_BADGE if once else None)
            text = "\n".join(p[1] for p in parts)
        return {"text/html": html, "text/plain": text}


def _badge_once(jobs: Sequence[Job]) -> bool:
    """Several emulator jobs in one output: "local emulator — no charge" is said once, above
    them, not on every tile."""
    return len(jobs) > 1 and all(j.emulator for j in jobs)


def _status_bundle(jobs: Sequence[Job], reused: Mapping[str, bool] | None = None) -> Bundle:
    reused = reused or {}
    once = _badge_once(jobs)
    htmls = [render.status_html(j, badge=not once, reused=reused.get(j.local_id))
             for j in jobs]
    html = htmls[0] if len(htmls) == 1 else render.grid_html(
        htmls, header=render.EMULATOR_BADGE if once else None)
    return {"text/html": html,
            "text/plain": "\n".join(render.job_text(j, reused=reused.get(j.local_id))
                                    for j in jobs)}


#: How often a live view refreshes elapsed time and the ETA (a daemon thread, traits only).
TICK_SECONDS = 1.0
#: Set while the magic itself waits on its jobs (``--wait``): ``job.wait()``'s progress
#: hook stays quiet then, the live view already shows it.
_own_wait = threading.local()


class _LiveView:
    """One display slot: live progress while jobs run, then the final HTML in its place.

    The live part is ipywidgets (in a kernel): traits set from the engine's events thread
    and from a one-second ticker (elapsed time, ETA). If the kernel restarts, JupyterLab
    marks those views disconnected and CSS turns them into "kernel restarted — run
    ``%sora resume``" (nothing of ours runs any more to say it)."""

    def __init__(self, shell: InteractiveShell, jobs: Sequence[Job], look: _Look, *,
                 widgets: bool, wait: bool, reused: Mapping[str, bool] | None = None) -> None:
        self.shell = shell
        self.jobs = list(jobs)
        self.look = look
        self._use_widgets = widgets
        self._background = not wait
        self._lock = threading.RLock()
        self._finished = False
        self._slot: Slot | None = None
        self._bars: dict[str, tuple[Any, Any]] = {}
        self._widgets: list[Any] = []
        self._stop = threading.Event()
        #: Reused in *this* call (the handle's ``cached`` flag may change later).
        self.reused = dict(reused) if reused is not None else {
            j.local_id: bool(j.cached) for j in self.jobs}

    @property
    def finished(self) -> bool:
        return self._finished

    def show(self) -> None:
        """Display the slot (main thread); already settled jobs go straight to the result."""
        if all(_settled(j) for j in self.jobs):
            self._finished = True
            self._slot = Slot(self.shell, self.look.bundle(self.jobs, self.reused))
            return
        if self._use_widgets:
            self._slot = Slot(self.shell, self._widget_bundle(self._build_widgets()))
        else:
            self._slot = Slot(self.shell, _status_bundle(self.jobs, self.reused))
        for job in self.jobs:  # observe after displaying: an update never precedes its slot
            job.observe(self._on_change, names=All)
            self._refresh(job)
        if self._use_widgets:
            threading.Thread(target=self._tick, daemon=True,
                             name="sora-widgets-magic-ticker").start()
        if self._background and all(_settled(j) for j in self.jobs):
            self._finish()

    def wait(self) -> None:
        """``--wait``: block (Ctrl-C leaves the jobs running), then finish on the main thread."""
        _own_wait.on = True
        try:
            for job in self.jobs:
                with contextlib.suppress(SoraError):  # failures are shown, not raised
                    job.wait()
        except KeyboardInterrupt:
            with self._lock:
                self._background = True
            print("Interrupted: the job keeps running (and is paid for); its result "
                  "will replace the progress above.")
            if not all(_settled(j) for j in self.jobs):
                return
        finally:
            _own_wait.on = False
        self._finish()

    def dismiss(self, bundle: Bundle) -> None:
        """End the live view with ``bundle`` in its place (``job.wait()``'s progress)."""
        if self._end():
            self._replace(bundle)

    def _end(self) -> bool:
        """Stop the ticker and the observers once; False if the view had already ended."""
        with self._lock:
            if self._finished:
                return False
            self._finished = True
        self._stop.set()
        self._unobserve()
        return True

    def _replace(self, bundle: Bundle) -> None:
        assert self._slot is not None
        self._slot.update(bundle)
        self._close_widgets()

    # -- widgets (created on the main thread, then only their traits change) -----------------

    @staticmethod
    def _widget_bundle(root: Any) -> Bundle:
        bundle = dict(root._repr_mimebundle_())
        bundle["text/plain"] = "Sora: live progress (needs the running kernel)"
        return bundle

    def _build_widgets(self) -> Any:
        import ipywidgets as w

        once = _badge_once(self.jobs)
        cells = []
        for job in self.jobs:
            status = w.HTML(value=self._status(job, once))
            bar = w.IntProgress(value=int(job.progress), min=0, max=100, bar_style="",
                                layout=w.Layout(width="320px", max_width="100%"))
            self._bars[job.local_id] = (bar, status)
            cell = w.VBox([status, bar], layout=w.Layout(min_width="0"))
            cells.append(cell)
            self._widgets += [status, bar, cell]
        restart = w.HTML(value=render.restart_html("magic"))
        restart.add_class("sora-restart")
        parts: list[Any] = []
        if len(cells) == 1:
            body = cells[0]
        else:
            if once:
                head = w.HTML(value=render.grid_html([], header=render.EMULATOR_BADGE))
                parts.append(head)
                self._widgets.append(head)
            columns = render.grid_columns(len(cells))
            body = w.GridBox(cells, layout=w.Layout(
                grid_template_columns=f"repeat({columns}, minmax(0, 1fr))", grid_gap="12px"))
        body.add_class("sora-running")
        root = w.VBox([*parts, body, restart])
        root.add_class("sora-live")
        if len(cells) > 1:
            self._widgets.append(body)
        self._widgets += [restart, root]
        return root

    def _status(self, job: Job, once: bool | None = None) -> str:
        once = _badge_once(self.jobs) if once is None else once
        return render.status_html(job, bar=False, badge=not once,
                                  reused=self.reused.get(job.local_id))

    def _refresh(self, job: Job, *, status_only: bool = False) -> None:
        with self._lock:
            pair = self._bars.get(job.local_id)
            if pair is None or self._finished:
                return
            bar, status = pair
            if not status_only:
                bar.value = int(job.progress)
                bar.bar_style = render.bar_style(job)
            status.value = self._status(job)

    def _tick(self) -> None:
        """Elapsed time and the ETA move every second, not only when a poll lands."""
        while not self._stop.wait(TICK_SECONDS):
            if self._finished:
                return
            try:
                for job in self.jobs:
                    if not job.done:
                        self._refresh(job, status_only=True)
            except Exception:   # a widget closed under us: the view is over
                log.debug("live view ticker stopped", exc_info=True)
                return

    # -- the engine's events thread ---------------------------------------------------------

    def _on_change(self, change: dict[str, Any]) -> None:
        """Runs on the engine's events thread: traits only, and never raise."""
        try:
            self._refresh(change["owner"])
            if self._background and all(_settled(j) for j in self.jobs):
                self._finish()
        except Exception:
            log.exception("could not update the %%sora output")

    def _unobserve(self) -> None:
        for job in self.jobs:
            with contextlib.suppress(ValueError):
                job.unobserve(self._on_change, names=All)

    def _finish(self) -> None:
        """Replace the live slot by the final HTML, in the cell that started the jobs."""
        if self._end():
            self._replace(self.look.bundle(self.jobs, self.reused))

    def _close_widgets(self) -> None:
        """Close every model we made (layouts and styles too), so no state is saved."""
        for widget in reversed(self._widgets):
            for part in (widget, getattr(widget, "layout", None), getattr(widget, "style", None)):
                if part is not None:
                    with contextlib.suppress(Exception):
                        part.close()


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

    @magic_arguments()
    @argument("prompt", nargs="*", help="The prompt ({var} and $var interpolate notebook "
              "variables). In %%%%sora, the cell body is the prompt.")
    @argument("-r", "--ratio", metavar="RATIO", help="16:9 or 9:16, or both: 16:9,9:16 "
              "(a sweep) "
              "(default: SoraMagics.default_ratio).")
    @argument("-i", "--image", action="append", metavar="URL_OR_FILE",
              help="First-frame reference image: http(s) URL or local file (repeatable).")
    @argument("--model", help="Model name (default: SoraMagics.model or SORA_MODEL).")
    @argument("--seconds", metavar="S", help="Video length where the relay's style allows "
              "a choice (openai: 4, 8 or 12; the seed's relay: 12 only).")
    @argument("--size", metavar="WxH", help="Video size where the style has sizes (openai: "
              "1280x720, 720x1280; sora-2-pro also 1792x1024, 1024x1792).")
    @argument("--force", action="store_true",
              help="Submit (and pay) again even if an identical request was made before.")
    @argument("-n", type=int, default=1, metavar="N", dest="n",
              help=f"N variations in parallel, shown as a grid (1-{MAX_VARIATIONS}); the "
              "total cost is stated before submitting.")
    @argument("--wait", action="store_true", help="Block until the videos are done.")
    @argument("-o", "--output", metavar="NAME",
              help="Store the Job (a list of Jobs with -n > 1) in this variable.")
    @argument("--embed", action="store_true",
              help="Inline the finished video as base64 (self-contained notebook).")
    @argument("--yes", action="store_true",
              help="Confirm a call whose new charges pass SORA_CONFIRM_USD (default $5).")
    @argument("--storyboard", action="store_true",
              help="%%%%sora only: each paragraph of the cell is a shot, each next shot "
              "continues from the last frame of the one before; the whole storyboard is "
              "quoted first, and the clips are stitched into one film.")
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
          %sora jobs [-n LIMIT]        history: status, cost, thumbnails
          %sora show ID [--embed] [--wait]   re-render a past job
          %sora resume                 re-attach unfinished jobs (after a kernel restart)
          %sora cost                   spend this session and all time
          %sora key [--forget]         ask for an API key (getpass; memory only, never shown)
          %sora continue ID "prompt"   a new clip that starts from the last frame of job ID
        %%sora --storyboard: one shot per paragraph (blank lines between), then one film.
        A prompt that starts with one of these words must be quoted: %sora "show me a cat".
        ``{name}`` and ``$name`` take a notebook variable; nothing else is evaluated.
        """
        install_wait_hook()
        raw = _split(line)
        tokens = [self._expand(t) for t in raw]
        if tokens and tokens[0] in SUBCOMMANDS:
            if cell is not None and cell.strip():
                raise UsageError(f"%%sora {tokens[0]} takes no cell body")
            try:
                getattr(self, f"_cmd_{tokens[0]}")(tokens[1:])
            except UsageError as exc:
                raise UsageError(_prompt_hint(str(exc), tokens)) from None
            return
        parser = cast(MagicArgumentParser, SoraMagics.sora.parser)  # type: ignore[attr-defined]
        args = parser.parse_intermixed_args(tokens)
        if args.storyboard:
            from sora_widgets.ui.magic.storyboard import run_storyboard

            run_storyboard(self, args, cell)
            return
        self._generate(args, cell, raw)

    # -- generating -------------------------------------------------------------------------

    def _prompt(self, words: Sequence[str], cell: str | None) -> str | None:
        on_line = " ".join(_unquote(w) for w in words).strip()
        body = self._expand(cell).strip() if cell else ""
        if on_line and body:
            raise UsageError("%%sora: give the prompt on the magic line or in the cell "
                             "body, not both")
        return body or on_line or None

    def _expand(self, text: str) -> str:
        """``{name}`` / ``$name``: plain notebook variables only, never an expression."""
        namespace = self.shell.user_ns if self.shell is not None else {}
        return substitute_names(text, namespace)

    def _generate(self, args: Any, cell: str | None, raw: Sequence[str] = ()) -> None:
        from sora_widgets.core.models import VideoRequest
        from sora_widgets.studio.studio import default_studio

        n = int(args.n)
        if not 1 <= n <= MAX_VARIATIONS:
            raise UsageError(f"%sora: -n must be between 1 and {MAX_VARIATIONS}, not {n}")
        name = _unquote(args.output) if args.output else None
        if name is not None and (not name.isidentifier() or keyword.iskeyword(name)):
            raise UsageError(f"%sora: -o needs a Python variable name, not {name[:40]!r}")
        prompt = self._prompt(args.prompt, cell)
        from sora_widgets.ui.magic.sweep import run_sweep

        if run_sweep(self, args, cell, raw):    # {a|b} alternatives, or a list of ratios
            return
        size = _unquote(args.size) if args.size else None
        ratio = _unquote(args.ratio) if args.ratio else (None if size else self.default_ratio)
        images = [_unquote(i) for i in args.image] if args.image else None
        try:
            current = settings()
            model = _unquote(args.model) if args.model else preferences.model_or(current)
            request = VideoRequest.create(prompt, aspect_ratio=ratio, image=images,
                                          model=model, size=size,
                                          seconds=_unquote(args.seconds) if args.seconds else None)
        except SoraError as exc:
            raise UsageError(f"%sora: {exc}") from None
        look = self._look(embed=bool(args.embed))
        studio = default_studio()
        try:
            if n > 1:   # what it will cost, before anything is sent
                quote = studio.quote(request, n, force=bool(args.force),
                                     base_url=self.base_url or None)
                text = f"{n} variations: {quote.text}"
                display({"text/html": f"<div class='sora-cost'>{render.escape(text)}</div>",
                         "text/plain": text}, raw=True)
            jobs = studio.submit(request, n, force=bool(args.force), confirm=bool(args.yes),
                                 base_url=self.base_url or None)
        except SoraError as exc:  # raised before the POST (budget, emulator missing...)
            hint = " Add --yes to confirm." if isinstance(exc, ConfirmationRequired) else ""
            raise UsageError(f"%sora: {exc}{hint}") from None
        if name is not None:
            self.shell.user_ns[name] = jobs[0] if n == 1 else jobs  # type: ignore[union-attr]
        self._present(jobs, look, wait=bool(args.wait))

    def _widgets_live(self) -> bool:
        """Live progress as ipywidgets: in a kernel (where they render), unless set."""
        if self.live_widgets is not None:
            return self.live_widgets
        return getattr(self.shell, "kernel", None) is not None

    def _look(self, *, embed: bool = False) -> _Look:
        return _Look(embed=embed or self.embed, autodownload=self.autodownload,
                     media_dir=self.media_dir)

    def _present(self, jobs: Sequence[Job], look: _Look, *, wait: bool,
                 reused: Mapping[str, bool] | None = None) -> None:
        """Show ``jobs`` in one slot; ``reused``: which came from the cache in this call
        (default: the handles' ``cached`` flags)."""
        assert self.shell is not None
        _show_live(self.shell, jobs, look, widgets=self._widgets_live(), wait=wait,
                  reused=reused)

    # -- sub-commands -----------------------------------------------------------------------

    @staticmethod
    def _parser(prog: str) -> MagicArgumentParser:
        return _new_parser(prog=f"%sora {prog}", description=None)

    def _cmd_jobs(self, rest: list[str]) -> None:
        """History; saved videos are published next to the notebook to serve as thumbnails."""
        from sora_widgets.studio.studio import default_studio

        parser = self._parser("jobs")
        parser.add_argument("-n", type=int, default=20, dest="limit", metavar="LIMIT")
        parser.add_argument("--starred", action="store_true", help="starred jobs only")
        parser.add_argument("--team", action="store_true",
                            help="everyone's jobs on a shared journal (SORA_JOURNAL_URL)")
        args = parser.parse_args(rest)
        jobs = default_studio().jobs(max(1, args.limit),
                                     starred=True if args.starred else None, team=args.team)
        sources = {}
        posters = {}
        for job in jobs:
            src = render.local_src(job, self.media_dir)
            if src is not None:
                sources[job.local_id] = src
            # A small inline still per row: history writes no file next to the notebook.
            still = _thumbnail(job)
            if still is not None:
                posters[job.local_id] = still
        text = "\n".join(render.job_text(j, sources.get(j.local_id)) for j in jobs)
        display({"text/html": render.jobs_table_html(jobs, sources, posters),
                 "text/plain": text or "No jobs yet."}, raw=True)

    def _cmd_show(self, rest: list[str]) -> None:
        from sora_widgets.studio.studio import default_studio

        parser = self._parser("show")
        parser.add_argument("ref", metavar="ID", help="task id or local id (or a prefix)")
        parser.add_argument("--embed", action="store_true")
        parser.add_argument("--wait", action="store_true")
        args = parser.parse_args(rest)
        try:
            job = default_studio().get(_unquote(args.ref))
        except SoraError as exc:
            raise UsageError(f"%sora show: {exc}") from None
        self._present([default_studio().track(job)], self._look(embed=args.embed),
                      wait=args.wait, reused={job.local_id: False})

    def _cmd_resume(self, rest: list[str]) -> None:
        from sora_widgets.studio.storyboard import resume_storyboards
        from sora_widgets.studio.studio import default_studio
        from sora_widgets.ui.magic.storyboard import show_storyboard

        self._parser("resume").parse_args(rest)
        jobs = default_studio().resume()
        boards = resume_storyboards(default_studio())   # unfinished storyboards go on
        if not jobs and not boards:
            text = "Nothing to resume: every job in the journal is finished."
            display({"text/html": f"<div>{render.escape(text)}</div>", "text/plain": text},
                    raw=True)
            return
        if jobs:
            self._present(jobs, self._look(), wait=False,
                          reused=dict.fromkeys((j.local_id for j in jobs), False))
        for board in boards:
            show_storyboard(self, board)

    def _cmd_continue(self, rest: list[str]) -> None:
        from sora_widgets.ui.magic.storyboard import continue_command

        continue_command(self, rest)

    def _cmd_cost(self, rest: list[str]) -> None:
        from sora_widgets.studio.studio import default_studio

        parser = self._parser("cost")
        parser.add_argument("--team", action="store_true",
                            help="spend by user and day this month, everyone on this journal")
        args = parser.parse_args(rest)
        try:
            current = settings()
            if args.team:
                rows = default_studio().team_spend()
                display({"text/html": render.team_spend_html(rows),
                         "text/plain": render.team_spend_text(rows)}, raw=True)
                return
            spend = default_studio().spend()
        except SoraError as exc:
            raise UsageError(f"%sora cost: {exc}") from None
        session, all_time = spend["session"], spend["all_time"]
        text = (f"This session: ${session.charged_usd:.2f}; all time: "
                f"${all_time.charged_usd:.2f} ({all_time.jobs} paid jobs)")
        if current.uses_emulator:
            text += f". No SORA_API_KEY: new jobs run on the {render.EMULATOR_BADGE}."
        display({"text/html": render.spend_html(session, all_time, current.budget_usd,
                                                emulator=current.uses_emulator),
                 "text/plain": text}, raw=True)

    def _cmd_key(self, rest: list[str]) -> None:
        if rest == ["--forget"]:
            set_session_key(None)
            print("Forgot the session key.")
            return
        if rest:  # never echo what was typed: it may be the key itself
            raise UsageError(
                "%sora key takes no value: a key typed into a cell is saved in the notebook "
                "and its history. Run `%sora key` alone and paste the key at the prompt "
                "(or `%sora key --forget`).")
        try:
            value = getpass.getpass("Sora API key (kept in memory for this session only): ")
        except StdinNotImplementedError:
            raise UsageError("%sora key: this frontend cannot ask for input; set "
                             "SORA_API_KEY in the kernel's environment instead") from None
        if not value.strip():
            print("No key entered; nothing changed.")
            return
        set_session_key(value)
        message = "Key set for this session: kept in memory only, never saved or shown."
        if env_key_set():
            message += " Note: SORA_API_KEY is set in the environment and takes precedence."
        print(message)


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """``%load_ext sora_widgets``: register the magics once (loading again is harmless)."""
    if any(isinstance(c, SoraMagics) for c in getattr(ipython, "configurables", [])):
        return
    ipython.register_magics(SoraMagics(shell=ipython))
    install_wait_hook()
    events = getattr(ipython, "events", None)
    if events is not None:
        events.register("pre_run_cell", _before_cell)


def _plain_help(doc: str | None) -> str:
    """``%sora?`` as a person reads it: IPython's usage block starts with a Sphinx ``::``
    and the docstring's literals are ``quoted``; say 'Usage:' and drop the quotes."""
    text = doc or ""
    if text.startswith("::\n\n"):
        text = "Usage:\n" + text[4:]
    return text.replace("``", "")


SoraMagics.sora.__doc__ = _plain_help(SoraMagics.sora.__doc__)


def _prompt_hint(message: str, tokens: Sequence[str]) -> str:
    """A sub-command that failed on extra words: the user probably wrote a prompt that
    starts with that word; say what to type instead (never for ``key``: its words may be
    the key itself)."""
    if tokens[0] == "key" or len(tokens) < 2:
        return message
    prompt = " ".join(tokens).replace('"', "'")
    return (f"{message}\n'{tokens[0]}' is a %sora sub-command. If you meant a video of "
            f"that prompt, quote it:\n    %sora \"{prompt}\"")


# -- job.wait() in a notebook ---------------------------------------------------------------


def _preferred_look() -> _Look:
    """How finished jobs look outside a magic call (``%config SoraMagics.*`` settings)."""
    return _Look(embed=preferences.embed, autodownload=preferences.autodownload,
                 media_dir=preferences.media_dir)


def _live_in(shell: Any) -> bool:
    """Live ipywidgets views in this shell: the magics' setting, else only in a kernel."""
    magics = next((c for c in getattr(shell, "configurables", ())
                   if isinstance(c, SoraMagics)), None)
    if magics is not None:
        return magics._widgets_live()
    return getattr(shell, "kernel", None) is not None


def _wait_progress(job: Job) -> Callable[[], None] | None:
    """``engine.wait_hook``: while ``job.wait()`` blocks a notebook cell, show the job's
    live progress there; when the wait ends, leave one short line in its place (the
    result itself is what the cell shows next, e.g. ``job``)."""
    if threading.current_thread() is not threading.main_thread() or getattr(
            _own_wait, "on", False):
        return None
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None or not _live_in(shell):
        return None
    view = _LiveView(shell, [job], _preferred_look(), widgets=True, wait=True,
                     reused={job.local_id: False})
    view.show()
    if view.finished:
        return None
    started = time.monotonic()

    def done() -> None:
        look = _preferred_look()
        if job.status == Status.COMPLETED and look.autodownload and not look.embed:
            _publish(job, look.media_dir)   # so `job` displayed next plays a durable copy
        waited = render._fmt_seconds(time.monotonic() - started)
        ident = job.id or job.local_id[:8]
        if _settled(job) and job.done:
            words = f"waited {waited} for job {ident}: {job.status.replace('_', ' ')}"
        else:
            words = (f"stopped waiting after {waited}: job {ident} keeps running "
                     "(wait() again, or display it)")
        view.dismiss({"text/html": f"<div class='sora-waited' style='color: #666; "
                                   f"font-size: 12px'>{render.escape(words)}</div>",
                      "text/plain": words})

    return done


def install_wait_hook() -> None:
    """Let ``job.wait()`` show progress in this kernel (once the engine is imported: the
    extension itself stays light to load)."""
    engine = sys.modules.get("sora_widgets.engine.job")
    if engine is not None and getattr(engine, "wait_hook", None) is not _wait_progress:
        engine.__dict__["wait_hook"] = _wait_progress


def _before_cell(*_args: Any) -> None:
    install_wait_hook()


# -- sw.grid --------------------------------------------------------------------------------


class JobGrid:
    """Jobs side by side, as ``%sora -n`` shows them: live progress, then the players
    (playing the copies published next to the notebook, so saved notebooks and exports
    keep them); a job that came from the cache says "reused — no new charge". Made by
    :func:`grid`; display it (the last line of a cell)."""

    def __init__(self, jobs: Iterable[Job], *, wait: bool = False) -> None:
        self.jobs = list(jobs)
        self.wait = wait
        if not self.jobs:
            raise ValueError("sw.grid() needs at least one job")

    def __repr__(self) -> str:
        return f"<JobGrid of {len(self.jobs)} jobs>"

    def __len__(self) -> int:
        return len(self.jobs)

    def _ipython_display_(self) -> None:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is None:   # pragma: no cover - IPython calls this only from a shell
            return
        install_wait_hook()
        _show_live(shell, self.jobs, _preferred_look(), widgets=_live_in(shell),
                  wait=self.wait)

    def _repr_html_(self) -> str:
        """The grid as it is now (finished players published next to the notebook)."""
        return _preferred_look().bundle(self.jobs)["text/html"]


def grid(jobs: Iterable[Job], *, wait: bool = False) -> JobGrid:
    """``sw.grid(jobs)``: the jobs side by side (3 in a row, 4 as 2 × 2), live progress
    first, then the players; ``wait=True`` blocks the cell until all are finished."""
    return JobGrid(jobs, wait=wait)
