"""A sweep mixing 16:9 and 9:16, laid out in Chromium: no wide empty band beside its
16:9 tiles (issue 22). The grid's HTML is the sweep's own (``sweep_grid_html`` through
its repr), its players the embedded emulator's real mp4s over loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import sora_widgets as sw

from ._harness import shot

pytestmark = pytest.mark.browser

#: Per row: each player's box and the cell it sits in.
BOXES_JS = """() => [...document.querySelectorAll('.sora-sweep-grid')].flatMap(grid => {
    const cells = [...grid.querySelectorAll('.sora-sweep-cell')];
    return cells.map(c => { const v = c.querySelector('video').getBoundingClientRect();
                            const b = c.getBoundingClientRect();
                            return {top: Math.round(b.top), cellW: b.width, w: v.width,
                                    h: v.height, wide: v.width > v.height}; });
})"""


@pytest.mark.parametrize("width", [1400, 900])
def test_mixed_ratio_sweep_has_no_band_beside_its_landscape_tiles(
        studio: Any, page: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        width: int) -> None:
    monkeypatch.setenv("SORA_EMULATOR_TIME_SCALE", "0.003")
    made = sw.sweep("a {red|blue} kite over dunes", aspect_ratio=["16:9", "9:16"]).wait(60)
    html = tmp_path / "sweep.html"
    html.write_text(f"<!doctype html><meta charset='utf-8'><body style='margin: 8px'>"
                    f"{made._repr_html_()}</body>", encoding="utf-8")
    page.set_viewport_size({"width": width, "height": 1100})
    page.goto(html.as_uri())
    page.wait_for_function("() => [...document.querySelectorAll('video')]"
                           ".every(v => v.readyState >= 1 && v.videoWidth > 0)")
    boxes = page.evaluate(BOXES_JS)
    assert len(boxes) == 4 and sum(b["wide"] for b in boxes) == 2, boxes
    for top in {b["top"] for b in boxes}:
        row = [b for b in boxes if b["top"] == top]
        tallest = max(b["h"] for b in row)
        for b in row:
            # below a landscape player: at most a tenth of the row's height left empty
            assert tallest - b["h"] <= 0.1 * tallest, (width, row)
            # beside a player, inside its own column: at most a tenth of the column
            assert b["cellW"] - b["w"] <= 0.1 * b["cellW"] + 1, (width, row)
    shot(page, f"sweep-mixed-ratios-{width}")
