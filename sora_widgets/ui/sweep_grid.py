"""A sweep's labelled grid in HTML: one axis across, one down, any others as blocks."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING

from sora_widgets.media.posters import poster_data_uri
from sora_widgets.ui.render import badge_plan, escape, job_html

if TYPE_CHECKING:
    from sora_widgets.engine.job import Job
    from sora_widgets.studio.sweeps import Axis, Sweep

__all__ = ["sweep_grid_html"]

#: The height a 16:9 player reaches at its full size (render's 640x360): a grid of mixed
#: shapes is sized so every player in a row is this tall at most, side by side.
PLAYER_HEIGHT = 360
#: The row labels' column (max-content, capped at this) and the grid's gap, in px.
ROW_LABEL_WIDTH = 160
GAP = 8


def _aspect(job: Job | None) -> float | None:
    """Width over height of the job's shape ("16:9", "9:16" or a "1280x720" size)."""
    shape = getattr(job, "aspect_ratio", None) if job is not None else None
    for sep in (":", "x"):
        if isinstance(shape, str) and sep in shape:
            w, _, h = shape.partition(sep)
            if w.strip().isdigit() and h.strip().isdigit() and int(h) > 0 and int(w) > 0:
                return int(w) / int(h)
    return None


def _columns(weights: list[float | None], rows: Axis | None) -> tuple[str, str]:
    """(grid-template-columns, extra style). Columns of one shape share the width equally
    (as they always did); columns of mixed shapes are weighted by their shape, so a 9:16
    column is as narrow as its player and the 16:9 players beside it are as tall as it:
    no wide empty band beside or below a landscape tile (issue 22)."""
    label = "max-content " if rows else ""
    known = [w for w in weights if w is not None]
    if len(set(known)) < 2:
        return f"{label}repeat({len(weights)}, minmax(200px, 1fr))", ""
    widest = max(known)
    fr = [w if w is not None else widest for w in weights]
    # A fixed label column (so the max-width below is exact), about as wide as the longest
    # label at 13px bold, never more than ROW_LABEL_WIDTH (longer labels wrap).
    labels = min(ROW_LABEL_WIDTH, 8 * max(len(v) for v in rows.values) + 16) if rows else 0
    label = f"{labels}px " if rows else ""
    template = label + " ".join(f"minmax(0, {w:.4f}fr)" for w in fr)
    most = sum(PLAYER_HEIGHT * w for w in fr) + GAP * (len(fr) - 1)
    if rows:
        most += labels + GAP
    return template, f"; max-width: {most:.0f}px"


def _default_cell(job: Job, *, badge: bool) -> str:
    return job_html(job, poster=poster_data_uri(job.poster_path), badge=badge)


def sweep_grid_html(sweep: Sweep, cell: Callable[[Job], str] | None = None, *,
                    header: str | None = None) -> str:
    """The labelled grid: the last axis across, the one before down, any others as
    separate blocks. ``cell(job)`` gives each cell's (already safe) HTML; by default the
    job's player with its poster inline. ``header`` defaults to the sweep's quote."""
    if header is None and sweep.quote is not None:
        header = sweep.quote.text
    if cell is None:    # "local emulator — no charge" once: in the quote, or above the grid
        quoted = sweep.quote is not None and sweep.quote.emulator and header == sweep.quote.text
        above, badge = badge_plan(list(sweep), said=quoted)
        header = header or above
        cell = functools.partial(_default_cell, badge=badge)

    font = ("font-family: var(--jp-ui-font-family, sans-serif); font-size: 13px; "
            "line-height: 1.4")
    label = "font-weight: 600; padding: 2px 8px 2px 0; text-align: left"
    muted = "color: var(--jp-ui-font-color2, #666)"
    axes = sweep.axes
    cols = axes[-1] if axes else None
    rows = axes[-2] if len(axes) >= 2 else None
    blocks = axes[:-2]
    by_values = {tuple(c.values.values()): c.job for c in sweep.cells}
    parts = [f"<div class='sora-sweep' style='{font}'>"]
    if header:
        parts.append(f"<div class='sora-sweep-quote' style='margin: 4px 0'>{escape(header)}"
                     "</div>")
    if cols:                                    # rows exist only with columns
        said = (f"rows: {escape(rows.name)} · " if rows else "") + f"columns: {escape(cols.name)}"
        parts.append(f"<div class='sora-sweep-axes' style='{muted}; margin: 2px 0 4px'>"
                     f"{said}</div>")
    for outer in itertools.product(*(b.values for b in blocks)):
        if blocks:
            title = " · ".join(f"{b.name} = {v}" for b, v in zip(blocks, outer, strict=True))
            parts.append(f"<div class='sora-sweep-block' style='{label}; margin-top: 8px'>"
                         f"{escape(title)}</div>")
        weights = []
        for col_value in (cols.values if cols else (None,)):    # the widest shape in each
            shapes = [_aspect(by_values.get(tuple(str(k) for k in (
                *outer, *((r,) if rows else ()), *((col_value,) if cols else ())))))
                for r in (rows.values if rows else (None,))]
            weights.append(max((a for a in shapes if a is not None), default=None))
        template, extra = _columns(weights, rows)
        parts.append(f"<div class='sora-sweep-grid' style='display: grid; gap: {GAP}px; "
                     f"grid-template-columns: {template}; align-items: start{extra}'>")
        if cols:
            if rows:
                parts.append("<div class='sora-sweep-corner'></div>")
            parts.extend(f"<div class='sora-sweep-col' style='{label}'>{escape(v)}</div>"
                         for v in cols.values)
        for row_value in (rows.values if rows else (None,)):
            if rows:
                parts.append(f"<div class='sora-sweep-row' style='{label}; align-self: center; "
                             f"max-width: {ROW_LABEL_WIDTH}px; overflow-wrap: anywhere'>"
                             f"{escape(row_value)}</div>")
            for col_value in (cols.values if cols else (None,)):
                key = (*outer, *((row_value,) if rows else ()),
                       *((col_value,) if cols else ()))
                job = by_values.get(tuple(str(k) for k in key))
                body = cell(job) if job is not None else ""
                parts.append(f"<div class='sora-sweep-cell' style='min-width: 0'>{body}</div>")
        parts.append("</div>")
    parts.append("</div>")
    return "".join(parts)
