"""A kernel that forks while its own submit is in flight (issue 11: a forked child must
never adopt the parent's in-flight jobs).

    python trust_forker.py PROMPT

1. ``sw.generate(PROMPT)``; prints {"event": "submitted"}. The test holds that POST's
   answer at its relay.
2. Reads a line ("fork"), then starts two children while the POST is still in flight:
   one with ``os.fork()`` that submits a prompt of its own, and one through
   ``multiprocessing`` ('fork' start method) that calls ``sw.resume()`` and then submits a
   prompt of its own. Each child waits for its own job and exits.
3. Prints {"event": "children", "exit_codes": [...]}; the test then releases the POST.
4. Waits for its own job; prints it.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import traceback
from typing import Any

import sora_widgets as sw


def say(data: dict[str, Any]) -> None:
    print(json.dumps(data, default=str), flush=True)


def child_work(prompt: str, resume_first: bool) -> int:
    try:
        if resume_first:
            sw.resume()
        job = sw.generate(prompt)
        job.wait(timeout=30)
        return 0
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        return 1


def mp_child(prompt: str) -> None:
    code = child_work(prompt, resume_first=True)
    sys.stdout.flush()
    os._exit(code)


def main() -> None:
    prompt = sys.argv[1]
    job = sw.generate(prompt)
    say({"event": "submitted", "pid": os.getpid(), "local_id": job.local_id})
    sys.stdin.readline()
    codes = []
    pid = os.fork()
    if pid == 0:
        os._exit(child_work(f"{prompt} / os.fork child", resume_first=False))
    process = multiprocessing.get_context("fork").Process(
        target=mp_child, args=(f"{prompt} / multiprocessing child",))
    process.start()
    _, status = os.waitpid(pid, 0)
    codes.append(os.waitstatus_to_exitcode(status))
    process.join(60)
    codes.append(process.exitcode)
    say({"event": "children", "exit_codes": codes, "status_now": str(job.status)})
    error = None
    try:
        job.wait(timeout=60)
    except (sw.SoraError, TimeoutError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    say({"id": job.id, "status": str(job.status), "charge": str(job.charge), "error": error,
         "local_path": str(job.local_path) if job.local_path else None})


if __name__ == "__main__":
    main()
