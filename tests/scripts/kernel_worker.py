"""One of two "kernels" sharing a journal: submit N jobs, adopt the other's, finish all.

    python kernel_worker.py TAG N TOTAL

Prints ``ready`` once imported, waits for a line on stdin (so both start together),
then prints one JSON line with what it saw.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time

import sora_widgets as sw
from sora_widgets.studio.studio import default_studio


def main() -> None:
    tag, count, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    print("ready", flush=True)
    sys.stdin.readline()
    jobs = [sw.generate(f"{tag} kernel job {i}", aspect_ratio="9:16" if i % 2 else "16:9")
            for i in range(count)]
    # Once both kernels' jobs have task ids, adopt the other's: both poll and save them.
    deadline = time.monotonic() + 60
    while sum(r.task_id is not None for r in default_studio().journal().history()) < total:
        if time.monotonic() > deadline:
            raise SystemExit("the other kernel's jobs never appeared in the journal")
        time.sleep(0.01)
    adopted = [j for j in sw.resume() if j not in jobs]
    for job in jobs + adopted:
        with contextlib.suppress(sw.JobFailed):
            job.wait(timeout=120)
    print(json.dumps({
        "own": [[j.local_id, j.id, j.status, str(j.local_path)] for j in jobs],
        "adopted": [j.id for j in adopted],
        "history": len(sw.jobs()),
    }), flush=True)


if __name__ == "__main__":
    main()
