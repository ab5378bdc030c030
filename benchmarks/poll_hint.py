"""The openai style's poll hint is a floor: no GET earlier than ``openai-poll-after-ms``.

OpenAI-shaped gateways send ``openai-poll-after-ms`` on every answer. The package polls on
its own adaptive schedule and takes the hint as a lower bound: after an answer that says
"wait H ms", the next GET of that task leaves no earlier than H ms later (the first GET
after the submit answer too).

One emulator per run, in the openai style, realistic timings compressed by
``--time-scale`` (queued 0–20 s, then 60–180 s, times X), the hint set with
``poll_hint_ms``. The jobs go through the real package path (``sw.generate`` with
SORA_API_KEY / SORA_BASE_URL / SORA_API_STYLE=openai / SORA_POLL_SCALE=X and a temp
SORA_WIDGETS_HOME): journal, the engine's one thread, its schedule, the video saved from
``/content``. The check uses the emulator's own per-task request log
(``/_emulator/stats``: the task's ``created_at``, set while the submit is answered, and the
arrival time of every GET): each gap between consecutive requests of a task must be at
least the hint. A gap between two *arrivals* bounds the client's wait from below (the
answer left after the first arrival), so a violation here is a real early GET.

Runs: ``hint 0`` is the control (the header says 0: the schedule alone, to show the hint is
what binds in the others), then the emulator's default hint (2,000 ms × X) and 4 × that.
Latency = the first GET at or after the task's exact ``completed_at`` − ``completed_at``,
in real-time-equivalent seconds (÷ X).

    python benchmarks/poll_hint.py                    # 30 jobs per run, X = 0.05, ~40 s
    python benchmarks/poll_hint.py -n 60 --time-scale 0.1
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BENCH_KEY, load_avg, machine, md_table, percentile, write_result

DEFAULT_HINT_MS = 2000      # the emulator's unscaled openai-style hint


def run(n: int, scale: float, hint_ms: int, seed: int) -> dict[str, Any]:
    """Submit ``n`` jobs through the package against an openai-style emulator whose answers
    carry ``openai-poll-after-ms: hint_ms``; check every task's request gaps."""
    import sora_widgets as sw
    from sora_widgets.emulator import EmulatorConfig, start_emulator
    from sora_widgets.engine.job import poller
    from sora_widgets.studio import studio as studio_module

    config = EmulatorConfig(time_scale=scale, seed=seed, poll_hint_ms=hint_ms,
                            shared_video=True)
    config.update({"style": "openai"})
    with tempfile.TemporaryDirectory() as home, start_emulator(config) as emu:
        os.environ.update({"SORA_API_KEY": BENCH_KEY, "SORA_BASE_URL": emu.base_url,
                           "SORA_API_STYLE": "openai", "SORA_POLL_SCALE": str(scale),
                           "SORA_WIDGETS_HOME": home, "SORA_CONFIRM_USD": "1000"})
        studio = studio_module.Studio()
        studio_module._default = studio
        started = time.monotonic()
        jobs = [sw.generate(f"poll hint job {i}", force=True) for i in range(n)]
        for job in jobs:
            job.wait(timeout=600)
        elapsed = time.monotonic() - started
        stats = emu.stats()
        studio.close()
        poller().stop()
    gaps: list[float] = []
    gets: list[int] = []
    latencies: list[float] = []
    for job in jobs:
        task = stats["tasks"][job.id]
        arrivals = [task["created_at"], *task["get_times"]]
        gaps += [b - a for a, b in itertools.pairwise(arrivals)]
        gets.append(task["gets"])
        done = task["completed_at"]
        seen = next((t for t in task["get_times"] if t >= done), None)
        if seen is not None:
            latencies.append((seen - done) / scale)
    return {"hint_ms": hint_ms, "jobs": n, "gets": gets, "gaps": gaps,
            "latencies": latencies, "elapsed": elapsed,
            "completed": sum(1 for j in jobs if j.status == "completed")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=30, help="jobs per run (default 30)")
    parser.add_argument("--time-scale", type=float, default=0.05,
                        help="compress the emulator and the schedule alike (default 0.05)")
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args(argv)
    scale = float(args.time_scale)
    header = machine()
    default = round(DEFAULT_HINT_MS * scale)
    rows = []
    failed = False
    for label, hint_ms in (("control: hint 0", 0), ("emulator default", default),
                           ("4 × default", 4 * default)):
        result = run(args.n, scale, hint_ms, args.seed)
        hinted = hint_ms > 0
        # The control counts against the default hint: what the schedule alone would do.
        floor = (hint_ms if hinted else default) / 1000.0
        early = sum(1 for gap in result["gaps"] if gap < floor)
        failed |= hinted and early > 0
        failed |= result["completed"] != result["jobs"]
        rows.append([
            label, hint_ms, f"{result['completed']}/{result['jobs']}",
            f"{sum(result['gets']) / len(result['gets']):.1f}",
            f"{(min(result['gaps']) - hint_ms / 1000.0) * 1000:+.1f}",
            early if hinted else f"({early})",
            f"{percentile(result['latencies'], 50):.2f}",
            f"{percentile(result['latencies'], 95):.2f}",
            f"{result['elapsed']:.1f}",
        ])
        print(f"{label}: done ({result['elapsed']:.1f} s)", flush=True)
    table = md_table(["run", "hint ms", "completed", "GETs/job", "min gap − hint (ms)",
                      "GETs earlier than the hint", "p50 latency s", "p95 latency s",
                      "wall s"], rows)
    text = (f"# Poll hint (openai style): no GET before `openai-poll-after-ms`\n\n{header}\n\n"
            f"{args.n} jobs per run through `sw.generate` (journal, engine, save from "
            f"`/content`), emulator time scale {scale} (jobs {60 * scale:g}–{180 * scale:g} s "
            f"after a 0–{20 * scale:g} s queue); latencies in real-time-equivalent seconds "
            f"(÷ {scale}). Gaps are between arrivals of consecutive requests of a task at the "
            "emulator, the submit included. In the control row (hint 0) the count in "
            "parentheses is the GETs that came sooner than the *default* hint would allow: "
            f"the schedule alone would poll earlier, so the hint is what binds.\n\n{table}\n\n"
            f"load average at the end: {load_avg()}\n")
    path = write_result("poll_hint.md", text)
    print(text)
    print(f"written to {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
