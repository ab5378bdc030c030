"""A kernel for tests/test_warm_prior.py: ``learn N`` runs N jobs to completion and exits
(the prior is written at exit); ``first`` submits one job and prints, as JSON, what its
schedule's prior held once the journal's prior was read (before the job completes)."""

from __future__ import annotations

import json
import sys
import time

import sora_widgets as sw
from sora_widgets.engine.job import poller


def main() -> None:
    mode = sys.argv[1]
    if mode == "learn":
        jobs = [sw.generate(f"warm prior {i}", force=True) for i in range(int(sys.argv[2]))]
        for job in jobs:
            job.wait()
        print(json.dumps({"learned": len(jobs)}), flush=True)
        return
    job = sw.generate("warm prior first job of a new kernel", force=True)
    deadline = time.monotonic() + 60.0
    while time.monotonic() < deadline:
        track = poller().records().get(job.key)
        schedule = None if track is None else track.schedule
        if schedule is not None and schedule.prior.jobs_learned > 0:
            print(json.dumps({"jobs_learned": schedule.prior.jobs_learned,
                              "summary": schedule.prior.summary(),
                              "weights": schedule.prior.export()}), flush=True)
            job.wait()
            return
        time.sleep(0.005)
    print(json.dumps({"jobs_learned": 0}), flush=True)


if __name__ == "__main__":
    main()
