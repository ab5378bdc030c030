"""Storyboards: shot after shot, each starting from the last frame of the one before, then
one film of them all.

``storyboard(["a fox wakes up", "the fox runs", "the fox jumps into the river"])`` makes
shot 1 from its prompt (and an optional first-frame image), then each next shot with
``Studio.continue_from`` on the shot before it, and finally stitches the clips into one
mp4. It returns a :class:`Storyboard` at once; a driver thread does the rest and only sets
the board's traits (``stage``, ``current``, ``jobs``, ``film_path``, ``error``), so a
notebook never blocks and a view can follow along.

Money, and why it is arranged so:

* The quote of the **whole** storyboard is taken, and refused (``ConfirmationRequired``,
  ``BudgetExceededError``), before anything is sent. Shot 1's real request is quoted; a
  later shot's request needs its parent's last frame, so it is quoted as new unless the
  parent is already finished (then its real request is built and the cache decides).
* The plan (shots, the job that made each, parent links, the film's path) is saved in the
  journal (``kind="storyboard"``) before the first submit and again each time a shot gets
  its job. A crash or a restart loses nothing: :func:`resume_storyboards` (``%sora resume``)
  continues every unfinished plan. A shot whose job is recorded is never submitted again;
  a shot whose parent is still running waits for it. A resumed shot is submitted without
  ``force``, so even a crash between the submit and the plan's update reuses that submit.
* A shot that fails stops the chain with a message saying which shot, why, and what the
  shots so far cost. Running the same storyboard again reuses the finished shots (free)
  and submits again from the failed one (quoted as a new charge first); a resume never
  re-pays a failed shot by itself.

The plan's id is derived from the storyboard (shot 1's request, the later prompts, the
model, the relay), so running the same cell again finds its plan. ``force=True`` starts a
new take of every shot (all quoted as new) under the same id.

Core module: no IPython, no ipywidgets (views live in ``ui/``). The board and its driver
are in :mod:`sora_widgets.studio.board`; this module makes and resumes storyboards.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sora_widgets.core.errors import SoraError, ValidationError
from sora_widgets.core.models import VideoRequest
from sora_widgets.core.settings import preferences, settings
from sora_widgets.studio.board import (
    ACTIVE,
    ACTIVE_LOCK,
    ENDED,
    KIND,
    PLAN_VERSION,
    Stage,
    Storyboard,
)
from sora_widgets.studio.film import stitch

if TYPE_CHECKING:
    from sora_widgets.studio.studio import Studio

__all__ = ["ENDED", "KIND", "MAX_SHOTS", "Stage", "Storyboard", "resume_storyboards",
           "stitch", "storyboard"]

log = logging.getLogger("sora_widgets.studio.storyboard")

MAX_SHOTS = 50
#: The boards being made now (kept under this name for the tests' resumer script).
_active = ACTIVE


def _plan_id(request: VideoRequest, shots: Sequence[str], model: str, backend: str) -> str:
    """The same storyboard gets the same plan (a re-run finds its shots)."""
    canonical = json.dumps({"first": request.fingerprint(), "shots": list(shots[1:]),
                            "model": model, "backend": backend}, sort_keys=True)
    return "sb-" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _find_plan(studio: Studio, plan_id: str) -> dict[str, Any] | None:
    for found, body in studio.journal().plans(KIND, done=None):
        if found == plan_id and body.get("version") == PLAN_VERSION:
            return body
    return None


def _check_shots(shots: Sequence[str]) -> list[str]:
    if isinstance(shots, (str, bytes)):
        raise ValidationError("shots: a list of prompts, one per shot (not one string)",
                              field="shots")
    prompts = []
    for index, shot in enumerate(shots):
        if not isinstance(shot, str) or not shot.strip():
            raise ValidationError(f"shot {index + 1}: needs a prompt", field="shots")
        prompts.append(shot.strip())
    if not prompts:
        raise ValidationError("shots: give at least one shot", field="shots")
    if len(prompts) > MAX_SHOTS:
        raise ValidationError(f"shots: at most {MAX_SHOTS}, not {len(prompts)}", field="shots")
    return prompts


def storyboard(shots: Sequence[str], *, aspect_ratio: str = "16:9",
               image: str | Path | Sequence[str | Path] | None = None,
               model: str | None = None, force: bool = False, confirm: bool = False,
               film: str | Path | None = None) -> Storyboard:
    """Make a film shot by shot; returns a :class:`Storyboard` at once.

    Shot 1 comes from its prompt (and ``image``, its first frame), each next shot starts
    from the last frame of the one before. The whole storyboard is quoted first and
    refused before anything is sent when it passes a budget (``BudgetExceededError``) or
    ``SORA_CONFIRM_USD`` (``ConfirmationRequired``: pass ``confirm=True``). Running the
    same storyboard again reuses its finished shots for free and continues from the
    first missing one; ``force=True`` pays for a new take of every shot. The film is
    written to ``film`` (default: the videos folder under SORA_WIDGETS_HOME).
    """
    from sora_widgets.studio.studio import default_studio

    studio = default_studio()
    prompts = _check_shots(shots)
    current = settings()
    chosen = model or preferences.model_or(current)
    first = VideoRequest.create(prompts[0], aspect_ratio=aspect_ratio, image=image, model=chosen)
    for index, prompt in enumerate(prompts[1:], start=2):   # bad input fails before paying
        try:
            VideoRequest.create(prompt, aspect_ratio=aspect_ratio, model=chosen)
        except ValidationError as exc:
            raise ValidationError(f"shot {index}: {exc}", field="shots") from None
    backend = studio.backend(current).journal_name
    plan_id = _plan_id(first, prompts, chosen, backend)
    with ACTIVE_LOCK:
        running = ACTIVE.get(plan_id)
    if running is not None:
        if force:
            raise SoraError("this storyboard is being made right now: stop() it first, "
                            "then force a new take")
        return running          # the same storyboard is being made right now: follow it
    body = None if force else _find_plan(studio, plan_id)
    target = Path(film).expanduser().resolve() if film is not None else None
    if body is None:
        body = {
            "version": PLAN_VERSION, "request": first.to_json(), "model": chosen,
            "backend": backend, "force": bool(force),
            "shots": [{"prompt": p, "job": None, "parent": None} for p in prompts],
            "film": str(target or current.videos_dir / f"storyboard-{plan_id[3:15]}.mp4"),
        }
    else:
        body["force"] = False
        if target is not None and str(target) != body["film"]:
            body["film"] = str(target)
            body.pop("stitched", None)
    board = Storyboard(studio, plan_id, body)
    board.take_quote(confirm=confirm, refuse=True)      # raises before anything is sent
    board.save_plan()                                   # the plan exists before any POST
    board.start(retry_failed=True)
    return board


def resume_storyboards(studio: Studio | None = None) -> list[Storyboard]:
    """Continue every unfinished storyboard of the journal (after a crash or a restart).

    No shot is paid twice: a shot whose job is recorded is re-attached (and waited for),
    a missing one is submitted without ``force`` (an identical earlier submit is reused).
    A shot that had failed is not retried here: its storyboard stops and says so. Plans of
    another relay than the one in use now are left for later.
    """
    from sora_widgets.studio.studio import default_studio

    studio = studio or default_studio()
    plans = studio.journal().plans(KIND, done=False)
    if not plans:
        return []
    try:
        backend = studio.backend().journal_name
    except SoraError as exc:       # e.g. a relay URL without its key: nothing can go on now
        log.warning("%d unfinished storyboard(s) wait: %s", len(plans), exc)
        return []
    boards = []
    for plan_id, body in plans:
        if body.get("version") != PLAN_VERSION:
            continue
        with ACTIVE_LOCK:
            running = ACTIVE.get(plan_id)
        if running is not None:
            boards.append(running)
            continue
        if body.get("backend") != backend:
            log.info("storyboard %s belongs to %s, not %s: left for later", plan_id[:12],
                     body.get("backend"), backend)
            continue
        body["force"] = False
        board = Storyboard(studio, plan_id, body)
        try:
            board.take_quote(confirm=True, refuse=False)
        except SoraError as exc:
            log.warning("storyboard %s: no quote (%s)", plan_id[:12], exc)
        board.start(retry_failed=False)
        boards.append(board)
    return boards


class _CallableModule(types.ModuleType):
    """``sw.storyboard(...)`` keeps working once this module is imported: importing a
    submodule binds its name on the package, replacing the function ``sw.storyboard``."""

    def __call__(self, *args: Any, **kwargs: Any) -> Storyboard:
        return storyboard(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
