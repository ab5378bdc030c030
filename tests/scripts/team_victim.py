"""A teammate's kernel that is about to be SIGKILLed: submit one prompt, say so, hang.

    python team_victim.py PROMPT MOMENT [LEASE_SECONDS HEARTBEAT_SECONDS]

MOMENT ``answered``: prints ``ready <task id>`` once the task id is in the journal (the
handle shows it only after the journal has it). MOMENT ``posting``: prints ``ready`` right
after ``sw.generate`` returned (the POST runs on the poller thread; the parent watches the
relay for it). MOMENT ``answered+report``: as ``answered``, then, once the handle is
finished, prints ``done <status> <local path or ->``. Then sleeps until killed (its poller
keeps working: a live owner). With LEASE_SECONDS and HEARTBEAT_SECONDS the lease is
shortened (see ``team_lease``).
"""

from __future__ import annotations

import contextlib
import sys
import time

import sora_widgets as sw
from tests.scripts.team_lease import shorten


def main() -> None:
    prompt, moment = sys.argv[1], sys.argv[2]
    if len(sys.argv) > 4:
        shorten(float(sys.argv[3]), float(sys.argv[4]))
    job = sw.generate(prompt, aspect_ratio="16:9")
    if moment.startswith("answered"):
        deadline = time.monotonic() + 60
        while job.id is None:
            if time.monotonic() > deadline:
                raise SystemExit("no task id after 60 s")
            time.sleep(0.005)
        print(f"ready {job.id}", flush=True)
        if moment.endswith("+report"):
            with contextlib.suppress(sw.SoraError):
                job.wait()
            print(f"done {job.status} {job.local_path or '-'}", flush=True)
    else:
        print("ready", flush=True)
    time.sleep(3600)


if __name__ == "__main__":
    main()
