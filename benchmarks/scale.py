"""Scale: 1,000 concurrent jobs from one process, through the real ``sw.generate`` path.

The emulator runs in a SEPARATE process (``python -m sora_widgets.emulator``; its
``shared_video`` knob is set through ``POST /_emulator/config`` so rendering is not the
bottleneck). This process is the "kernel": it calls ``sw.generate`` N times on the main
thread (that cost is reported per job), then runs a ticking probe on the main thread
(``sleep(5 ms)`` in a loop; overshoot = how long the main thread could not run) until
every job is final and its video saved. Reported: Python and OS threads, peak RSS, client
CPU per job and per job-minute, the longest main-thread stall, and the completion latency
under load (noticed − the emulator's exact ``completed_at``).

Environment for the package: SORA_API_KEY, SORA_BASE_URL (the emulator), SORA_POLL_SCALE
(= the emulator's time scale), SORA_WIDGETS_HOME (a temporary directory).

    python benchmarks/scale.py                    # 1,000 jobs, time scale 0.5 (~2 min)
    python benchmarks/scale.py --time-scale 1     # real timings (~4 min)
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    BENCH_KEY,
    EmulatorProcess,
    machine,
    md_table,
    percentile,
    write_result,
)

PROBE_SLEEP = 0.005


class Probe:
    """Main-thread ticker: sleep 5 ms, record how late it woke up."""

    def __init__(self) -> None:
        self.overshoots: list[float] = []
        self.worst_at = 0.0

    def run(self, until: Any, deadline: float, on_tick: Any = None,
            tick_every: float = 0.2) -> None:
        start = time.perf_counter()
        next_tick = start
        while True:
            t0 = time.perf_counter()
            time.sleep(PROBE_SLEEP)
            over = time.perf_counter() - t0 - PROBE_SLEEP
            self.overshoots.append(over)
            if over >= max(self.overshoots[:-1] or [0.0]):
                self.worst_at = t0 - start
            now = time.perf_counter()
            if now >= next_tick:
                next_tick = now + tick_every
                if on_tick is not None:
                    on_tick()
                if until() or time.monotonic() > deadline:
                    return

    def summary(self) -> dict[str, float]:
        o = self.overshoots
        return {"ticks": len(o), "p50_ms": percentile(o, 50) * 1e3,
                "p99_ms": percentile(o, 99) * 1e3, "p999_ms": percentile(o, 99.9) * 1e3,
                "max_ms": max(o) * 1e3, "over_10ms": sum(v > 0.010 for v in o),
                "over_20ms": sum(v > 0.020 for v in o)}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--n", type=int, default=1000)
    parser.add_argument("--time-scale", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)

    import psutil

    header = machine()
    me = psutil.Process()
    home = Path(tempfile.mkdtemp(prefix="sw-bench-scale-"))
    emu = EmulatorProcess(time_scale=args.time_scale, seed=args.seed,
                          config={"shared_video": True})
    try:
        os.environ.update(SORA_API_KEY=BENCH_KEY, SORA_BASE_URL=emu.base_url,
                          SORA_POLL_SCALE=repr(args.time_scale), SORA_WIDGETS_HOME=str(home))
        os.environ.pop("SORA_BUDGET_USD", None)

        import sora_widgets as sw
        from sora_widgets.studio import default_studio

        # 1. idle probe: what the OS alone does to a 5 ms sleep on this machine right now
        idle = Probe()
        cpu0 = cpu_seconds()
        idle_deadline = time.monotonic() + 3.0
        idle.run(lambda: False, idle_deadline)
        idle_cpu_rate = (cpu_seconds() - cpu0) / 3.0

        # 2. submission on the main thread (journal intent + handle; the POST is the poller's)
        noticed: dict[str, float] = {}

        def on_status(change: dict[str, Any]) -> None:  # poller thread
            if change["new"] in ("completed", "failed"):
                noticed[change["owner"].local_id] = time.time()

        rss_before = me.memory_info().rss
        submit_times: list[float] = []
        jobs = []
        cpu_submit0 = cpu_seconds()
        t_submit = time.perf_counter()
        for i in range(args.n):
            t0 = time.perf_counter()
            job = sw.generate(f"scale benchmark job {i} of {args.n}")
            submit_times.append(time.perf_counter() - t0)
            job.observe(on_status, names="status")
            jobs.append(job)
        submit_wall = time.perf_counter() - t_submit
        cpu_submit = cpu_seconds() - cpu_submit0

        # 3. the probe while every job is in flight
        samples = {"rss": rss_before, "os_threads": 0, "py_threads": 0,
                   "names": set()}  # type: dict[str, Any]

        def sample() -> None:
            samples["rss"] = max(samples["rss"], me.memory_info().rss)
            samples["os_threads"] = max(samples["os_threads"], me.num_threads())
            names = {t.name for t in threading.enumerate()}
            samples["py_threads"] = max(samples["py_threads"], len(names))
            samples["names"] |= names

        def settled() -> bool:
            return all(j.done and (j.status != "completed" or j.local_path is not None)
                       for j in jobs)

        probe = Probe()
        cpu_run0 = cpu_seconds()
        emu_cpu0 = emu.cpu_seconds()
        t_run = time.monotonic()
        deadline = t_run + 230 * args.time_scale * 1.5 + 180
        probe.run(settled, deadline, on_tick=sample)
        run_wall = time.monotonic() - t_run
        cpu_run = cpu_seconds() - cpu_run0
        emu_cpu = emu.cpu_seconds() - emu_cpu0
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        done = sum(j.done for j in jobs)
        saved = sum(j.local_path is not None for j in jobs)

        stats = emu.stats()
        tasks: dict[str, Any] = stats["tasks"]  # type: ignore[assignment]
        by_task = {j.id: j for j in jobs if j.id}
        latencies, durations, gets = [], [], []
        for task_id, task in tasks.items():
            job = by_task.get(task_id)
            if job is None or task["completed_at"] is None:
                continue
            gets.append(task["gets"])
            durations.append(task["completed_at"] - task["created_at"])
            if job.local_id in noticed:
                latencies.append((noticed[job.local_id] - task["completed_at"])
                                 / args.time_scale)
        job_minutes_real = sum(durations) / args.time_scale / 60
        probe_cpu = idle_cpu_rate * run_wall
        default_studio().close()
    finally:
        emu.stop()
        shutil.rmtree(home, ignore_errors=True)

    p = probe.summary()
    i = idle.summary()
    rows = [
        ["jobs final / saved", f"{done} / {saved} of {args.n}"],
        ["threads (Python, peak)", f"{samples['py_threads']}: {', '.join(sorted(samples['names']))}"],
        ["threads (OS, peak)", samples["os_threads"]],
        ["peak RSS", f"{peak_rss / 2**20:.0f} MB (before submit {rss_before / 2**20:.0f} MB, "
                     f"+{(peak_rss - rss_before) / 2**20:.0f} MB, "
                     f"{(peak_rss - rss_before) / args.n / 1024:.0f} KB/job)"],
        ["submit on main thread (generate)", f"p50 {percentile(submit_times, 50) * 1e3:.2f} ms, "
                                             f"p99 {percentile(submit_times, 99) * 1e3:.2f} ms, "
                                             f"max {max(submit_times) * 1e3:.1f} ms; "
                                             f"{submit_wall:.2f} s for all, CPU {cpu_submit:.2f} s"],
        ["run (after submit → all saved)", f"{run_wall:.0f} s wall"],
        ["client CPU during run", f"{cpu_run:.1f} s (probe itself ≈ {probe_cpu:.1f} s) = "
                                  f"{cpu_run / args.n * 1e3:.0f} ms/job"],
        ["client CPU per job-minute", f"{(cpu_run - probe_cpu) / job_minutes_real * 1e3:.1f} ms "
                                      f"(real-time-equivalent job-minutes: "
                                      f"{job_minutes_real:.0f})"],
        ["GETs/job", f"{statistics.mean(gets):.1f} (max {max(gets)})"],
        ["latency noticed − completed_at", f"p50 {percentile(latencies, 50):.2f} s, "
                                           f"p95 {percentile(latencies, 95):.2f} s, "
                                           f"max {max(latencies):.2f} s (real-time-equivalent)"],
        ["main-thread stall (probe overshoot)", f"max {p['max_ms']:.1f} ms, p99.9 "
                                                f"{p['p999_ms']:.1f} ms, p99 {p['p99_ms']:.1f} ms, "
                                                f"p50 {p['p50_ms']:.2f} ms; ticks > 20 ms: "
                                                f"{p['over_20ms']} of {p['ticks']}; worst at "
                                                f"+{probe.worst_at:.0f} s"],
        ["same probe, idle (no jobs, 3 s)", f"max {i['max_ms']:.1f} ms, p99 {i['p99_ms']:.1f} ms"],
        ["emulator process CPU during run", f"{emu_cpu:.1f} s"],
    ]
    verdict = (f"Targets: one background thread "
               f"{'✅' if samples['py_threads'] <= 2 else '❌'}, no stall > 20 ms "
               f"{'✅' if p['max_ms'] <= 20 else '❌'}")
    text = "\n".join([
        f"### scale · {args.n} concurrent jobs via sw.generate · emulator in its own process · "
        f"time scale {args.time_scale:g} · seed {args.seed}", "", f"_{header}_", "",
        md_table(["measure", "value"], rows), "", verdict,
    ])
    print(text)
    if not args.no_write:
        write_result("scale.md", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
