"""Helpers shared by the trust-core tests (issue 11): deadlines, subprocess kernels, key
needles, and, in one marked section at the end, every internal hook those tests use.

Everything above the hooks section uses only the public API of ``sora_widgets``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import secrets
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = Path(__file__).resolve().parent
KERNEL = SCRIPTS / "trust_kernel.py"
FORKER = SCRIPTS / "trust_forker.py"

#: A sentinel key (a relay key that must never be seen anywhere but its header).
KEY = f"sk-TRUST-{secrets.token_hex(16)}"
#: The emulator answers keys starting with "nonvip" with 403 (an ordinary, non-VIP key).
NONVIP_KEY = f"nonvip-TRUST-{secrets.token_hex(16)}"
#: Where the tests run the relay's clock and the client's schedule: 100x faster.
SCALE = 0.01


# -- keys ------------------------------------------------------------------------------------


def needles(*keys: str) -> set[str]:
    """A key whole, every 8-character piece of it, and its base64 forms."""
    found: set[str] = set()
    for key in keys:
        found.add(key)
        found.update(key[i:i + 8] for i in range(len(key) - 7))
        found.add(base64.b64encode(key.encode()).decode())
        found.add(base64.b64encode(f"Bearer {key}".encode()).decode())
    return found


def leaks(text: str | bytes, *keys: str) -> list[str]:
    """The needles of ``keys`` (default: KEY and NONVIP_KEY) found in ``text``."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    return sorted(n for n in needles(*(keys or (KEY, NONVIP_KEY))) if n in text)


def files_under(*roots: Path) -> Iterator[Path]:
    for root in roots:
        if root.exists():
            yield from (p for p in root.rglob("*") if p.is_file())


# -- subprocess kernels ----------------------------------------------------------------------


def kernel_env(home: Path, base_url: str | None, key: str | None, **extra: str) -> dict[str, str]:
    """The environment of a kernel in another process: this repo's code, one home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SORA_")}
    env.update(SORA_WIDGETS_HOME=str(home), SORA_POLL_SCALE=str(SCALE),
               SORA_EMULATOR_TIME_SCALE=str(SCALE), PYTHONPATH=str(REPO),
               PYTHONUNBUFFERED="1")
    if base_url is not None:
        env["SORA_BASE_URL"] = base_url
    if key is not None:
        env["SORA_API_KEY"] = key
    env.update(extra)
    return env


class Kernel:
    """``trust_kernel.py`` (or another script) in a subprocess; its stdout read line by line
    in a thread, its stderr kept in a file beside the home."""

    def __init__(self, args: Sequence[str], env: dict[str, str], *,
                 prefix: Sequence[str] = (), cwd: Path | None = None,
                 script: Path = KERNEL) -> None:
        self.stderr_path = Path(env["SORA_WIDGETS_HOME"]).parent / (
            f"kernel-{os.getpid()}-{time.monotonic_ns()}.stderr")
        self.stderr_path.parent.mkdir(parents=True, exist_ok=True)
        self._err = self.stderr_path.open("w")
        self.proc = subprocess.Popen([*prefix, sys.executable, str(script), *args], env=env,
                                     cwd=cwd or self.stderr_path.parent, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._err)
        self.lines: queue.Queue[str] = queue.Queue()
        self._pumping = threading.Thread(target=self._pump, daemon=True)
        self._pumping.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def read(self, timeout: float = 30.0) -> dict[str, Any]:
        """The next JSON line the kernel prints."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=0.05)
            except queue.Empty:
                exited = self.proc.poll() is not None
                if exited:
                    self._pumping.join(5)      # every line it printed is in the queue now
                if exited and self.lines.empty():
                    raise AssertionError(
                        f"kernel exited ({self.proc.returncode}) without an answer; stderr:\n"
                        f"{self.stderr()}") from None
                if time.monotonic() > deadline:
                    raise AssertionError(f"kernel gave no answer in {timeout} s; stderr:\n"
                                         f"{self.stderr()}") from None
                continue
            if line.startswith("{"):
                return dict(json.loads(line))

    def stderr(self) -> str:
        self._err.flush()
        return self.stderr_path.read_text()[-4000:]

    def finish(self, timeout: float = 30.0) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self.close()

    def kill(self) -> None:
        """SIGKILL the kernel and everything it started (namespace wrappers included)."""
        import psutil

        try:
            family = [psutil.Process(self.proc.pid),
                      *psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            family = []
        for member in reversed(family):
            with contextlib.suppress(psutil.NoSuchProcess):
                member.kill()
        self.proc.wait(10)
        self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill()
            return
        self._err.close()


def run_kernel(args: Sequence[str], env: dict[str, str], timeout: float = 60.0,
               **kwargs: Any) -> dict[str, Any]:
    """Run ``trust_kernel.py ARGS`` to its end; its last JSON line."""
    kernel = Kernel(args, env, **kwargs)
    try:
        answer = kernel.read(timeout)
        kernel.finish(timeout)
        while not kernel.lines.empty():
            line = kernel.lines.get()
            if line.startswith("{"):
                answer = dict(json.loads(line))
        return answer
    finally:
        kernel.close()


def resumed_ids(home: Path, base_url: str | None, key: str | None) -> list[str | None]:
    """The task ids a brand-new process's ``sw.resume()`` returns for this home."""
    out = run_kernel(["resume"], kernel_env(home, base_url, key))
    return [job["id"] for job in out["resumed"]]


def journal_rows(home: Path) -> list[dict[str, Any]]:
    """What a fresh Studio (a new reader of the journal file) knows: ``jobs()``."""
    from sora_widgets.studio.studio import Studio

    reader = Studio()
    return [{"local_id": j.local_id, "id": j.id, "status": str(j.status),
             "charge": str(j.charge), "local_path": str(j.local_path) if j.local_path else None}
            for j in reader.jobs()]


def submit_via(studio: Any, prompt: str) -> Any:
    """One job of ``prompt`` through a given Studio: ``Studio.submit`` (the rebuilt core);
    0.1 fallback: ``Studio.generate`` (0.1 has no ``submit``)."""
    if hasattr(studio, "submit"):
        from sora_widgets.core.models import VideoRequest

        return studio.submit(VideoRequest.create(prompt))[0]
    return studio.generate(prompt)


# ============================================================================================
# INTERNAL HOOKS: everything below reaches inside sora_widgets. Each one names the rebuilt
# core's internal first and falls back to 0.1's, so the tests run (and fail for the bug,
# not for a missing name) on 0.1 and keep running after the rewrite.
# ============================================================================================


def poller() -> Any:
    # internal hook: the one poller (rebuilt: sora_widgets.engine.poller.poller; 0.2:
    # sora_widgets.engine.job.poller; 0.1: job.poller).
    try:
        from sora_widgets.engine.poller import poller as get
    except ImportError:
        try:
            from sora_widgets.engine.job import poller as get
        except ImportError:
            from sora_widgets.job import poller as get
    return get()


class FailingWrites:
    """Makes the journal's "task id right after the POST" write raise "disk full" while
    ``failing`` is set; counts the failures."""

    def __init__(self) -> None:
        self.failing = True
        self.failures = 0
        self.lock = threading.Lock()

    def fail(self) -> None:
        with self.lock:
            self.failures += 1
        raise sqlite3.OperationalError("database or disk is full")


def fail_task_id_writes(monkeypatch: pytest.MonkeyPatch) -> FailingWrites:
    # internal hook: the write of the task id right after a successful POST.
    # Rebuilt core: SqliteJournal.record_submitted(...). 0.1: Journal.update(task_id=...).
    state = FailingWrites()
    try:
        from sora_widgets.journal.sqlite import SqliteJournal
    except ImportError:
        from sora_widgets.store import Journal as Old

        original_update = Old.update

        def update(self: Any, local_id: str, **changes: Any) -> Any:
            if state.failing and "task_id" in changes:
                state.fail()
            return original_update(self, local_id, **changes)

        monkeypatch.setattr(Old, "update", update)
        return state
    # Rebuilt core: any UPDATE that writes a task id (alone, or in a batch of transitions)
    # fails at the statement, as a full disk would make it.
    from sora_widgets.journal import sqlite as rebuilt

    assert SqliteJournal is rebuilt.SqliteJournal
    original = rebuilt._SqliteCursor.execute

    def execute(self: Any, sql: str, params: Any = ()) -> Any:
        if state.failing and sql.startswith("UPDATE jobs SET") and "task_id = ?" in sql:
            state.fail()
        return original(self, sql, params)

    monkeypatch.setattr(rebuilt._SqliteCursor, "execute", execute)
    return state


def forge_owner_pid(journal: Path, pid: int) -> int:
    # internal hook: the journal's schema. Rows left 'submitting' are made to name ``pid``
    # as their owner's PID (0.1: column ``pid``; rebuilt: also ``owner``, written as
    # host/boot/pid/start/token, whose pid part is replaced; start and token stay the dead
    # process's). Returns the number of rows changed.
    db = sqlite3.connect(journal)
    db.row_factory = sqlite3.Row
    try:
        rows = db.execute("SELECT * FROM jobs WHERE status = 'submitting'").fetchall()
        for row in rows:
            values = dict(row)
            db.execute("UPDATE jobs SET pid = ? WHERE local_id = ?", (pid, values["local_id"]))
            parts = str(values.get("owner") or "").split("/")
            if len(parts) == 5:
                parts[2] = str(pid)
                db.execute("UPDATE jobs SET owner = ? WHERE local_id = ?",
                           ("/".join(parts), values["local_id"]))
        db.commit()
        return len(rows)
    finally:
        db.close()


def replace_default_studio(monkeypatch: pytest.MonkeyPatch, fresh: Any) -> None:
    # internal hook: the process-wide Studio behind sw.generate/sw.resume (as conftest's
    # ``studio`` fixture does): a "restarted kernel" in this process.
    from sora_widgets.studio import studio as studio_module

    monkeypatch.setattr(studio_module, "_default", fresh)


def unfinished_local_ids(studio: Any) -> set[str]:
    # internal hook: the records of Studio.journal().unfinished() carry ``local_id``.
    return {str(record.local_id) for record in studio.journal().unfinished()}


def tracked_jobs() -> list[Any]:
    # internal hook: the job handles the poller tracks now (0.1 and, presumably, rebuilt:
    # ``poller().tracked()``).
    return list(poller().tracked())


def phase_of(job: Any) -> str:
    # internal hook (0.1 fallback only): the rebuilt Job has ``phase``; on 0.1 it is
    # derived the way 0.1 itself decides (done / needs_relay).
    phase = getattr(job, "phase", None)
    if phase is not None:
        return str(phase)
    if job.status == "submitting":
        return "submitting"
    if job.status == "completed" and job.local_path is None:
        return "saving"
    if job.status in ("completed", "failed", "unknown"):
        return "settled"
    return "polling"
