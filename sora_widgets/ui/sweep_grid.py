"""A sweep's labelled grid in HTML: one axis across, one down, any others as blocks."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING

from sora_widgets.media.posters import poster_data_uri
from sora_widgets.ui.render import escape, job_html

if TYPE_CHECKING:
    from sora_widgets.engine.job import Job
    from sora_widgets.studio.sweeps import Sweep

__all__ = ["sweep_grid_html"]


def _default_cell(job: Job) -> str:
    return job_html(job, poster=poster_data_uri(job.poster_path))


def sweep_grid_html(sweep: Sweep, cell: Callable[[Job], str] | None = None, *,
                    header: str | None = None) -> str:
    """The labelled grid: the last axis across, the one before down, any others as
    separate blocks. ``cell(job)`` gives each cell's (already safe) HTML; by default the
    job's player with its poster inline. ``header`` defaults to the sweep's quote."""
    if cell is None:
        cell = _default_cell
    if header is None and sweep.quote is not None:
        header = sweep.quote.text

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
        n_cols = len(cols.values) if cols else 1
        template = (f"max-content repeat({n_cols}, minmax(200px, 1fr))" if rows
                    else f"repeat({n_cols}, minmax(200px, 1fr))")
        parts.append(f"<div class='sora-sweep-grid' style='display: grid; gap: 8px; "
                     f"grid-template-columns: {template}; align-items: start'>")
        if cols:
            if rows:
                parts.append("<div class='sora-sweep-corner'></div>")
            parts.extend(f"<div class='sora-sweep-col' style='{label}'>{escape(v)}</div>"
                         for v in cols.values)
        for row_value in (rows.values if rows else (None,)):
            if rows:
                parts.append(f"<div class='sora-sweep-row' style='{label}; align-self: center; "
                             f"max-width: 160px; overflow-wrap: anywhere'>"
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
