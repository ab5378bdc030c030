"""A kernel that will be killed with SIGKILL: it submits one job and keeps tracking it.

    python crash_victim.py PHASE PROMPT

Environment: SORA_API_KEY, SORA_BASE_URL, SORA_WIDGETS_HOME, SORA_POLL_SCALE. For the
phase ``before_post`` the client's submit is replaced by one that announces itself and
never sends, so the kill lands provably between the journal's intent row and the POST.
Everything else is the package as shipped. Lines on stdout report the job's changes.
"""

from __future__ import annotations

import asyncio
import sys
import threading

import sora_widgets as sw
from sora_widgets.relay import client


def main() -> None:
    phase, prompt = sys.argv[1], sys.argv[2]
    if phase == "before_post":
        async def never_sent(self: object, request: object) -> object:
            print("about-to-post", flush=True)
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

        client.AsyncSoraClient.submit = never_sent  # type: ignore[method-assign]
    job = sw.generate(prompt)
    job.observe(lambda change: print(f"{change['name']}={change['new']}", flush=True),
                names=["id", "status", "local_path"])
    print(f"local_id={job.local_id}", flush=True)
    threading.Event().wait(60)  # the parent kills us long before this


if __name__ == "__main__":
    main()
