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

    python benchmarks/scale.py                    # 1,000 jobs, time scale 0.5, then 0.1's
    python benchmarks/scale.py -n 10000 --baseline none
    python benchmarks/scale.py --time-scale 1     # real timings

``--baseline REV`` (default: 0.1, commit 5665d5d) runs the same measurement on that
revision's package (extracted with ``git archive``, first on ``PYTHONPATH``; the emulator
is today's for both) right before the current one, and prints both columns side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    BENCH_KEY,
    EmulatorProcess,
    load_avg,
    machine,
    md_table,
    percentile,
    write_result,
)

PROBE_SLEEP = 0.005


class Probe:
    """Main-thread ticker: sleep 5 ms, record how late it woke up.

    With ``watch`` (a thread name), each tick also reads that thread's CPU clock: a stall
    during which the watched thread was busy for at least half of it is attributed to
    that thread (it held the GIL); a stall with both threads idle is the OS scheduler
    (other processes on the machine), which the sibling control probe measures too.
    """

    def __init__(self, watch: tuple[str, ...] = ()) -> None:
        self.overshoots: list[float] = []
        self.attributed: list[float] = []   # stalls while the watched thread was busy
        self.stalls: list[tuple[float, float]] = []   # (perf_counter start, overshoot) > 20 ms
        self.worst_at = 0.0
        self.watch = watch

    def _clocks(self) -> list[int]:
        return [time.pthread_getcpuclockid(thread.ident) for thread in threading.enumerate()
                if thread.name in self.watch and thread.ident is not None]

    @staticmethod
    def _busy(clocks: list[int]) -> float:
        return sum(time.clock_gettime(c) for c in clocks)

    def run(self, until: Any, deadline: float, on_tick: Any = None,
            tick_every: float = 0.2) -> None:
        start = time.perf_counter()
        next_tick = start
        worst = 0.0
        clocks = self._clocks()
        busy0 = 0.0
        while True:
            if clocks:
                busy0 = self._busy(clocks)
            t0 = time.perf_counter()
            time.sleep(PROBE_SLEEP)
            over = time.perf_counter() - t0 - PROBE_SLEEP
            self.overshoots.append(over)
            if over > 0.020:
                self.stalls.append((t0, over))
            if clocks and over > 0.002 and self._busy(clocks) - busy0 >= over / 2:
                self.attributed.append(over)
            if over > worst:
                worst = over
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
        a = self.attributed or [0.0]
        return {"ticks": len(o), "p50_ms": percentile(o, 50) * 1e3,
                "p99_ms": percentile(o, 99) * 1e3, "p999_ms": percentile(o, 99.9) * 1e3,
                "max_ms": max(o) * 1e3, "over_10ms": sum(v > 0.010 for v in o),
                "over_20ms": sum(v > 0.020 for v in o),
                "attributed_max_ms": max(a) * 1e3,
                "attributed_over_20ms": sum(v > 0.020 for v in a)}


class GCPauses:
    """Every garbage collection's duration and thread (a GC holds the GIL throughout)."""

    def __init__(self) -> None:
        import gc

        self.pauses: list[tuple[float, int, str]] = []
        self.spans: list[tuple[float, float]] = []   # (start, end) perf_counter
        self._started: dict[int, float] = {}
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        ident = threading.get_ident()
        if phase == "start":
            self._started[ident] = time.perf_counter()
        elif ident in self._started:
            begun = self._started.pop(ident)
            took = time.perf_counter() - begun
            self.spans.append((begun, begun + took))
            self.pauses.append((took, info["generation"], threading.current_thread().name))

    def overlapping(self, stalls: list[tuple[float, float]]) -> list[float]:
        """The stalls (overshoots) that overlap a collection."""
        hit = []
        for t0, over in stalls:
            end = t0 + PROBE_SLEEP + over
            if any(a < end and b > t0 + PROBE_SLEEP for a, b in self.spans):
                hit.append(over)
        return hit

    def worst(self) -> str:
        if not self.pauses:
            return "none"
        took, gen, name = max(self.pauses)
        gen2 = [p for p in self.pauses if p[1] == 2]
        over20 = sum(p[0] > 0.020 for p in self.pauses)
        return (f"{len(self.pauses)} collections, {len(gen2)} of generation 2, {over20} "
                f"longer than 20 ms; longest {took * 1e3:.1f} ms (gen {gen}, {name} thread)")


def control_probe() -> None:
    """The same probe in an idle sibling process, until stdin closes: the OS's share."""
    import json

    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    probe = Probe()
    print("ready", flush=True)
    probe.run(stop.is_set, time.monotonic() + 3600)
    print(json.dumps(probe.summary()), flush=True)


def start_control() -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, __file__, "--control-probe"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.readline()
    return proc


def stop_control(proc: subprocess.Popen[str]) -> dict[str, float]:
    import json

    out, _ = proc.communicate("", timeout=30)
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


BASELINE_REV = "5665d5d"   # 0.1 on main


def run_baseline(args: argparse.Namespace) -> dict[str, str]:
    """The same measurement on another revision's package, in a child process."""
    folder = Path(tempfile.mkdtemp(prefix="sw-bench-baseline-"))
    try:
        archive = subprocess.run(["git", "archive", args.baseline, "sora_widgets",
                                  "benchmarks"],
                                 cwd=Path(__file__).resolve().parents[1], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
        out = folder / "result.json"
        env = {**os.environ, "PYTHONPATH": str(folder)}
        # The revision's own copy of this script: module paths move between releases.
        script = folder / "benchmarks" / Path(__file__).name
        subprocess.run([sys.executable, str(script), "-n", str(args.n), "--time-scale",
                        repr(args.time_scale), "--seed", str(args.seed), "--no-write",
                        "--json-out", str(out)], env=env, check=True)
        result: dict[str, str] = json.loads(out.read_text())
        return result
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--n", type=int, default=1000)
    parser.add_argument("--time-scale", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--baseline", default=BASELINE_REV,
                        help="git revision measured first for comparison ('none': skip)")
    parser.add_argument("--json-out", help=argparse.SUPPRESS)
    parser.add_argument("--control-probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.control_probe:
        control_probe()
        return 0
    baseline: dict[str, str] | None = None
    if args.baseline != "none" and not args.json_out:
        baseline = run_baseline(args)

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
        from sora_widgets.studio.studio import default_studio

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

        probe = Probe(watch=("sora-widgets-poller", "sora-widgets-events"))
        gc_pauses = GCPauses()
        control = start_control()
        cpu_run0 = cpu_seconds()
        emu_cpu0 = emu.cpu_seconds()
        t_run = time.monotonic()
        deadline = t_run + 230 * args.time_scale * 1.5 + 180
        probe.run(settled, deadline, on_tick=sample)
        run_wall = time.monotonic() - t_run
        c = stop_control(control)
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
    gc_hit = gc_pauses.overlapping(probe.stalls)
    i = idle.summary()
    rows = [
        ["jobs final / saved", f"{done} / {saved} of {args.n}"],
        ["threads (Python, peak)",
         f"{samples['py_threads']}: {', '.join(sorted(samples['names']))}"],
        ["threads (OS, peak)", samples["os_threads"]],
        ["peak RSS", f"{peak_rss / 2**20:.0f} MB (before submit {rss_before / 2**20:.0f} MB, "
                     f"+{(peak_rss - rss_before) / 2**20:.0f} MB, "
                     f"{(peak_rss - rss_before) / args.n / 1024:.0f} KB/job)"],
        ["submit on main thread (generate)",
         f"p50 {percentile(submit_times, 50) * 1e3:.2f} ms, "
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
        ["… of which the poller or events thread was busy (held the GIL)",
         f"max {p['attributed_max_ms']:.1f} ms; > 20 ms: {p['attributed_over_20ms']}"],
        ["garbage collector during run", gc_pauses.worst()],
        ["stalls > 20 ms overlapping a GC pause",
         f"{len(gc_hit)} of {p['over_20ms']}"
         + (f", max {max(gc_hit) * 1e3:.1f} ms" if gc_hit else "")],
        ["same probe, this process before submit (idle, 3 s)",
         f"max {i['max_ms']:.1f} ms, p99 {i['p99_ms']:.1f} ms"],
        ["same probe, idle sibling process, same time (OS noise)",
         f"max {c['max_ms']:.1f} ms, p99.9 {c['p999_ms']:.1f} ms, p99 {c['p99_ms']:.1f} ms; "
         f"ticks > 20 ms: {c['over_20ms']} of {c['ticks']}"],
        ["emulator process CPU during run", f"{emu_cpu:.1f} s"],
    ]
    verdict = (f"Targets: a fixed set of background threads (poller + events) "
               f"{'✅' if samples['py_threads'] <= 3 else '❌'}; no main-thread stall > 20 ms: "
               f"raw {'✅' if p['max_ms'] <= 20 else '❌'} (max {p['max_ms']:.1f} ms), "
               f"attributable to the engine {'✅' if p['attributed_max_ms'] <= 20 else '❌'} "
               f"(max {p['attributed_max_ms']:.1f} ms; the sibling control probe shows what "
               f"the OS alone did meanwhile: max {c['max_ms']:.1f} ms)")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({str(k): str(v) for k, v in rows}))
        return 0
    if baseline is not None:
        table = md_table(["measure", f"baseline ({args.baseline})", "now"],
                         [[k, baseline.get(str(k), "—"), v] for k, v in rows])
    else:
        table = md_table(["measure", "value"], rows)
    text = "\n".join([
        f"### scale · {args.n} concurrent jobs via sw.generate · emulator in its own process · "
        f"time scale {args.time_scale:g} · seed {args.seed}", "",
        f"_{header} · at end {load_avg()}_", "",
        table, "", verdict,
    ])
    print(text)
    if not args.no_write:
        name = (f"scale-n{args.n}.md" if args.n != 1000 else "scale.md") \
            if args.time_scale == 0.5 else f"scale-ts{args.time_scale:g}.md"
        write_result(name, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
