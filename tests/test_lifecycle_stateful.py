"""Issue 11: a hypothesis state machine drives the job lifecycle against the emulator (the
paid path: a key, $0.90 a job) with faults, and checks the money invariants after every
step:

* every charged job stays in ``Studio.journal().unfinished()`` until it is saved or failed;
* the POSTs the emulator saw == the jobs the journal holds as charged or maybe charged;
* no job is both settled and tracked by the poller;

and, before those are read, that no journal row stays 'submitting': each POST's outcome
is recorded (an in-flight row that never resolves is a lost task id or a hang).

Steps: generate (a few prompts, force or not), generate-then-cancel (Ctrl-C right after
the submit), cancel, wait, resume, restart the Studio (a kernel restart in-process),
inject a POST fault (5xx, dropped or reset connection, garbled answer, accepted then
dropped), a journal that refuses every write of a task id ("disk full") until a job has
finished (issue 21 #1: the writes must land once it has room, tracked or not), and a
second process that resumes the journal and exits (it must neither re-send a POST nor
strand a row). Polls meet random 503 / 429 / dropped / garbled answers throughout.
Small on purpose: 10 examples of up to 8 steps, no shrinking, derandomized.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

import sora_widgets as sw
from sora_widgets.emulator import RunningEmulator
from sora_widgets.studio.studio import Studio

from .conftest import VIP_KEY
from .doubles import wait_until
from .scripts.trust_support import (
    SCALE,
    FailingWrites,
    fail_task_id_writes,
    journal_rows,
    kernel_env,
    phase_of,
    replace_default_studio,
    run_kernel,
    tracked_jobs,
    unfinished_local_ids,
)

PROMPTS = ("a red fox in the snow", "a blue whale at dawn", "a green parrot on a mast")
POST_FAULTS = ("500", "502", "503", "504", "drop", "reset", "malformed", "accept_then_drop")
#: How long a POST may stay unresolved before the machine calls it stuck.
RESOLVE_SECONDS = 15.0


def lifecycle_machine(emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch,
                      root: Path, writes: FailingWrites) -> type[RuleBasedStateMachine]:
    class Lifecycle(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.home = Path(tempfile.mkdtemp(dir=root)) / "home"
            monkeypatch.setenv("SORA_WIDGETS_HOME", str(self.home))
            emulator.clear_faults()
            emulator.reset_stats()
            self.studio = self._new_studio()
            self.jobs: list[Any] = []

        def _new_studio(self) -> Studio:
            fresh = Studio()
            replace_default_studio(monkeypatch, fresh)
            return fresh

        # -- steps ----------------------------------------------------------------------------

        @initialize(prompt=st.sampled_from(PROMPTS))
        def first_job(self, prompt: str) -> None:
            self.jobs.append(sw.generate(prompt))

        @rule(prompt=st.sampled_from(PROMPTS), force=st.booleans())
        def generate(self, prompt: str, force: bool) -> None:
            self.jobs.append(sw.generate(prompt, force=force))

        @rule(prompt=st.sampled_from(PROMPTS))
        def generate_then_cancel(self, prompt: str) -> None:
            job = sw.generate(prompt, force=True)
            job.cancel()
            self.jobs.append(job)

        @rule(index=st.integers(0, 20))
        def cancel(self, index: int) -> None:
            if self.jobs:
                self.jobs[index % len(self.jobs)].cancel()

        @rule(index=st.integers(0, 20))
        def wait(self, index: int) -> None:
            if self.jobs:
                with contextlib.suppress(sw.SoraError, TimeoutError):
                    self.jobs[index % len(self.jobs)].wait(timeout=5)

        @rule()
        def resume(self) -> None:
            for job in sw.resume():
                if all(job is not mine for mine in self.jobs):
                    self.jobs.append(job)

        @rule()
        def restart_studio(self) -> None:
            self._resolved()              # a kernel restarted by a user, not mid-POST
            self.studio.close()
            self.studio = self._new_studio()
            self.jobs = []

        @rule(fault=st.sampled_from(POST_FAULTS))
        def inject_post_fault(self, fault: str) -> None:
            emulator.inject(fault, method="POST")

        @rule(prompt=st.sampled_from(PROMPTS))
        def journal_full_until_a_job_is_done(self, prompt: str) -> None:
            writes.failing = True
            try:
                job = sw.generate(prompt, force=True)
                self.jobs.append(job)
                wait_until(lambda: job.finished, RESOLVE_SECONDS, fail=False)
            finally:
                writes.failing = False        # the disk has room again

        @rule()
        def resume_in_another_process(self) -> None:
            run_kernel(["resume"], kernel_env(self.home, emulator.base_url, VIP_KEY))

        # -- invariants -----------------------------------------------------------------------

        def _resolved(self) -> list[dict[str, Any]]:
            """The journal once every POST's outcome is recorded (none left 'submitting')."""
            rows: list[dict[str, Any]] = []

            def no_submitting() -> bool:
                rows[:] = journal_rows(self.home)
                return not [r for r in rows if r["status"] == "submitting"]

            resolved = wait_until(no_submitting, RESOLVE_SECONDS, fail=False, step=0.05)
            stuck = [r for r in rows if r["status"] == "submitting"]
            assert resolved, (f"{len(stuck)} journal row(s) still 'submitting' after "
                              f"{RESOLVE_SECONDS} s: {stuck}")
            return rows

        @invariant()
        def charged_jobs_stay_unfinished_until_saved_or_failed(self) -> None:
            rows = self._resolved()
            unfinished = unfinished_local_ids(self.studio)
            for row in rows:
                if row["charge"] != "charged":
                    continue
                saved = row["status"] == "completed" and row["local_path"]
                if not saved and row["status"] != "failed":
                    assert row["local_id"] in unfinished, (
                        f"a charged job that is neither saved nor failed left unfinished(): "
                        f"{row}")

        @invariant()
        def posts_equal_charged_plus_maybe(self) -> None:
            rows = self._resolved()
            paid = [r for r in rows if r["charge"] in ("charged", "maybe")]
            posts = emulator.stats()["posts"]
            assert posts == len(paid), (
                f"the emulator saw {posts} POSTs but the journal holds {len(paid)} charged "
                f"or maybe-charged jobs: {rows}")

        @invariant()
        def no_job_is_settled_and_tracked(self) -> None:
            def both() -> list[Any]:
                return [j for j in tracked_jobs() if phase_of(j) == "settled"]

            clean = wait_until(lambda: not both(), 2, fail=False)
            assert clean, f"settled jobs still tracked by the poller: {both()}"

        def teardown(self) -> None:
            self.studio.close()

    return Lifecycle


def test_the_lifecycle_keeps_its_money_invariants_under_faults(
        emulator: RunningEmulator, home: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    emulator.config.update({
        "queue_seconds": (0.0, 5.0), "run_seconds": (10.0, 40.0), "shared_video": True,
        "failure_rate": 0.2, "retry_after": 0.0,
        "get_fault_rates": {"503": 0.1, "429": 0.05, "drop": 0.05, "malformed": 0.05},
    })
    monkeypatch.setenv("SORA_API_KEY", VIP_KEY)
    monkeypatch.setenv("SORA_BASE_URL", emulator.base_url)
    monkeypatch.setenv("SORA_POLL_SCALE", str(SCALE))
    writes = fail_task_id_writes(monkeypatch)
    writes.failing = False
    machine = lifecycle_machine(emulator, monkeypatch, tmp_path, writes)
    run_state_machine_as_test(machine, settings=settings(
        max_examples=10, stateful_step_count=8, deadline=None, derandomize=True,
        database=None, phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow]))
