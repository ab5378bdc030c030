"""One teammate's kernel: submit some prompts together with the others, report the outcome.

    python team_submitter.py BARRIER_DIR NAME PROMPT [PROMPT ...]

The journal, the relay, the budget and the user come from the environment (SORA_*). The
process opens the journal and the relay backend first, writes ``BARRIER_DIR/NAME.ready``,
then waits for ``BARRIER_DIR/go`` (the parent creates it once every process is ready), so
all the submits start at the same instant. Each prompt goes through ``sw.generate``; a
refusal is recorded, an accepted job is waited for. One JSON line on stdout at the end.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path

import sora_widgets as sw
from sora_widgets.core.errors import BudgetExceededError
from sora_widgets.studio.studio import default_studio


def main() -> None:
    barrier, name, prompts = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
    studio = default_studio()
    studio.journal()                 # connect (and migrate) before the race, not during it
    studio.backend()
    (barrier / f"{name}.ready").write_text("")
    go = barrier / "go"
    deadline = time.monotonic() + 120
    while not go.exists():
        if time.monotonic() > deadline:
            raise SystemExit("the parent never said go")
        time.sleep(0.001)
    jobs, refused = [], []
    for prompt in prompts:
        try:
            jobs.append(sw.generate(prompt, aspect_ratio="16:9"))
        except BudgetExceededError as exc:
            refused.append({"prompt": prompt, "scope": exc.scope, "message": str(exc)})
    for job in jobs:
        with contextlib.suppress(sw.JobFailed):
            job.wait(timeout=120)
    print(json.dumps({
        "name": name,
        "jobs": [{"prompt": j.prompt, "local_id": j.local_id, "task_id": j.id,
                  "status": j.status, "cached": j.reused} for j in jobs],
        "refused": refused,
    }), flush=True)


if __name__ == "__main__":
    main()
