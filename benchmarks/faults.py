"""Faults: how long a finished job stays unnoticed while half of the GETs fail.

The real package path, public API only, against the emulator in this process: with
SORA_API_KEY (a worthless VIP key), SORA_BASE_URL (the emulator), SORA_POLL_SCALE (= the
emulator's time scale) and SORA_WIDGETS_HOME (a temporary directory) set, N jobs are
started with ``sw.generate(...)`` and followed with ``job.observe(callback,
names="status")``. Every task GET (``GET /v1/videos/{id}``) fails with probability
``--fault-rate`` (0.5), split evenly among server errors (500/502/503/504; 503 with
Retry-After), dropped connections (the request is read, the connection closed without an
answer) and 429 with Retry-After (``--retry-after`` real seconds, scaled).

Unnoticed time = the moment the handle's ``status`` became "completed" − the task's exact
``completed_at`` from the emulator's stats (``GET /_emulator/stats``; same clock), in
real-time-equivalent seconds (÷ time scale). 0.1's poller backed off exponentially up to
30 s after failed GETs: over 15 jobs of 3–6 s the p50 was 3.8 s and one job stayed
unnoticed for 112 s.

Timelines: by default the relay's own (queued 0–20 s, then 60–180 s) compressed 10x
(``--time-scale 0.1``: jobs of 6–20 s of wall time, everything the package waits for
compressed alike; fixed costs such as an HTTP round trip count 10x in the figures).
``--short`` reproduces 0.1's run literally: jobs of 3–6 s at time scale 1, which a
schedule that has learned (or assumes, cold: at least ~30 s) 60–180 s runs does not
expect: its first look comes after ~10 s, so that mode measures the cold start too.

    python benchmarks/faults.py                        # 15 jobs, ~30 s
    python benchmarks/faults.py -n 30 --seed 2
    python benchmarks/faults.py --short                # 0.1's setting: 3–6 s jobs, scale 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, load_avg, machine, md_table, percentile, write_result

#: Any key the emulator accepts as a VIP key (it is worth nothing anywhere else).
VIP_KEY = "sk-bench-vip-0123456789"
#: 0.1 under the same load (15 jobs of 3–6 s, half of the GETs failing), from its issue.
RELEASED = {"jobs": 15, "p50": 3.8, "max": 112.0}
FINAL = ("completed", "failed")


def fault_rates(rate: float) -> dict[str, float]:
    """``rate`` split in three equal parts: 5xx (four codes), dropped connections, 429."""
    third = rate / 3
    return {"500": third / 4, "502": third / 4, "503": third / 4, "504": third / 4,
            "drop": third, "429": third}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from sora_widgets.emulator import EmulatorConfig, start_emulator

    scale = args.time_scale
    queue, run_seconds = ((0.0, 1.0), (3.0, 6.0)) if args.short else \
        ((0.0, 20.0), (60.0, 180.0))
    config = EmulatorConfig(time_scale=scale, seed=args.seed, queue_seconds=queue,
                            run_seconds=run_seconds, stall_probability=0.3,
                            shared_video=True, retry_after=args.retry_after * scale,
                            get_fault_rates=fault_rates(args.fault_rate))
    home = Path(tempfile.mkdtemp(prefix="sw-bench-faults-"))
    saved_env = {k: os.environ.get(k) for k in (
        "SORA_API_KEY", "SORA_BASE_URL", "SORA_POLL_SCALE", "SORA_WIDGETS_HOME",
        "SORA_BUDGET_USD", "SORA_DAILY_BUDGET_USD", "SORA_TEAM_BUDGET_USD",
        "SORA_JOURNAL_URL", "SORA_CONFIRM_USD")}
    try:
        with start_emulator(config) as emu:
            os.environ.update(SORA_API_KEY=VIP_KEY, SORA_BASE_URL=emu.base_url,
                              SORA_POLL_SCALE=repr(scale), SORA_WIDGETS_HOME=str(home),
                              SORA_CONFIRM_USD="1000000")
            for name in ("SORA_BUDGET_USD", "SORA_DAILY_BUDGET_USD", "SORA_TEAM_BUDGET_USD",
                         "SORA_JOURNAL_URL"):
                os.environ.pop(name, None)
            import sora_widgets as sw

            noticed: dict[str, float] = {}
            lock = threading.Lock()
            all_final = threading.Event()
            jobs: list[Any] = []

            def on_status(change: dict[str, Any]) -> None:   # the engine's events thread
                if change["new"] in FINAL:
                    with lock:
                        noticed.setdefault(change["owner"].local_id, time.time())
                        if len(noticed) >= args.n:
                            all_final.set()

            print(f"{args.n} jobs at {emu.base_url}, time scale {scale:g}, "
                  f"{args.fault_rate:.0%} of GETs failing", file=sys.stderr)
            for i in range(args.n):
                job = sw.generate(f"faults benchmark job {i}", aspect_ratio="16:9",
                                  force=True)
                job.observe(on_status, names="status")
                jobs.append(job)
            longest = (queue[1] + run_seconds[1]) * scale
            if not all_final.wait(longest + args.deadline):
                print(f"only {len(noticed)}/{args.n} noticed within the deadline",
                      file=sys.stderr)
            stats = emu.stats()
            from sora_widgets.engine.job import poller

            poller().stop()
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(home, ignore_errors=True)

    tasks = stats["tasks"]
    rows = []
    for job in jobs:
        task = tasks.get(job.id or "")
        if task is None:
            rows.append({"task": job.id, "status": job.status, "unnoticed": None})
            continue
        seen = noticed.get(job.local_id)
        done = task.get("completed_at")
        rows.append({
            "task": job.id, "status": job.status, "gets": task["gets"],
            "run_s": None if done is None else round((done - task["created_at"]) / scale, 2),
            "unnoticed": None if seen is None or done is None else (seen - done) / scale,
        })
    unnoticed = [r["unnoticed"] for r in rows if r["unnoticed"] is not None]
    gets = [r["gets"] for r in rows if "gets" in r]
    faults = Counter(stats.get("faults_injected", {}))
    total_gets = sum(gets)
    return {
        "jobs": args.n, "noticed": len(unnoticed), "unnoticed": unnoticed, "rows": rows,
        "p50": percentile(unnoticed, 50), "p95": percentile(unnoticed, 95),
        "max": max(unnoticed) if unnoticed else float("nan"),
        "gets_per_job": statistics.mean(gets) if gets else float("nan"),
        "faults": dict(faults), "failed_share": sum(faults.values()) / max(total_gets, 1),
        "time_scale": scale, "fault_rate": args.fault_rate,
        "run_seconds": list(run_seconds), "queue_seconds": list(queue),
    }


def report(result: dict[str, Any], args: argparse.Namespace, header: str,
           elapsed: float) -> str:
    run_s = "–".join(f"{x:g}" for x in result["run_seconds"])
    title = (f"faults · {result['jobs']} jobs of {run_s} s · {args.fault_rate:.0%} of task "
             f"GETs failing (5xx / drop / 429 in equal parts) · time scale "
             f"{args.time_scale:g} · seed {args.seed}")
    fmt = "{:.2f}".format
    rows = [
        ["0.1 (backoff up to 30 s; its issue)", f"{RELEASED['jobs']}", "3.80", "–", "112.00",
         "–"],
        ["now (sw.generate → engine)", f"{result['noticed']}/{result['jobs']}",
         fmt(result["p50"]), fmt(result["p95"]), fmt(result["max"]),
         fmt(result["gets_per_job"])],
    ]
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(result["faults"].items()))
    return "\n".join([
        f"### {title}", "", f"_{header} · at end {load_avg()} · run took {elapsed:.0f} s_", "",
        md_table(["run", "jobs noticed", "unnoticed p50 s", "p95 s", "max s", "GETs/job"],
                 rows), "",
        f"Faults injected: {kinds} ({result['failed_share']:.0%} of all task GETs). "
        "Unnoticed = the handle's status turned \"completed\" − the emulator's exact "
        "`completed_at`, in real-time-equivalent seconds (÷ time scale). Retry-After on "
        f"429/503: {args.retry_after:g} s (scaled).",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--n", type=int, default=15, help="jobs (15)")
    parser.add_argument("--time-scale", type=float, default=None,
                        help="emulator and SORA_POLL_SCALE (default 0.1; 1 with --short)")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--fault-rate", type=float, default=0.5)
    parser.add_argument("--retry-after", type=float, default=1.0,
                        help="Retry-After on 429/503, real seconds (multiplied by the scale)")
    parser.add_argument("--short", action="store_true",
                        help="0.1's setting: 3–6 s jobs after a 0–1 s queue, time scale 1")
    parser.add_argument("--deadline", type=float, default=240.0,
                        help="wall seconds to wait past the longest possible job")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if args.time_scale is None:
        args.time_scale = 1.0 if args.short else 0.1

    header = machine()
    started = time.monotonic()
    result = run(args)
    text = report(result, args, header, time.monotonic() - started)
    print(text)
    if not args.no_write:
        md = write_result("faults.md", text)
        (RESULTS / "faults.json").write_text(json.dumps(result, indent=1))
        print(f"\nwrote {md.name} and faults.json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
