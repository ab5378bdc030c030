"""A process that makes a 3-shot storyboard and stops dead at a chosen point, where the test
kills it with SIGKILL (``kill -9``): nothing of this process's shutdown code runs.

``after-shot-1``: shot 1 is finished and recorded, shot 2 not submitted yet (the driver is
held in its observer). ``during-shot-1``: shot 1's POST is answered (its task id is in
the journal) and it is still running on the relay.

Prints one JSON line when it reached the point, then waits to be killed.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

import sora_widgets as sw

SHOTS = ["a fox wakes up in a snowy forest", "the fox trots to a frozen river",
         "the fox leaps across the ice"]


def main(point: str) -> None:
    held = threading.Event()
    board = sw.storyboard(SHOTS, confirm=True)

    def reached(**facts: Any) -> None:
        print(json.dumps({"point": point, "plan_id": board.plan_id, **facts}), flush=True)
        held.wait()          # never set: the driver stays here until the process is killed

    def on_current(change: dict[str, Any]) -> None:
        if point == "after-shot-1" and change["new"] == 1:
            first = board.jobs[0]
            reached(job=first.local_id, task_id=first.id, status=str(first.status))

    def on_jobs(change: dict[str, Any]) -> None:
        first = change["new"][0]
        if point == "during-shot-1" and first is not None:
            deadline = time.monotonic() + 30
            while first.id is None and time.monotonic() < deadline:
                time.sleep(0.01)
            reached(job=first.local_id, task_id=first.id, status=str(first.status))

    board.observe(on_current, names="current")
    board.observe(on_jobs, names="jobs")
    held.wait()


if __name__ == "__main__":
    main(sys.argv[1])
