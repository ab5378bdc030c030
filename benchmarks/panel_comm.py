"""The panel's comm traffic per running job, and the History view's open time.

Part 1 — messages per running card. A real ``SoraWidget`` submits N jobs (one ``{a|b}``
sweep from its form) to the embedded emulator at a compressed time scale, and every comm
message its widgets send is counted: ``comm.create_comm`` is the hook ipywidgets provides
for a kernel's comm implementation, and here it is a comm that records instead of sending.
Each update is attributed to the card whose widget sent it, and classed: progress (the
``IntProgress`` value), status line, other. Two runs side by side: the card as it is now
(progress redrawn at most once a second, ``widget.PROGRESS_SECONDS = 1``) and as in 0.1
(every trait change redrawn, ``PROGRESS_SECONDS = 0``; the one-second elapsed-time ticker
runs in both). Compressed time makes progress move faster than in real time: the worst case
for the throttle.

Part 2 — History open time. A journal of 200 and of 2,000 finished jobs (real rows, real
posters: ``tests/history_seed.py``), then ``History()`` built from a fresh ``Studio`` (one
journal query for the page, 12 cards, their posters published next to the "notebook"), a
search, and a page change; the size of the view's state as sent to the browser, which
does not grow with the journal.

    .venv/bin/python benchmarks/panel_comm.py             # ~1.5 min
    .venv/bin/python benchmarks/panel_comm.py --jobs 8 --time-scale 0.05 --repeat 7
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import comm
from comm.base_comm import BaseComm

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from _common import machine, md_table, write_result  # noqa: E402

# -- a comm that records ------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[tuple[float, str, str, dict[str, Any]]] = []   # t, comm, type, data
        self.bytes = 0

    def add(self, comm_id: str, msg_type: str, data: dict[str, Any] | None) -> None:
        size = len(json.dumps(data or {}, default=str))
        with self.lock:
            self.messages.append((time.monotonic(), comm_id, msg_type, data or {}))
            self.bytes += size


RECORDER = Recorder()


class CountingComm(BaseComm):  # type: ignore[misc]
    """A comm that records what it would send (the kernel's would put it on iopub)."""

    def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None,
                    buffers: Any = None, **keys: Any) -> None:
        RECORDER.add(self.comm_id, msg_type, data)


comm.create_comm = lambda *args, **kwargs: CountingComm(*args, **kwargs)


# -- part 1: messages per running card ----------------------------------------------------------


def _card_comms(card: Any) -> dict[str, str]:
    """comm id -> class of message for every widget of a card."""
    from sora_widgets.ui.panel.card import JobCard

    assert isinstance(card, JobCard)
    kinds: dict[str, str] = {}

    def walk(widget: Any, kind: str) -> None:
        if getattr(widget, "comm", None) is not None:
            kinds.setdefault(widget.comm.comm_id, kind)
        for name in ("layout", "style"):
            part = getattr(widget, name, None)
            if part is not None and getattr(part, "comm", None) is not None:
                kinds.setdefault(part.comm.comm_id, "other")
        for child in getattr(widget, "children", ()):
            walk(child, "other")

    kinds[card.bar.comm.comm_id] = "progress"
    kinds[card.status.comm.comm_id] = "status"
    walk(card, "other")
    return kinds


def run_panel(jobs: int, throttled: bool, time_scale: float) -> dict[str, Any]:
    from sora_widgets.engine.job import poller
    from sora_widgets.studio import studio as studio_module
    from sora_widgets.ui.panel import card as card_module
    from sora_widgets.ui.panel.panel import SoraWidget

    card_module.PROGRESS_SECONDS = 1.0 if throttled else 0.0
    fresh = studio_module.Studio()
    studio_module._default = fresh
    panel = SoraWidget()
    history = panel.history.open()       # live: it follows every job's changes
    assert history is not None
    history_comm = history.view.comm.comm_id
    letters = "|".join(f"take {i}" for i in range(jobs))
    panel.prompt_input.value = f"a paper boat on a rainy street, {{{letters}}} " \
                               f"{'throttled' if throttled else 'unthrottled'} {time.time()}"
    started = len(RECORDER.messages)
    panel.generate_button.click()
    cards = list(panel.cards)
    assert len(cards) == jobs, panel.notice.value
    # When each job's status changed: a bar update then is a transition, shown at once
    # (queued -> running -> completed), not a progress update.
    changed: dict[int, list[float]] = defaultdict(list)
    for index, card in enumerate(cards):
        changed[index].append(time.monotonic())
        card.job.observe(lambda _c, i=index: changed[i].append(time.monotonic()),
                         names=["status", "phase"])
    comms: dict[str, tuple[int, str]] = {}
    for index, card in enumerate(cards):
        for comm_id, kind in _card_comms(card).items():
            comms[comm_id] = (index, kind)
    deadline = time.monotonic() + 600
    while not all(card.job.done for card in cards):
        if time.monotonic() > deadline:
            raise SystemExit("jobs did not finish in 10 minutes")
        time.sleep(0.05)
    time.sleep(1.5)        # trailing throttled redraws and the last tick
    running = [max(0.01, (c.job.completed_at or time.time()) - c.job.created_at)
               for c in cards]
    per_card: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    with RECORDER.lock:
        sent = RECORDER.messages[started:]
    live: list[float] = []
    for at, comm_id, msg_type, data in sent:
        if msg_type != "comm_msg" or data.get("method") != "update":
            continue
        if comm_id == history_comm and "cards" in (data.get("state") or {}):
            live.append(at)
            continue
        owner = comms.get(comm_id)
        if owner is None:
            continue
        index, kind = owner
        if kind == "progress" and "value" not in (data.get("state") or {}):
            kind = "other"      # a bar_style change, not progress
        elif kind == "progress" and any(0 <= at - t < 0.05 for t in changed[index]):
            kind = "transition"
        per_card[index][kind].append(at)
    rows = []
    for index in range(jobs):
        kinds = per_card[index]
        progress = sorted(kinds["progress"])
        gaps = [b - a for a, b in itertools.pairwise(progress)]
        window = max((sum(1 for t in progress if a <= t < a + 1.0) for a in progress),
                     default=0)
        rows.append({
            "seconds": running[index],
            "progress": len(progress), "transition": len(kinds["transition"]),
            "status": len(kinds["status"]), "other": len(kinds["other"]),
            "window": window,
            "min_gap": min(gaps) if gaps else float("nan"),
        })
    panel.close()
    fresh.close()
    poller().stop()
    history_window = max((sum(1 for t in live if a <= t < a + 1.0) for a in live), default=0)
    return {"cards": rows, "history": {"updates": len(live), "window": history_window,
                                       "seconds": max(running)}}


def summarize(label: str, run: dict[str, Any], time_scale: float) -> list[object]:
    cards = run["cards"]
    total = [c["progress"] + c["transition"] + c["status"] + c["other"] for c in cards]
    seconds = [c["seconds"] for c in cards]
    gaps = [c["min_gap"] for c in cards if c["min_gap"] == c["min_gap"]]
    return [
        label,
        f"{statistics.mean(seconds):.1f} s ({statistics.mean(seconds) / time_scale:.0f} s)",
        f"{statistics.mean(total):.1f}",
        f"{statistics.mean(c['progress'] for c in cards):.1f}",
        f"{statistics.mean(c['transition'] for c in cards):.1f}",
        f"{statistics.mean(c['status'] for c in cards):.1f}",
        f"{statistics.mean(c['other'] for c in cards):.1f}",
        f"{max(c['window'] for c in cards)}",
        f"{min(gaps):.2f} s" if gaps else "—",
        f"{statistics.mean(t / s for t, s in zip(total, seconds, strict=True)):.2f}",
    ]


# -- part 2: History open time ----------------------------------------------------------------


def time_history(home: Path, count: int, repeat: int, work: Path) -> dict[str, Any]:
    from sora_widgets.engine.job import poller
    from sora_widgets.studio import studio as studio_module
    from sora_widgets.ui.history import History
    from tests.history_seed import seed_history

    animals = ("fox", "owl", "cat", "heron")
    t0 = time.perf_counter()
    seed_history(home, count, prompt=lambda i: f"a {animals[i % 4]} number {i}",
                 ratio=lambda i: "9:16" if i % 4 == 3 else "16:9")
    seeded = time.perf_counter() - t0
    os.environ["SORA_WIDGETS_HOME"] = str(home)
    opens, searches, pages, sizes = [], [], [], []
    for run in range(repeat):
        root = work / f"nb-{count}-{run}"
        root.mkdir(parents=True)
        fresh = studio_module.Studio()
        studio_module._default = fresh
        mark = len(RECORDER.messages)
        t = time.perf_counter()
        view = History(root=root)
        opens.append(time.perf_counter() - t)
        with RECORDER.lock:
            opened = [m for m in RECORDER.messages[mark:]
                      if m[1] == view.view.comm.comm_id and m[2] == "comm_open"]
        sizes.append(len(json.dumps(opened[0][3], default=str)) if opened else 0)
        assert len(view.view.cards) == 12 and view.view.players == {}
        t = time.perf_counter()
        view.search("fox")
        searches.append(time.perf_counter() - t)
        assert all("fox" in c["prompt"] for c in view.view.cards)
        t = time.perf_counter()
        view.next_page()
        pages.append(time.perf_counter() - t)
        view.close()
        fresh.close()
    poller().stop()
    return {"count": count, "seeded": seeded, "open": opens, "search": searches,
            "page": pages, "state_bytes": statistics.median(sizes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=4, help="running cards per panel run")
    parser.add_argument("--time-scale", type=float, default=0.05,
                        help="emulator time scale (0.05: 60-180 s jobs take 3-9 s)")
    parser.add_argument("--repeat", type=int, default=5, help="History opens per size")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sora-panel-bench-"))
    os.environ.pop("SORA_API_KEY", None)
    os.environ["SORA_WIDGETS_HOME"] = str(work / "panel-home")
    os.environ["SORA_EMULATOR_TIME_SCALE"] = repr(args.time_scale)
    os.chdir(work)
    header = machine()
    print(header)

    runs = {}
    for throttled in (True, False):
        label = ("now (≤ 1 progress redraw/s)" if throttled
                 else "0.1 behaviour (every trait change redrawn)")
        print(f"panel, {label}: {args.jobs} jobs …", flush=True)
        runs[label] = run_panel(args.jobs, throttled, args.time_scale)
    table1 = md_table(
        ["card", "running (real-time equiv.)", "updates/job", "progress", "transitions",
         "status line", "other", "most progress msgs in 1 s", "min gap between them",
         "updates/s per card"],
        [summarize(label, run, args.time_scale) for label, run in runs.items()])

    live = runs["now (≤ 1 progress redraw/s)"]["history"]
    history_line = (
        f"History open in the panel while those {args.jobs} jobs ran "
        f"({live['seconds']:.1f} s): {live['updates']} page updates in all, at most "
        f"{live['window']} in any 1 s (the live refresh: at most one read a "
        "second, however many jobs change; an unchanged page sends nothing).")
    sizes = []
    for count in (200, 2000):
        print(f"History over {count} jobs …", flush=True)
        sizes.append(time_history(work / f"history-{count}", count, args.repeat, work))
    med = statistics.median
    table2 = md_table(
        ["journal jobs", "open (median / max)", "search 'fox'", "next page",
         "state sent on open", "<video> created", "seeding (not timed by History)"],
        [[f"{r['count']:,}", f"{med(r['open']) * 1000:.0f} / {max(r['open']) * 1000:.0f} ms",
          f"{med(r['search']) * 1000:.0f} ms", f"{med(r['page']) * 1000:.0f} ms",
          f"{r['state_bytes'] / 1024:.1f} KB", "0", f"{r['seeded']:.1f} s"] for r in sizes])
    text = (f"# Panel comm traffic and History open time\n\n{header}\n\n"
            f"## Comm messages per running card ({args.jobs} jobs per run, emulator time "
            f"scale {args.time_scale})\n\n{table1}\n\n"
            "`progress`: IntProgress value updates while the status stays; `transitions`: "
            "the bar's value set with a status change (queued → running → completed: shown "
            "at once, not throttled); `status line`: its elapsed time ticks once a second in "
            "both runs; `other`: the rest of the card (player, details, buttons, bar "
            "colour). Compressed time moves progress faster than real "
            "time does, so the unthrottled row is a worst case; at real timings it shrinks, "
            "the throttled row stays at or under one progress message a second.\n\n"
            f"{history_line}\n\n"
            f"## History open time ({args.repeat} opens per size, fresh Studio each)\n\n"
            f"{table2}\n\n"
            "Open: `History()` from a fresh `Studio` to the first page's state (one journal "
            "query for 13 rows, 12 cards, 12 posters published next to the notebook), in "
            "the kernel; the browser then loads 12 posters (the JupyterLab test measured "
            "0.3–0.5 s from the click to 12 decoded posters for 200 jobs).\n")
    path = write_result("panel_comm.md", text)
    print(text)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
