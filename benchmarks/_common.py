"""Helpers shared by the benchmark scripts: percentiles, markdown tables, machine info,
an emulator in a separate process. Nothing here is timed."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
ROOT = HERE.parent
#: The emulator accepts any non-blank key as VIP; this one is worthless.
BENCH_KEY = "sk-benchmark"


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100); NaN for an empty list."""
    data = sorted(values)
    if not data:
        return float("nan")
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def md_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(value: object) -> str:
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(map(cell, headers)) + " |",
             "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> str:
    """One line: date, cores, CPU model, Python, load average."""
    model = ""
    try:
        text = Path("/proc/cpuinfo").read_text()
        found = re.search(r"model name\s*:\s*(.+)", text)
        model = found.group(1).strip() if found else ""
    except OSError:
        pass
    load = ""
    if hasattr(os, "getloadavg"):
        load = f" · load avg at start {os.getloadavg()[0]:.2f}"
    now = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return (f"{now} · {os.cpu_count()} cores ({model or platform.machine()}) · "
            f"Python {platform.python_version()} · {platform.system()}{load}")


def load_avg() -> str:
    """The 1-minute load average now (other work on the machine skews the timings)."""
    return f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "?"


def write_result(name: str, text: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(text.rstrip() + "\n")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmulatorProcess:
    """``python -m sora_widgets.emulator`` in its own process, plus its control endpoints."""

    def __init__(self, *, time_scale: float, seed: int | None = None,
                 config: dict[str, object] | None = None) -> None:
        self.port = free_port()
        args = [sys.executable, "-m", "sora_widgets.emulator", "--port", str(self.port),
                "--time-scale", repr(time_scale)]
        if seed is not None:
            args += ["--seed", str(seed)]
        # Today's emulator for every run, even when a baseline package is on PYTHONPATH.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=env)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # "sora-widgets emulator listening on ..."
        if "listening" not in line:
            self.stop()
            raise RuntimeError(f"emulator did not start: {line!r}")
        self.base_url = f"http://127.0.0.1:{self.port}"
        if config:
            self.control("config", config)

    def control(self, name: str, body: dict[str, object] | None = None) -> dict[str, object]:
        url = f"{self.base_url}/_emulator/{name}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method="GET" if data is None else "POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            result: dict[str, object] = json.loads(answer.read())
            return result

    def stats(self) -> dict[str, object]:
        return self.control("stats")

    def cpu_seconds(self) -> float:
        import psutil

        times = psutil.Process(self.proc.pid).cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_until(predicate, timeout: float, step: float = 0.1) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
