"""The panel's comm traffic per running take, and the History view's open time.

Part 1 — messages per running take. A real ``SoraWidget`` (one anywidget: every take is an
item of its ``live_takes`` trait while it runs, of ``settled_takes`` once done) submits N
jobs (one ``{a|b}`` sweep from its form) to the
embedded emulator at a compressed time scale, with History open, and every comm message it
sends is counted: ``comm.create_comm`` is the hook ipywidgets provides for a kernel's comm
implementation, and here it is a comm that records instead of sending. The panel has one
comm; each update of those traits is attributed to every take whose item it changed, and classed:
progress (``progress`` moved, same status), transition (the status changed: shown at once),
status line (only the phase words: the elapsed time), other. Two runs side by side: the
take as it is now (progress redrawn at most once a second, ``card.PROGRESS_SECONDS = 1``)
and unthrottled as in 0.1 (``PROGRESS_SECONDS = 0``; the one-second elapsed-time ticker
runs in both); 0.2's figures (``results/panel_comm-0.2.md``: one ipywidgets model per card
part, each with its own messages) are read and shown beside. Compressed time makes progress
move faster than in real time: the worst case for the throttle.

Part 2 — History open time. A journal of 200 and of 2,000 finished jobs (real rows, real
posters: ``tests/history_seed.py``), then ``History()`` built from a fresh ``Studio`` (one
journal query for the page, 12 cards, their posters published next to the "notebook"), a
search, and a page change; the size of the view's state as sent to the browser, which
does not grow with the journal. The same page opened in a panel (``panel.history.open()``:
the page mirrored into the panel's ``history_view`` trait) beside it.

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
        #: Indexes of the messages the panel's one-second ticker sent (its own thread).
        self.ticks: set[int] = set()
        self.bytes = 0

    def add(self, comm_id: str, msg_type: str, data: dict[str, Any] | None) -> None:
        size = len(json.dumps(data or {}, default=str))
        with self.lock:
            if threading.current_thread().name == TICKER_THREAD:
                self.ticks.add(len(self.messages))
            self.messages.append((time.monotonic(), comm_id, msg_type, data or {}))
            self.bytes += size


RECORDER = Recorder()
#: The thread of ``ui/panel/ticker.py``: its message a second refreshes every running take.
TICKER_THREAD = "sora-widgets-ticker"


class CountingComm(BaseComm):  # type: ignore[misc]
    """A comm that records what it would send (the kernel's would put it on iopub)."""

    def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None,
                    buffers: Any = None, **keys: Any) -> None:
        RECORDER.add(self.comm_id, msg_type, data)


comm.create_comm = lambda *args, **kwargs: CountingComm(*args, **kwargs)


# -- part 1: messages per running take ----------------------------------------------------------


def classify(old: dict[str, Any] | None, new: dict[str, Any], *, tick: bool) -> str | None:
    """What one update of the take traits changed of one take (None: nothing). ``tick``: the
    ticker's message, the elapsed time of every running take (as 0.2's status line, it
    carries the progress reached too: not counted as a progress redraw)."""
    if old is None or old == new:
        return None
    if old.get("status") != new.get("status"):
        return "transition"
    changed = {k for k in new.keys() | old.keys() if old.get(k) != new.get(k)}
    if tick and changed <= {"phase", "progress"}:
        return "status"
    if "progress" in changed:
        return "progress"
    return "status" if changed == {"phase"} else "other"


def run_panel(jobs: int, throttled: bool, time_scale: float) -> dict[str, Any]:
    from sora_widgets.engine.job import poller
    from sora_widgets.studio import studio as studio_module
    from sora_widgets.ui.panel import SoraWidget
    from sora_widgets.ui.panel import card as card_module

    card_module.PROGRESS_SECONDS = 1.0 if throttled else 0.0
    fresh = studio_module.Studio()
    studio_module._default = fresh
    panel = SoraWidget()
    assert panel.history.open() is not None      # live: it follows every job's changes
    panel_comm = panel.comm.comm_id
    letters = "|".join(f"take {i}" for i in range(jobs))
    panel.prompt = (f"a paper boat on a rainy street, {{{letters}}} "
                    f"{'throttled' if throttled else 'unthrottled'} {time.time()}")
    started = len(RECORDER.messages)
    panel.generate()
    cards = list(panel.cards)
    assert len(cards) == jobs, panel.reason
    index_of = {card.job.local_id: index for index, card in enumerate(cards)}
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
        ticks = {i - started for i in RECORDER.ticks if i >= started}
    last: dict[str, dict[str, Any]] = {}
    moved: dict[int, list[float]] = defaultdict(list)   # any message changing progress
    live: list[float] = []
    last_page: object = None
    every: list[float] = []
    queue: list[float] = []
    takes_bytes: list[int] = []
    for number, (at, comm_id, msg_type, data) in enumerate(sent):
        if comm_id != panel_comm or msg_type != "comm_msg" or data.get("method") != "update":
            continue
        state = data.get("state") or {}
        every.append(at)
        if "queue" in state:
            queue.append(at)
        if "history_view" in state:
            page = (state["history_view"] or {}).get("cards")
            if page != last_page:
                live.append(at)
                last_page = page
        parts = {k: state[k] or {} for k in ("live_takes", "settled_takes") if k in state}
        if not parts:
            continue
        takes_bytes.append(len(json.dumps(parts, default=str)))
        for item in [item for part in parts.values() for item in part.values()]:
            old = last.get(item["id"])
            kind = classify(old, item, tick=number in ticks)
            last[item["id"]] = item
            if kind is not None and item["id"] in index_of:
                per_card[index_of[item["id"]]][kind].append(at)
                progressed = old is not None and old.get("progress") != item.get("progress")
                if progressed and kind != "transition":
                    moved[index_of[item["id"]]].append(at)
    rows = []
    for index in range(jobs):
        kinds = per_card[index]
        progress = sorted(kinds["progress"])
        gaps = [b - a for a, b in itertools.pairwise(progress)]
        rows.append({
            "seconds": running[index],
            "progress": len(progress), "transition": len(kinds["transition"]),
            "status": len(kinds["status"]), "other": len(kinds["other"]),
            "window": most_in_a_second(progress),
            "moved_window": most_in_a_second(sorted(moved[index])),
            "min_gap": min(gaps) if gaps else float("nan"),
        })
    panel.close()
    fresh.close()
    poller().stop()
    return {"cards": rows,
            "history": {"updates": len(live), "window": most_in_a_second(live),
                        "seconds": max(running)},
            "widget": {"messages": len(every), "window": most_in_a_second(every),
                       "queue": len(queue), "seconds": max(running),
                       "takes_bytes": statistics.median(takes_bytes) if takes_bytes else 0,
                       "takes_bytes_max": max(takes_bytes, default=0)}}


def most_in_a_second(times: list[float]) -> int:
    return max((sum(1 for t in times if a <= t < a + 1.0) for a in times), default=0)


#: The first table of 0.2's result file: its rows as they were measured.
RESULT_02 = HERE / "results" / "panel_comm-0.2.md"


def rows_of_02() -> list[list[object]]:
    """0.2's rows (same columns), labelled as 0.2's; none if the file is gone."""
    try:
        text = RESULT_02.read_text()
    except OSError:
        return []
    table = text.split("## Comm messages", 1)[-1].split("\n\n")[1]
    rows: list[list[object]] = []
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows.append([f"0.2, ipywidgets cards: {cells[0]}", *cells[1:]])
    return rows


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
    from sora_widgets.ui.panel import SoraWidget
    from tests.history_seed import seed_history

    animals = ("fox", "owl", "cat", "heron")
    t0 = time.perf_counter()
    seed_history(home, count, prompt=lambda i: f"a {animals[i % 4]} number {i}",
                 ratio=lambda i: "9:16" if i % 4 == 3 else "16:9")
    seeded = time.perf_counter() - t0
    os.environ["SORA_WIDGETS_HOME"] = str(home)
    opens, searches, pages, sizes, in_panel, panel_sizes = [], [], [], [], [], []
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
        # The same page in a panel: mirrored into its history_view trait (one message).
        os.chdir(root)
        panel = SoraWidget()
        mark = len(RECORDER.messages)
        t = time.perf_counter()
        page = panel.history.open()
        in_panel.append(time.perf_counter() - t)
        assert page is not None and len(page.view.cards) == 12 and page.view.players == {}
        with RECORDER.lock:
            mirrored = [m[3]["state"]["history_view"] for m in RECORDER.messages[mark:]
                        if m[1] == panel.comm.comm_id and m[2] == "comm_msg"
                        and "history_view" in (m[3].get("state") or {})]
        panel_sizes.append(len(json.dumps(mirrored[-1], default=str)) if mirrored else 0)
        panel.close()
        fresh.close()
    os.chdir(work)
    poller().stop()
    return {"count": count, "seeded": seeded, "open": opens, "search": searches,
            "page": pages, "state_bytes": statistics.median(sizes), "in_panel": in_panel,
            "panel_bytes": statistics.median(panel_sizes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=4, help="running takes per panel run")
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
                 else "now unthrottled, the 0.1 behaviour (every change redrawn)")
        print(f"panel, {label}: {args.jobs} jobs …", flush=True)
        runs[label] = run_panel(args.jobs, throttled, args.time_scale)
    table1 = md_table(
        ["take", "running (real-time equiv.)", "updates/job", "progress", "transitions",
         "status line", "other", "most progress msgs in 1 s", "min gap between them",
         "updates/s per card"],
        [*rows_of_02(),
         *(summarize(label, run, args.time_scale) for label, run in runs.items())])
    widget_lines = "\n".join(
        f"- {label}: {w['messages']} messages of the one widget in {w['seconds']:.1f} s "
        f"(at most {w['window']} in any 1 s; {w['queue']} of them the queue); an update "
        "of the take traits carries the running takes (and a take that just settled): "
        f"median {w['takes_bytes'] / 1024:.1f} KB, max "
        f"{w['takes_bytes_max'] / 1024:.1f} KB; one take's progress changed (its status "
        f"the same) at most {max(c['moved_window'] for c in run['cards'])} times in any "
        "1 s, the tick's messages counted too"
        for label, run, w in ((label, run, run["widget"]) for label, run in runs.items()))

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
         "state sent on open", "<video> created", "in the panel: open / state",
         "seeding (not timed by History)"],
        [[f"{r['count']:,}", f"{med(r['open']) * 1000:.0f} / {max(r['open']) * 1000:.0f} ms",
          f"{med(r['search']) * 1000:.0f} ms", f"{med(r['page']) * 1000:.0f} ms",
          f"{r['state_bytes'] / 1024:.1f} KB", "0",
          f"{med(r['in_panel']) * 1000:.0f} ms / {r['panel_bytes'] / 1024:.1f} KB",
          f"{r['seeded']:.1f} s"] for r in sizes])
    text = (f"# Panel comm traffic and History open time\n\n{header}\n\n"
            f"## Comm messages per running take ({args.jobs} jobs per run, emulator time "
            f"scale {args.time_scale})\n\n{table1}\n\n"
            "Now: the panel is one widget; an update of its take traits counts for each take "
            "whose item it changed. `progress`: the item's progress moved while the status stayed; "
            "`transitions`: its status changed (queued → running → completed: shown at "
            "once, not throttled); `status line`: only its phase words changed (the elapsed "
            "time ticks once a second in both runs, one message for all running takes); "
            "`other`: the rest (video, poster, money line). 0.2's rows: one ipywidgets "
            "model per card part, each message counted for its card (`other`: player, "
            "details, buttons, bar colour). Compressed time moves progress faster than real "
            "time does, so the unthrottled row is a worst case; at real timings it shrinks, "
            "the throttled row stays at or under one progress message a second (a 1-s window "
            "may hold two whose gap is the interval less the few ms of drawing one: the "
            "throttle times its runs, not the sends; read it with the min gap).\n\n"
            f"{widget_lines}\n\n{history_line}\n\n"
            f"## History open time ({args.repeat} opens per size, fresh Studio each)\n\n"
            f"{table2}\n\n"
            "Open: `History()` from a fresh `Studio` to the first page's state (one journal "
            "query for 13 rows, 12 cards, 12 posters published next to the notebook), in "
            "the kernel; the browser then loads 12 posters (the JupyterLab test measured "
            "0.3–0.5 s from the click to 12 decoded posters for 200 jobs). In the panel: "
            "`panel.history.open()` on a fresh panel (the same page, mirrored into its "
            "`history_view` trait) and the size of that trait as sent.\n")
    path = write_result("panel_comm.md", text)
    print(text)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
