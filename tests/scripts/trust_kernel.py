"""A kernel in its own process for the trust-core tests. Prints JSON lines on stdout.

    python trust_kernel.py submit PROMPT --until id|done|never
        sw.generate(PROMPT); prints {"event": "submitted", "pid", "local_id"}, then
        id: waits for the task id (or the end of the submit), prints the job, exits;
        done: job.wait(60), prints the job and the outcome, exits;
        never: blocks (the test kills it).
    python trust_kernel.py race PROMPT COUNT
        warms up (sw.jobs()), prints {"event": "ready"}; blocks reading a line (the
        barrier); then sw.generate("PROMPT #i") for i < COUNT, as fast as it can; waits
        (5 s at most) for their task ids; prints them and the instant it started.
    python trust_kernel.py rerun PROMPT TIMEOUT
        sw.generate(PROMPT).wait(TIMEOUT); prints the job and what wait() raised.
    python trust_kernel.py resume
        sw.resume(); prints the resumed jobs and the history; exits at once.
    python trust_kernel.py probe
        sw.jobs() then sw.generate("a probe of the journal"); prints what each raised.
    python trust_kernel.py image PATH LIMIT_MB
        under an address-space limit of LIMIT_MB, VideoRequest.create(image=PATH): prints
        what it raised, how long it took, how many MB it read and how much RSS grew.

Environment: SORA_API_KEY, SORA_BASE_URL, SORA_WIDGETS_HOME, SORA_POLL_SCALE.
"""

from __future__ import annotations

import json
import os
import resource
import sqlite3
import sys
import time
from typing import Any

import sora_widgets as sw


def say(data: dict[str, Any]) -> None:
    print(json.dumps(data, default=str), flush=True)


def outcome(exc: BaseException | None) -> dict[str, Any]:
    if exc is None:
        return {"raised": None}
    journal_error = getattr(sw, "JournalError", None)
    return {"raised": type(exc).__name__, "module": type(exc).__module__,
            "message": str(exc)[:1000], "sora_error": isinstance(exc, sw.SoraError),
            "sqlite_error": isinstance(exc, sqlite3.Error),
            "journal_error": journal_error is not None and isinstance(exc, journal_error)}


def describe(job: Any) -> dict[str, Any]:
    return {"local_id": job.local_id, "id": job.id, "status": str(job.status),
            "charge": str(job.charge), "error": job.error,
            "local_path": str(job.local_path) if job.local_path else None,
            "pid": os.getpid()}


def bytes_read() -> int:
    """Bytes this process has read so far (``rchar`` of /proc/self/io: every read call)."""
    with open("/proc/self/io") as io:
        return next(int(line.split()[1]) for line in io if line.startswith("rchar:"))


def wait_for_id(job: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while job.id is None and str(job.status) == "submitting" and time.monotonic() < deadline:
        time.sleep(0.01)


def main() -> None:
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "submit":
        prompt, until = args[0], args[args.index("--until") + 1]
        job = sw.generate(prompt)
        say({"event": "submitted", "pid": os.getpid(), "local_id": job.local_id})
        if until == "never":
            while True:
                time.sleep(3600)
        if until == "id":
            wait_for_id(job, 30)
            say(describe(job))
            return
        error: BaseException | None = None
        try:
            job.wait(timeout=60)
        except (sw.SoraError, TimeoutError) as exc:
            error = exc
        say({**describe(job), **outcome(error)})
    elif mode == "race":
        prompt, count = args[0], int(args[1])
        sw.jobs()   # warm up: imports, settings and the journal, so the race is the POST's
        say({"event": "ready", "pid": os.getpid()})
        sys.stdin.readline()          # the barrier: every racer is released by one write each
        started_at = time.time()
        jobs = [sw.generate(f"{prompt} #{i}") for i in range(count)]
        deadline = time.monotonic() + 5
        for job in jobs:
            wait_for_id(job, max(0.0, deadline - time.monotonic()))
        say({"ids": [job.id for job in jobs], "started_at": started_at})
    elif mode == "rerun":
        prompt, timeout = args[0], float(args[1])
        job = sw.generate(prompt)
        started = time.monotonic()
        error = None
        try:
            job.wait(timeout=timeout)
        except (sw.SoraError, TimeoutError) as exc:
            error = exc
        say({**describe(job), **outcome(error), "elapsed": time.monotonic() - started})
    elif mode == "resume":
        resumed = sw.resume()
        say({"resumed": [describe(j) for j in resumed],
             "history": [describe(j) for j in sw.jobs()]})
        sys.stdout.flush()
        os._exit(0)   # do not stay to poll what was resumed: this kernel only looks
    elif mode == "probe":
        results: dict[str, Any] = {}
        for name, action in (("jobs", sw.jobs),
                             ("generate", lambda: sw.generate("a probe of the journal"))):
            try:
                action()
                results[name] = outcome(None)
            except Exception as exc:
                results[name] = outcome(exc)
        say(results)
        sys.stdout.flush()
        os._exit(0)
    elif mode == "image":
        path, limit_mb = args[0], int(args[1])
        from sora_widgets.core.models import VideoRequest

        limit = limit_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        read_before = bytes_read()
        started = time.monotonic()
        error = None
        try:
            VideoRequest.create("a cat on a sparse picture", image=path)
        except BaseException as exc:
            error = exc
        elapsed = time.monotonic() - started
        read_mb = (bytes_read() - read_before) / 1024 / 1024
        grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        say({**outcome(error), "elapsed": elapsed, "read_mb": read_mb,
             "rss_growth_mb": grown_kb / 1024})
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
