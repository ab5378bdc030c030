"""A teammate on another host: ``sw.resume()`` the team journal, wait, report as JSON.

    python team_resumer.py LEASE_SECONDS [WAIT_SECONDS [HEARTBEAT_SECONDS]]

LEASE_SECONDS replaces the heartbeat lease (120 s) after which another host's rows are
presumed dead, so a test need not wait two minutes; HEARTBEAT_SECONDS the renewal period
(see ``team_lease``). WAIT_SECONDS bounds each job's wait (120 s); a job still unfinished
then is reported as it stands. Run it in its own UTS namespace with another host name to
be "another host".
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import time

import sora_widgets as sw
from tests.scripts.team_lease import shorten


def main() -> None:
    wait = float(sys.argv[2]) if len(sys.argv) > 2 else 120.0
    shorten(float(sys.argv[1]), float(sys.argv[3]) if len(sys.argv) > 3 else None)
    start = time.monotonic()
    resumed = sw.resume()
    for job in resumed:
        with contextlib.suppress(sw.JobFailed, TimeoutError):
            job.wait(timeout=wait)
    print(json.dumps({
        "host": socket.gethostname(),
        "seconds": round(time.monotonic() - start, 3),
        "resumed": [{"local_id": j.local_id, "task_id": j.id, "status": j.status,
                     "local_path": str(j.local_path) if j.local_path else None}
                    for j in resumed],
        "jobs": [{"local_id": j.local_id, "task_id": j.id, "status": j.status,
                  "charge": j.charge} for j in sw.jobs(team=True)],
    }), flush=True)


if __name__ == "__main__":
    main()
