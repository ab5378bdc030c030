"""The atomic submit step under contention: 1, 8 and 32 processes, sqlite and PostgreSQL.

The step is :meth:`Journal.claim`: one exclusive transaction with the cache lookup, the
session, daily and team budget checks, and the intent insert (sqlite: ``BEGIN IMMEDIATE``
on the file; PostgreSQL: ``pg_advisory_xact_lock``). Two measures:

* ``claim``: ``journal.claim`` called directly, in a tight loop (the step alone);
* ``Studio.submit``: the whole public call a kernel makes (``default_studio().submit``):
  settings, backend, the claim, the Job handle and the hand-off to the poller thread; the
  POST itself runs on the poller thread, against an emulator in its own process.

Each process opens its journal and does one warm-up call, writes a ready file, and waits
for the go file; then it submits distinct prompts (no cache hit: every call writes an
intent) for ``--seconds``, timing each call. Throughput = calls completed in the window,
all processes together, ÷ the window; latency percentiles over every call. All caps are
set (high enough never to refuse), so every budget query runs.

PostgreSQL is a throw-away server of Debian's ``postgresql`` package (``tests/pgserver.py``)
with its default durability (fsync, synchronous_commit on); sqlite is the journal as the
package opens it (WAL, synchronous=NORMAL). Each (backend, step, processes) run gets a
fresh database / journal file.

    python benchmarks/submit_step.py                  # 4 s per run, 12 runs, ~3 min
    python benchmarks/submit_step.py --seconds 2 --processes 1 8
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    BENCH_KEY,
    ROOT,
    EmulatorProcess,
    load_avg,
    machine,
    md_table,
    percentile,
    write_result,
)

RELAY = "https://relay.example"
BIG = 1e9     # caps that never refuse: the budget queries run, the claim passes


# -- the worker (one process) ---------------------------------------------------------------


def worker(config: dict[str, Any]) -> None:
    """Runs in each child: warm up, wait for go, call the step until the window ends."""
    from sora_widgets.core.models import VideoRequest
    from sora_widgets.journal import Limits, open_journal

    barrier, name, step = Path(config["barrier"]), config["name"], config["step"]
    limits = Limits(session_usd=BIG, daily_usd=BIG, team_usd=BIG, confirm_usd=5.0)
    if step == "claim":
        journal = open_journal(config["location"])

        def call(i: int) -> None:
            request = VideoRequest.create(f"{name} prompt {i}", aspect_ratio="16:9")
            journal.claim(request=request, backend=RELAY, emulator=False, price_usd=0.90,
                          session=name, limits=limits, user=name, host="bench",
                          new_ids=[f"{name}-{i}"])
    else:
        from sora_widgets.studio.studio import default_studio

        studio = default_studio()

        def call(i: int) -> None:
            studio.submit(VideoRequest.create(f"{name} prompt {i}", aspect_ratio="16:9"))

    call(-1)                                               # connect, migrate, warm up
    (barrier / f"{name}.ready").write_text("")
    go = barrier / "go"
    while not go.exists() or not go.read_text():
        time.sleep(0.001)
    end = float(go.read_text())
    latencies = []
    i = 0
    while time.time() < end:
        t0 = time.perf_counter()
        call(i)
        latencies.append(time.perf_counter() - t0)
        i += 1
    print(json.dumps({"name": name, "latencies": latencies}), flush=True)
    if step != "claim":
        os._exit(0)   # the POSTs were measured by nobody: do not wait for them to settle


# -- the parent -----------------------------------------------------------------------------


def run(step: str, backend: str, processes: int, seconds: float, *, pg: Any,
        emulator: EmulatorProcess | None) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="submit-step-"))
    try:
        barrier = root / "barrier"
        barrier.mkdir()
        location = (pg.create_database("bench") if backend == "postgresql"
                    else str(root / "home" / "journal.sqlite3"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("SORA_")}
        env.update(PYTHONPATH=str(ROOT), SORA_WIDGETS_HOME=str(root / "home"),
                   SORA_BUDGET_USD=str(BIG), SORA_DAILY_BUDGET_USD=str(BIG),
                   SORA_TEAM_BUDGET_USD=str(BIG))
        if backend == "postgresql":
            env["SORA_JOURNAL_URL"] = location
        if emulator is not None:
            env.update(SORA_API_KEY=BENCH_KEY, SORA_BASE_URL=emulator.base_url,
                       SORA_POLL_SCALE="1")
        procs = []
        for k in range(processes):
            config = {"barrier": str(barrier), "name": f"p{k:02d}", "step": step,
                      "location": location}
            procs.append(subprocess.Popen(
                [sys.executable, __file__, "--worker", json.dumps(config)], env=env,
                cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        deadline = time.monotonic() + 300
        while sum((barrier / f"p{k:02d}.ready").exists() for k in range(processes)) < processes:
            dead = [p for p in procs if p.poll() is not None]
            if dead:
                raise RuntimeError(f"a worker died: {dead[0].communicate()[1][-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("workers never got ready")
            time.sleep(0.02)
        (barrier / "go.tmp").write_text(repr(time.time() + 0.2 + seconds))
        (barrier / "go.tmp").rename(barrier / "go")
        latencies: list[float] = []
        for proc in procs:
            out, err = proc.communicate(timeout=seconds + 300)
            if proc.returncode != 0:
                raise RuntimeError(f"a worker failed: {err[-2000:]}")
            latencies += json.loads(out.strip().splitlines()[-1])["latencies"]
        return {"step": step, "backend": backend, "processes": processes,
                "seconds": seconds, "calls": len(latencies),
                "per_second": len(latencies) / seconds,
                "p50_ms": 1000 * percentile(latencies, 50),
                "p99_ms": 1000 * percentile(latencies, 99),
                "max_ms": 1000 * max(latencies)}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0, help="window per run")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--steps", nargs="+", default=["claim", "Studio.submit"],
                        choices=["claim", "Studio.submit"])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"],
                        choices=["sqlite", "postgresql"])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return

    sys.path.insert(0, str(ROOT))
    from tests.pgserver import PgServer

    header = machine()
    results = []
    pg = PgServer().start() if "postgresql" in args.backends else None
    emulator = (EmulatorProcess(time_scale=1.0, seed=1, config={"shared_video": True})
                if "Studio.submit" in args.steps else None)
    try:
        for step in args.steps:
            for backend in args.backends:
                for n in args.processes:
                    result = run(step, backend, n, args.seconds, pg=pg,
                                 emulator=emulator if step != "claim" else None)
                    result["load"] = load_avg()
                    results.append(result)
                    print(f"{step:13} {backend:10} {n:3} processes: "
                          f"{result['per_second']:7.1f}/s  p50 {result['p50_ms']:6.1f} ms  "
                          f"p99 {result['p99_ms']:7.1f} ms  ({result['calls']} calls, "
                          f"load {result['load']})", flush=True)
    finally:
        if emulator is not None:
            emulator.stop()
        if pg is not None:
            pg.stop()

    rows = [[r["step"], r["backend"], r["processes"], r["calls"], f"{r['per_second']:.0f}",
             f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}", f"{r['max_ms']:.1f}", r["load"]]
            for r in results]
    text = "\n".join([
        "### submit step · cache check + budgets (session, day, team) + intent, "
        "one exclusive transaction · N concurrent processes",
        "",
        f"_{header}_",
        "",
        f"Each run: {args.seconds:g} s window, distinct prompts (every call writes an "
        "intent), a fresh journal. PostgreSQL 15 local on loopback, default durability "
        "(fsync, synchronous_commit on); sqlite WAL, synchronous=NORMAL. `Studio.submit` "
        "includes the claim; its POST runs on the poller thread against an emulator process.",
        "",
        md_table(["step", "journal", "processes", "calls", "submits/s", "p50 ms", "p99 ms",
                  "max ms", "load at end"], rows),
    ])
    print()
    print(text)
    write_result("submit_step.md", text)
    write_result("submit_step.json", json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
