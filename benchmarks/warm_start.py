"""Kernels start warm (issue 21 #13): a fresh process's first 16 simultaneous jobs on a
relay, cold (a new journal), warm (a journal that carries the relay's learned prior) and
0.2 (``git archive 891cdb6``, first on ``PYTHONPATH``), in one run.

Each phase restarts the emulator on the same port with the same seed, so every phase sees
the same 16 timelines (queued 0–20 s, then 60–180 s, stalls near the end), compressed by
``--time-scale``; latencies are reported in real-time-equivalent seconds (measured / X).
The warm journal is taught first by a separate process (``--train`` jobs on the same
relay), which exits; the warm phase is a new process on that journal. Each phase's jobs are
the package as a user runs it: ``sw.generate`` in a child with SORA_BASE_URL (the
emulator), SORA_POLL_SCALE and its own SORA_WIDGETS_HOME. Latency = when the child saw the
final status − the task's exact ``completed_at``; GETs from the emulator's counters.

    python benchmarks/warm_start.py                  # time scale 0.25, ~3 min
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BENCH_KEY, free_port, load_avg, machine, md_table, percentile, write_result

BASELINE_REV = "891cdb6"   # 0.2
TARGET = {"p50": 0.3, "p95": 0.8, "gets": 16.0}
ROOT = Path(__file__).resolve().parents[1]


def child(n: int) -> None:
    """``n`` simultaneous ``sw.generate`` jobs; prints when each was seen final."""
    import sora_widgets as sw

    noticed: dict[str, float] = {}

    def on_status(change: dict[str, Any]) -> None:   # the engine's events thread
        if change["new"] in ("completed", "failed"):
            noticed[change["owner"].local_id] = time.time()

    jobs = []
    for i in range(n):
        job = sw.generate(f"warm start benchmark {i}", aspect_ratio="16:9", force=True)
        job.observe(on_status, names="status")
        jobs.append(job)
    for job in jobs:
        with contextlib.suppress(sw.SoraError):   # a failed job is noticed all the same
            job.wait()
    print("RESULT " + json.dumps({"noticed": {j.id: noticed.get(j.local_id) for j in jobs}}),
          flush=True)


def run_phase(name: str, n: int, home: Path, args: argparse.Namespace, port: int,
              pythonpath: str, seed: int | None = None) -> dict[str, Any]:
    from sora_widgets.emulator import EmulatorConfig, start_emulator

    config = EmulatorConfig(time_scale=args.time_scale, seed=args.seed if seed is None else seed,
                            queue_seconds=(0.0, 20.0), run_seconds=(60.0, 180.0),
                            stall_probability=0.3, shared_video=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SORA_")}
    with start_emulator(config, port=port) as emu:
        env.update(SORA_API_KEY=BENCH_KEY, SORA_BASE_URL=emu.base_url,
                   SORA_POLL_SCALE=repr(args.time_scale), SORA_WIDGETS_HOME=str(home),
                   SORA_CONFIRM_USD="1000000", PYTHONPATH=pythonpath)
        load = load_avg()
        done = subprocess.run([sys.executable, __file__, "--child", str(n)], env=env,
                              capture_output=True, text=True, timeout=900, check=False)
        lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
        if done.returncode != 0 or not lines:
            raise RuntimeError(f"{name}: {done.stderr[-2000:]}")
        noticed: dict[str, float | None] = json.loads(lines[-1][7:])["noticed"]
        tasks = emu.stats()["tasks"]
    scale = args.time_scale
    lat = [(t - tasks[tid]["completed_at"]) / scale for tid, t in noticed.items()
           if t is not None and tid in tasks and tasks[tid]["completed_at"] is not None]
    gets = [tasks[tid]["gets"] for tid in noticed if tid in tasks]
    print(f"{name}: done (load {load})", file=sys.stderr)
    return {"jobs": len(noticed), "noticed": len(lat), "p50": percentile(lat, 50),
            "p95": percentile(lat, 95), "max": max(lat), "gets_per_job": statistics.mean(gets),
            "gets_max": max(gets), "load": load, "latencies": lat}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=16, help="first-batch jobs (16)")
    parser.add_argument("--train", type=int, default=32, help="jobs that teach the prior")
    parser.add_argument("--time-scale", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        child(args.child)
        return 0
    header = machine()
    port = free_port()
    scratch = Path(tempfile.mkdtemp(prefix="sw-bench-warm-"))
    results: dict[str, dict[str, Any]] = {}
    try:
        old = scratch / "v0.2"
        old.mkdir()
        archive = subprocess.run(["git", "archive", BASELINE_REV, "sora_widgets"], cwd=ROOT,
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        here = str(ROOT)
        warm = scratch / "warm"
        train = run_phase("train", args.train, warm, args, port, here, seed=args.seed + 1000)
        results["cold (new journal)"] = run_phase("cold", args.n, scratch / "cold", args,
                                                  port, here)
        results["warm (journal carries the prior)"] = run_phase("warm", args.n, warm, args,
                                                                port, here)
        results[f"0.2 ({BASELINE_REV})"] = run_phase("0.2", args.n, scratch / "old", args,
                                                     port, str(old))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    rows = [[name, f"{r['noticed']}/{r['jobs']}", f"{r['gets_per_job']:.1f}", r["gets_max"],
             f"{r['p50']:.2f}", f"{r['p95']:.2f}", f"{r['max']:.2f}", r["load"]]
            for name, r in results.items()]
    warm_r = results["warm (journal carries the prior)"]
    met = (warm_r["gets_per_job"] <= TARGET["gets"] and warm_r["p50"] <= TARGET["p50"]
           and warm_r["p95"] <= TARGET["p95"])
    text = "\n".join([
        "# Warm start: a new kernel's first batch (issue 21 #13)", "", header, "",
        f"{args.n} simultaneous jobs per phase, each phase a fresh process on a restarted "
        f"emulator (same port, seed {args.seed}: the same timelines), queued 0–20 s then "
        f"60–180 s, time scale {args.time_scale:g} (latencies in real-time-equivalent s). "
        f"The warm journal was taught by a separate process's {args.train} jobs "
        f"(other timelines: seed {args.seed + 1000}) "
        f"(its own figures: {train['gets_per_job']:.1f} GETs/job, p50 {train['p50']:.2f} s, "
        f"p95 {train['p95']:.2f} s).", "",
        md_table(["phase", "noticed", "GETs/job", "GETs max", "p50 s", "p95 s", "max s",
                  "load avg (1 min) at start"], rows), "",
        f"Goal (warm): ≤ {TARGET['gets']:g} GETs/job, p50 ≤ {TARGET['p50']} s, "
        f"p95 ≤ {TARGET['p95']} s: {'met' if met else 'NOT met'}.",
    ])
    print(text)
    if not args.no_write:
        write_result("warm_start.md", text)
        write_result("warm_start.json", json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
