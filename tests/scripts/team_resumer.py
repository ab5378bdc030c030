"""A teammate on another host: ``sw.resume()`` the team journal, wait, report as JSON.

    python team_resumer.py LEASE_SECONDS

LEASE_SECONDS replaces the heartbeat lease (120 s) after which another host's rows are
presumed dead, so a test need not wait two minutes. Run it in its own UTS namespace with
another host name to be "another host".
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys

import sora_widgets as sw
from sora_widgets.core import owner


def main() -> None:
    owner.LEASE_SECONDS = float(sys.argv[1])
    resumed = sw.resume()
    for job in resumed:
        with contextlib.suppress(sw.JobFailed):
            job.wait(timeout=120)
    print(json.dumps({
        "host": socket.gethostname(),
        "resumed": [{"local_id": j.local_id, "task_id": j.id, "status": j.status,
                     "local_path": str(j.local_path) if j.local_path else None}
                    for j in resumed],
        "jobs": [{"local_id": j.local_id, "task_id": j.id, "status": j.status,
                  "charge": j.charge} for j in sw.jobs(team=True)],
    }), flush=True)


if __name__ == "__main__":
    main()
