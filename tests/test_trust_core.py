"""Issue 11 (trust core): every way 0.1 was seen to lose a paid job, pay twice, leak the key
or run out of memory or disk, each as a regression test (one process; the cases that take
several are in ``test_trust_processes.py``).

The relay is the emulator where it can play the part, else a :class:`ToyRelay` (a real
loopback server scripted per test: held POSTs, hostile task ids and statuses, echoed keys,
slow, endless and huge answers). "A new process's resume()" is a real subprocess.

Cases (numbered as in the brief of issue 11): 3 journal write fails after the POST;
4 relay status unknown/missing/unrecognised; 6 cancel() during the POST; 7 task ids that
differ only in unsafe characters; 8 + 17 input that cannot be sent, NaN/inf budgets;
9 a second Studio on an in-flight row; 10 the new key never goes to the old relay;
11 ``%%sora`` never evaluates ``{...}``; 12 verbose tracebacks; 13 a key echoed in
``video_url``; 14 slow and endless video links; 15 a huge poll answer; 18 a corrupt journal.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import threading
import time
import traceback
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.ultratb import VerboseTB

import sora_widgets as sw
from sora_widgets.core.models import VideoRequest
from sora_widgets.emulator import RunningEmulator
from sora_widgets.studio.studio import Studio

from .conftest import VIP_KEY
from .doubles import Stream, ToyRelay, completed, mp4_bytes, running, wait_until
from .scripts.trust_support import (
    KEY,
    NONVIP_KEY,
    SCALE,
    fail_task_id_writes,
    files_under,
    journal_rows,
    kernel_env,
    leaks,
    phase_of,
    poller,
    resumed_ids,
    run_kernel,
    submit_via,
)

MB = 1024 * 1024


@pytest.fixture
def toy(home: Path, studio: Studio, monkeypatch: pytest.MonkeyPatch
        ) -> Iterator[Callable[..., ToyRelay]]:
    """``toy(**ToyRelay kwargs)``: start a ToyRelay and point this kernel at it (a key set,
    the client's schedule on the tests' fast clock)."""
    made: list[ToyRelay] = []

    def make(*, key: str = KEY, **kwargs: Any) -> ToyRelay:
        relay = ToyRelay(**kwargs)
        made.append(relay)
        monkeypatch.setenv("SORA_API_KEY", key)
        monkeypatch.setenv("SORA_BASE_URL", relay.base_url)
        monkeypatch.setenv("SORA_POLL_SCALE", str(SCALE))
        return relay

    yield make
    for relay in made:
        relay.stop()


def settle(job: Any, seconds: float = 10.0) -> None:
    """Give a job that should never have existed the time to show what it became."""
    wait_until(lambda: str(job.status) != "submitting", seconds, fail=False)


# -- 3. the journal write right after the POST fails ------------------------------------------


def test_a_failed_journal_write_after_the_post_keeps_the_paid_task_id(
        toy: Callable[..., ToyRelay], home: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """The POST succeeded (charged) but writing its task id to the journal fails ("disk
    full"): the id is kept on the handle, the job says so (``job.notice``) and a warning
    names the id; once the disk has room the id reaches the journal, so a new process's
    resume() finds the job."""
    caplog.set_level(logging.DEBUG)
    writes = fail_task_id_writes(monkeypatch)
    relay = toy(task=running)
    job = sw.generate("a journal on a full disk")
    wait_until(lambda: writes.failures, 10, "the write of the task id after the POST")
    wait_until(lambda: job.id is not None, 5, fail=False)
    assert job.id == "v_toy_1", (
        f"the paid task id was dropped when the journal write failed: status {job.status!r}, "
        f"charge {job.charge!r}, error {job.error!r}")
    assert job.charge == "charged" and job.status in ("queued", "in_progress"), job.status
    wait_until(lambda: getattr(job, "notice", None), 5, fail=False)
    notice = getattr(job, "notice", None)
    assert notice and "journal" in notice.lower(), f"job.notice does not say so: {notice!r}"
    warned = [r for r in caplog.records
              if r.levelno >= logging.WARNING and "v_toy_1" in r.getMessage()]
    assert warned, "no warning in the log names the task id the journal could not keep"

    writes.failing = False           # the disk has room again: no new submit, no resume yet
    wait_until(lambda: any(r["id"] == "v_toy_1" for r in journal_rows(home)), 15,
               "the kept task id to be written to the journal", step=0.1)
    assert "v_toy_1" in resumed_ids(home, relay.base_url, KEY)
    assert len(relay.posts()) == 1


def test_a_failed_journal_write_that_outlasts_the_job_still_lands(
        toy: Callable[..., ToyRelay], home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 21 #1: the journal refuses every write that carries the task id ("disk full")
    until well after the job completed, its video was saved and the poller let it go; once
    the disk has room the row still gets its task id, the charge and the final status
    (0.2 retried only for jobs the poller still tracked: the row stayed ``submitting``
    without a task id, and after exit the same request would reuse a dead "maybe" row)."""
    writes = fail_task_id_writes(monkeypatch)
    relay = toy(task=completed)
    job = sw.generate("a journal full until after the job")
    wait_until(lambda: job.settled and job.local_path is not None, 20,
               "the job to complete and its video to be saved (in memory)")
    assert job.id == "v_toy_1" and job.status == "completed" and job.charge == "charged"
    wait_until(lambda: not poller().tracked(), 10, "the poller to let go of the job")
    row = next(r for r in journal_rows(home) if r["local_id"] == job.local_id)
    assert row["id"] is None and row["status"] == "submitting", row    # still held back

    writes.failing = False           # the disk has room again; the kernel keeps running
    wait_until(lambda: next(r for r in journal_rows(home) if r["local_id"] == job.local_id
                            )["id"] == "v_toy_1", 15, "the kept task id to reach the journal",
               step=0.1)
    row = next(r for r in journal_rows(home) if r["local_id"] == job.local_id)
    assert (row["status"], row["charge"]) == ("completed", "charged"), row
    assert row["local_path"] == str(job.local_path)
    wait_until(lambda: not job.notice, 5, "the notice about the journal to clear")
    assert len(relay.posts()) == 1


# -- 4. a relay status that is not one of ours --------------------------------------------------


@pytest.mark.parametrize("word", ["unknown", None, "mystery"],
                         ids=["status unknown", "status missing", "status mystery"])
def test_an_unrecognised_relay_status_keeps_a_charged_job_polling(
        toy: Callable[..., ToyRelay], home: Path, word: str | None) -> None:
    """The relay answers polls with a status word we do not know ("unknown" is the relay's
    word here, not our 'submit outcome unknown'), or with none: the job stays a charged,
    polling job (its raw word in ``relay_status``), a restarted kernel's resume() includes
    it, and it finishes when the relay says "completed"."""
    finish = threading.Event()

    def task(relay: ToyRelay, task_id: str, n: int) -> dict[str, Any]:
        if finish.is_set():
            return completed(relay, task_id, n)
        body: dict[str, Any] = {"id": task_id, "task_id": task_id, "progress": 40}
        if word is not None:
            body["status"] = word
        return body

    relay = toy(task=task)
    job = sw.generate(f"a relay that says {word!r}")
    wait_until(lambda: job.id is not None and len(relay.gets(job.id)) >= 3, 10, "three polls")
    assert job.status in ("queued", "in_progress"), (
        f"the relay's status {word!r} became job.status {job.status!r}: a charged, running "
        "job looks settled (0.1 reads the relay's 'unknown' as its own)")
    assert job.charge == "charged" and phase_of(job) == "polling", (job.charge, phase_of(job))
    if word is not None:
        assert getattr(job, "relay_status", None) == word
    assert job.id in resumed_ids(home, relay.base_url, KEY), (
        "a restarted kernel's resume() skips a charged job whose relay status is odd")
    finish.set()
    job.wait(timeout=30)
    assert job.status == "completed" and job.local_path is not None
    assert job.local_path.read_bytes() == mp4_bytes(job.id)


# -- 6. cancel() while the POST is out ------------------------------------------------------


def test_cancel_during_the_post_keeps_the_task_id_for_resume(
        toy: Callable[..., ToyRelay], home: Path) -> None:
    """cancel() while the POST's answer is held: when the answer comes, its task id still
    reaches the journal (the job was charged) and a new process's resume() finds it."""
    prompt = "a job cancelled while its POST is out"
    relay = toy(hold={prompt}, task=running)
    job = sw.generate(prompt)
    wait_until(lambda: relay.posts(prompt), 10, "the POST to reach the relay")
    job.cancel()
    relay.release(prompt)
    recorded = wait_until(lambda: any(r["id"] == "v_toy_1" for r in journal_rows(home)), 10,
                          fail=False, step=0.1)
    assert recorded, (
        f"the task id of a job cancelled mid-POST never reached the journal (charged, "
        f"and lost): {journal_rows(home)}")
    assert "v_toy_1" in resumed_ids(home, relay.base_url, KEY)
    assert len(relay.posts(prompt)) == 1


# -- 7. task ids that map to one file name ----------------------------------------------------

HOSTILE_IDS = {"first clip": "clip:1", "second clip": "clip/1", "third clip": "clip_1",
               "fourth clip": "clip 1"}


def test_task_ids_differing_in_unsafe_characters_save_to_different_files(
        toy: Callable[..., ToyRelay], home: Path) -> None:
    """``clip:1``, ``clip/1``, ``clip_1`` and ``clip 1`` are four paid videos: four files,
    each with its own bytes, all under SORA_WIDGETS_HOME (0.1: one ``clip_1.mp4``)."""
    toy(task_ids=HOSTILE_IDS)
    jobs = {prompt: sw.generate(prompt) for prompt in HOSTILE_IDS}
    for job in jobs.values():
        job.wait(timeout=30)
    paths = {job.id: job.local_path for job in jobs.values()}
    assert sorted(paths) == sorted(HOSTILE_IDS.values())
    assert len(set(paths.values())) == len(paths), (
        f"task ids mapped to the same file, one paid video overwrote another: {paths}")
    for task_id, path in paths.items():
        assert path is not None and path.read_bytes() == mp4_bytes(task_id), task_id
        assert home.resolve() in path.resolve().parents, path


# -- 8 and 17. input that cannot be sent --------------------------------------------------------

UNSENDABLE: list[tuple[str, dict[str, Any], str | None]] = [
    ("lone surrogate in the prompt", {"prompt": "a cat \ud800 in a hat"}, None),
    ("NUL in the prompt", {"prompt": "a cat\x00 in a hat"}, None),
    ("key with a newline", {"prompt": "a cat in a hat"}, VIP_KEY[:8] + "\n" + VIP_KEY[8:]),
    ("key with a NBSP", {"prompt": "a cat in a hat"}, VIP_KEY[:8] + "\xa0" + VIP_KEY[8:]),
    ("text file named .png", {"prompt": "a cat in a hat", "image": "TEXT.png"}, None),
]


@pytest.mark.parametrize(("kwargs", "key"), [c[1:] for c in UNSENDABLE],
                         ids=[c[0] for c in UNSENDABLE])
def test_input_that_cannot_be_sent_is_refused_before_anything_is_sent(
        relay: RunningEmulator, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        kwargs: dict[str, Any], key: str | None) -> None:
    """A ValidationError from sw.generate itself: 0 POSTs, no 'maybe' charge, and the
    budget untouched (one $0.90 job still fits a $0.90 budget afterwards)."""
    monkeypatch.setenv("SORA_BUDGET_USD", "0.90")
    if kwargs.get("image") == "TEXT.png":
        fake = tmp_path / "x.png"
        fake.write_text("not a picture, only named like one\n" * 20)
        kwargs = {**kwargs, "image": str(fake)}
    if key is not None:
        monkeypatch.setenv("SORA_API_KEY", key)
    try:
        job = sw.generate(**kwargs)
    except sw.ValidationError:
        job = None
    if job is not None:
        settle(job)
        raise AssertionError(
            f"sw.generate accepted input that cannot be sent: the job became "
            f"{job.status!r}, charge {job.charge!r} ({job.error!r}); "
            f"{relay.stats()['posts']} POST(s)")
    assert relay.stats()["posts"] == 0
    monkeypatch.setenv("SORA_API_KEY", VIP_KEY)
    assert not [j for j in sw.jobs() if j.charge == "maybe"]
    sw.generate("a dog on a skateboard").wait(timeout=30)     # the budget is whole
    assert relay.stats()["posts"] == 1


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "Infinity"])
def test_a_budget_that_is_not_a_finite_number_is_a_validation_error(
        relay: RunningEmulator, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """SORA_BUDGET_USD=nan or inf would silently switch the cap off (0.1)."""
    monkeypatch.setenv("SORA_BUDGET_USD", value)
    try:
        job = sw.generate("a cat under a budget of " + value)
    except sw.ValidationError as exc:
        assert "SORA_BUDGET_USD" in str(exc), str(exc)
    else:
        settle(job)
        raise AssertionError(f"SORA_BUDGET_USD={value} was accepted: the cap is off and the "
                             f"job was sent ({relay.stats()['posts']} POST)")
    assert relay.stats()["posts"] == 0


# -- 9. a second Studio reusing an in-flight row ---------------------------------------------


def test_a_second_studio_reusing_an_in_flight_row_reaches_its_task_id(
        toy: Callable[..., ToyRelay], home: Path) -> None:
    """Two Studios on one home (two kernels): B asks for A's request while A's POST is
    out; B's handle must reach A's task id once A records it, and finish."""
    prompt = "one request, two studios"
    relay = toy(hold={prompt})
    first = sw.generate(prompt)
    wait_until(lambda: relay.posts(prompt), 10, "A's POST to reach the relay")
    second = submit_via(Studio(), prompt)
    relay.release(prompt)
    reached = wait_until(lambda: second.id is not None, 10, fail=False)
    assert reached, (
        f"B's handle on A's in-flight row is stuck in {second.status!r} (A has "
        f"{first.id!r})")
    assert second.id == first.id
    second.wait(timeout=30)
    assert second.status == "completed" and len(relay.posts(prompt)) == 1


# -- 10. the new key never goes to the old relay ----------------------------------------------

NEW_KEY = f"sk-NEWRELAY-{secrets.token_hex(16)}"


def _old_relays_job(home: Path, old: ToyRelay) -> str:
    """A job submitted by an earlier kernel (a subprocess) to the old relay with its key."""
    out = run_kernel(["submit", "a job of the old relay", "--until", "id"],
                     kernel_env(home, old.base_url, KEY))
    assert out["id"], out
    return str(out["id"])


def _switch_to(monkeypatch: pytest.MonkeyPatch, new: ToyRelay) -> None:
    monkeypatch.setenv("SORA_API_KEY", NEW_KEY)
    monkeypatch.setenv("SORA_BASE_URL", new.base_url)
    monkeypatch.setenv("SORA_POLL_SCALE", str(SCALE))


def _assert_new_key_kept_home(old: ToyRelay, new: ToyRelay, before: int, task_id: str,
                              jobs: Callable[[], list[Any]], where: str) -> None:
    # A window that ends at the first sign: a request at the old relay, or a notice.
    wait_until(lambda: len(old.requests) > before
               or any(getattr(j, "notice", None) for j in jobs()), 5, fail=False)
    wait_until(lambda: len(old.requests) > before + 1, 1, fail=False)
    sent = sum(NEW_KEY in r.authorization for r in old.requests[before:])
    assert sent == 0, f"{where} sent the new relay's key to the old relay {sent} times"
    assert not new.gets(task_id), f"{where} polled the old relay's job at the new relay"
    notices = [getattr(j, "notice", None) for j in jobs() if j.id == task_id]
    assert notices and notices[0], (
        f"{where} does not say that the old relay's job cannot be polled without its key")


def test_resume_never_sends_the_new_key_to_the_old_relay(
        home: Path, studio: Studio, monkeypatch: pytest.MonkeyPatch) -> None:
    with ToyRelay(task=running) as old, ToyRelay(task=running) as new:
        task_id = _old_relays_job(home, old)
        _switch_to(monkeypatch, new)
        before = len(old.requests)
        resumed = sw.resume()
        _assert_new_key_kept_home(old, new, before, task_id, lambda: resumed, "resume()")


@pytest.fixture
def shell(studio: Studio, monkeypatch: pytest.MonkeyPatch) -> InteractiveShell:
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "sora_widgets")
    monkeypatch.setattr(ip, "display_pub", CapturingDisplayPublisher())
    return ip


def test_sora_show_never_sends_the_new_key_to_the_old_relay(
        home: Path, shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch) -> None:
    with ToyRelay(task=running) as old, ToyRelay(task=running) as new:
        task_id = _old_relays_job(home, old)
        _switch_to(monkeypatch, new)
        before = len(old.requests)
        result = shell.run_cell(f"%sora show {task_id}", store_history=False)
        assert result.error_in_exec is None or "key" in str(result.error_in_exec).lower(), (
            result.error_in_exec)
        _assert_new_key_kept_home(old, new, before, task_id, lambda: sw.jobs(),
                                  "%sora show")


# -- 11. %%sora never evaluates {...} -----------------------------------------------------------


def _run_sora(shell: InteractiveShell, relay: ToyRelay, source: str) -> str | None:
    """Run a %sora cell; the prompt it POSTed (None if it raised before sending)."""
    before = len(relay.posts())
    result = shell.run_cell(source, store_history=False)
    if result.error_in_exec is not None:
        return None
    wait_until(lambda: len(relay.posts()) > before, 10, f"the POST of {source!r}")
    return relay.posts()[-1].prompt


def test_a_sora_cell_substitutes_names_but_never_evaluates_expressions(
        shell: InteractiveShell, toy: Callable[..., ToyRelay], tmp_path: Path) -> None:
    relay = toy()
    calls: list[int] = []
    shell.user_ns.update(animal="corgi", boom=lambda: calls.append(1) or "BOOM")
    shell.run_cell("import os", store_history=False)
    markers = {form: tmp_path / f"evaluated-{form}" for form in ("cell", "line")}

    # Plain names are still substituted, in both forms.
    assert "corgi" in (_run_sora(shell, relay, "%%sora\na {animal} surfing a wave\n") or "")
    assert "corgi" in (_run_sora(shell, relay, "%sora a {animal} on a skateboard") or "")

    hostile = [
        "%%sora\na painted fox\n"
        f"{{__import__('os').system('touch {markers['cell']}')}}\n"
        "{os.environ['SORA_API_KEY']}\n{boom()}\n",
        f"%sora a fox {{__import__('pathlib').Path('{markers['line']}').touch()}}",
        "%sora a fox in {os.environ['SORA_API_KEY']}",
        "%sora a fox that goes {boom()}",
    ]
    prompts = [_run_sora(shell, relay, source) for source in hostile]
    evaluated = [form for form, marker in markers.items() if marker.exists()]
    assert not evaluated, f"a {{...}} expression in the %sora {evaluated} form ran code"
    assert not calls, "a {boom()} call in a %sora prompt was evaluated"
    for prompt in prompts:
        assert not leaks(prompt or "", KEY), f"the key was put in a prompt: {prompt!r}"


# -- 12. verbose tracebacks (%xmode Verbose) ------------------------------------------------------


def _raised(action: Callable[[], object]) -> BaseException:
    try:
        action()
    except Exception as exc:
        return exc
    raise AssertionError("nothing was raised")


def _verbose(exc: BaseException) -> str:
    """What %xmode Verbose shows, and a traceback with every frame's locals."""
    shown = VerboseTB(theme_name="nocolor").text(type(exc), exc, exc.__traceback__)
    with_locals = traceback.TracebackException.from_exception(exc, capture_locals=True)
    return shown + "".join(with_locals.format())


def _where_the_key_is(shown: dict[str, str]) -> str:
    """The lines of each traceback that hold a piece of a key, the keys masked (KEY is
    set before the lost submit, NONVIP_KEY only after it: which one says when it was read),
    so that a leak seen once says which frame and which local held it."""
    report = []
    for where, text in shown.items():
        lines = [line for line in text.splitlines() if leaks(line)]
        for line in lines[:20]:
            for name, key in (("KEY", KEY), ("NONVIP_KEY", NONVIP_KEY)):
                line = line.replace(key, f"<{name}>")
                for piece in {key[i:i + 8] for i in range(len(key) - 7)}:
                    line = line.replace(piece, f"<piece of {name}>")
            report.append(f"{where}: {line[:400]}")
    return "\n".join(report)


def test_verbose_tracebacks_of_failed_submits_and_polls_never_show_the_key(
        relay: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    client = sw.SoraClient(KEY, relay.base_url, max_get_attempts=1)
    request = VideoRequest.create("a traceback with its locals")
    errors: dict[str, BaseException] = {}
    relay.inject("accept_then_drop", method="POST")
    errors["sync submit, answer lost"] = _raised(lambda: client.submit(request))
    relay.inject("drop", method="GET")
    errors["sync poll, connection dropped"] = _raised(lambda: client.retrieve("v_nope"))
    errors["sync poll, 404"] = _raised(lambda: client.retrieve("v_nope"))
    client.close()

    monkeypatch.setenv("SORA_API_KEY", KEY)
    relay.inject("accept_then_drop", method="POST")
    errors["generate().wait(), answer lost"] = _raised(
        lambda: sw.generate("an answer that is lost").wait(timeout=30))
    monkeypatch.setenv("SORA_API_KEY", NONVIP_KEY)
    errors["generate().wait(), 403"] = _raised(
        lambda: sw.generate("a forbidden fruit").wait(timeout=30))

    shown = {where: _verbose(exc) for where, exc in errors.items()}
    found = {where: len(leaks(text)) for where, text in shown.items()}
    assert not any(found.values()), (
        f"verbose tracebacks show pieces of the key (where: number of pieces): {found}\n"
        + _where_the_key_is(shown))


# -- 13. a key echoed by the relay inside video_url ---------------------------------------------


def test_a_key_echoed_in_video_url_is_kept_out_of_journal_handle_and_logs(
        toy: Callable[..., ToyRelay], home: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "sora_widgets"):
        caplog.set_level(logging.DEBUG, logger=name)

    def echoing(relay: ToyRelay, task_id: str, n: int) -> dict[str, Any]:
        key = relay.gets(task_id)[-1].authorization.removeprefix("Bearer ")
        body = completed(relay, task_id, n)
        body["video_url"] = relay.video_url(task_id, f"sig={quote(key)}&key={key}")
        return body

    relay = toy(task=echoing)
    job = sw.generate("a relay that signs links with my key").wait(timeout=30)
    assert job.local_path is not None and job.local_path.read_bytes() == mp4_bytes(job.id)
    assert any("key=" in r.path for r in relay.requests), "the echoing link was not used"
    found = {"job.video_url": leaks(job.video_url or ""),
             "sw.jobs()": leaks(repr([(j.video_url, j.error) for j in sw.jobs()])),
             "log records": leaks("\n".join(f"{r.getMessage()} {r.args!r}"
                                            for r in caplog.records))}
    for path in files_under(home):
        found[str(path.relative_to(home))] = leaks(path.read_bytes())
    assert not {k: v for k, v in found.items() if v}, (
        f"the key echoed in video_url landed in: {sorted(k for k, v in found.items() if v)}")


# -- 14. slow and endless video links -----------------------------------------------------------


def _trickle() -> Stream:
    """A video link that sends 4 bytes a second (each read arrives long before any read
    timeout), 10 MB long: it never ends within a test."""
    return Stream(head=mp4_bytes("slow")[:32], chunk=b"\0", total=10 * MB, length=10 * MB,
                  interval=0.25, content_type="video/mp4")


def test_a_trickling_video_link_neither_blocks_wait_nor_runs_forever(
        toy: Callable[..., ToyRelay], home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A link that sends 4 bytes a second (each read arrives long before any read timeout):
    wait(timeout=3) ends on time, and the download gives up at SORA_DOWNLOAD_TIMEOUT."""
    monkeypatch.setenv("SORA_DOWNLOAD_TIMEOUT", "5")
    trickle = _trickle()
    relay = toy(video=lambda relay, task_id: trickle)
    job = sw.generate("a video over a very slow link")
    wait_until(lambda: relay.streams, 10, "the download to start")
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        job.wait(timeout=3)
    assert time.monotonic() - started < 3 + 1.5
    first = relay.streams[0]
    ended = wait_until(lambda: first.ended is not None, 5 + 6 - first.seconds, fail=False)
    assert ended, (f"the download of a trickling link was still running after "
                   f"{first.seconds:.1f} s ({first.bytes} bytes) with SORA_DOWNLOAD_TIMEOUT=5")
    assert first.aborted and first.seconds < 5 + 3, first


def test_slow_video_links_do_not_hold_up_the_other_jobs(
        toy: Callable[..., ToyRelay], emulator: RunningEmulator, home: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """40 jobs of one relay finish and their links trickle (a congested CDN, a hostile
    relay): at most MAX_SAVING of its downloads run at once, so another relay's job is
    still submitted, polled and saved. (Before, 32 trickling downloads took every request
    slot and the other job waited for SORA_DOWNLOAD_TIMEOUT.)"""
    from sora_widgets.engine.poller import MAX_SAVING

    monkeypatch.setenv("SORA_DOWNLOAD_TIMEOUT", "300")
    # Held slots are the subject here: the low-speed cut (tests/test_drip.py) would free them.
    monkeypatch.setenv("SORA_LOW_SPEED_LIMIT", "0")
    trickle = _trickle()
    slow = toy(video=lambda relay, task_id: trickle)
    jobs = [sw.generate(f"a slow link {i}") for i in range(40)]
    wait_until(lambda: len(slow.streams) >= MAX_SAVING and all(j.id for j in jobs), 15,
               "the first downloads to start")
    monkeypatch.setenv("SORA_BASE_URL", emulator.base_url)
    monkeypatch.setenv("SORA_API_KEY", VIP_KEY)
    other = sw.generate("a job of another relay")
    other.wait(timeout=20)
    assert other.status == "completed" and other.local_path is not None
    assert len(slow.streams) == MAX_SAVING             # the rest wait their turn
    assert not any(j.local_path for j in jobs)


def test_an_endless_video_link_stops_at_the_size_cap_and_leaves_no_file(
        toy: Callable[..., ToyRelay], home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A link that never ends (chunked, no length; the server stops at 64 MB to spare the
    test machine): the download stops near SORA_MAX_VIDEO_MB=1 and leaves no file."""
    monkeypatch.setenv("SORA_MAX_VIDEO_MB", "1")
    endless = Stream(head=mp4_bytes("endless")[:32], chunk=b"\0" * 65536, total=64 * MB,
                     length=None, content_type="video/mp4")
    relay = toy(video=lambda relay, task_id: endless)
    job = sw.generate("a video that never ends")
    wait_until(lambda: relay.streams and relay.streams[0].ended is not None, 30,
               "the first download to end")
    first = relay.streams[0]
    assert not first.finished, (
        f"the client read all {first.bytes // MB} MB of an endless link although "
        f"SORA_MAX_VIDEO_MB=1 (job {job.status!r}, saved as {job.local_path})")
    assert first.aborted and first.bytes < 16 * MB, first

    def nothing_left() -> bool:
        files = list(files_under(home / "videos"))
        return not [p for p in files if p.suffix == ".part" or p.stat().st_size > MB]

    wait_until(nothing_left, 10, "no partial or oversized file in the videos directory")
    assert job.local_path is None


# -- 15. a huge poll answer ---------------------------------------------------------------------


def _huge(relay: ToyRelay, task_id: str, n: int) -> Stream:
    head = b'{"id": "%s", "status": "queued", "progress": 0, "pad": [' % task_id.encode()
    return Stream(head=head, chunk=b" " * 65536, total=50 * MB, length=None)


def _peak_while(action: Callable[[], object]) -> tuple[int, object]:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        result = action()
        return tracemalloc.get_traced_memory()[1] - base, result
    finally:
        tracemalloc.stop()


def test_a_huge_poll_answer_is_malformed_and_memory_stays_flat(
        toy: Callable[..., ToyRelay]) -> None:
    """50 MB of JSON (an array of whitespace that never closes) in answer to a poll: a
    MalformedResponseError, with memory growing by at most a few MB (0.1: ~100 MB)."""
    relay = toy(task=_huge)
    client = sw.SoraClient(KEY, relay.base_url, max_get_attempts=1)
    peak, error = _peak_while(lambda: _raised(lambda: client.retrieve("v_huge")))
    client.close()
    assert peak < 8 * MB, f"a 50 MB poll answer grew memory by {peak / MB:.0f} MB"
    assert isinstance(error, sw.MalformedResponseError), repr(error)


def test_a_huge_poll_answer_keeps_the_poller_flat_and_the_job_alive(
        toy: Callable[..., ToyRelay]) -> None:
    relay = toy(task=_huge)
    job = sw.generate("a relay that answers polls with 50 MB")

    def two_answers() -> None:
        wait_until(lambda: len([s for s in relay.streams if s.ended]) >= 2, 60,
                   "two huge poll answers to be served")

    peak, _ = _peak_while(two_answers)
    assert peak < 8 * MB, f"two 50 MB poll answers grew memory by {peak / MB:.0f} MB"
    assert job.id == "v_toy_1" and job.charge == "charged"
    assert phase_of(job) == "polling", job.status    # a paid job is never given up


# -- 18. a corrupt journal ----------------------------------------------------------------------


def _assert_journal_error(action: Callable[[], object], journal: Path) -> None:
    error = _raised(action)
    assert not isinstance(error, sqlite3.Error), (
        f"a corrupt journal surfaced as a raw {type(error).__module__}."
        f"{type(error).__name__}: {error}")
    journal_error = getattr(sw, "JournalError", None)
    assert journal_error is not None and isinstance(error, journal_error), repr(error)
    assert isinstance(error, sw.SoraError)
    message = str(error)
    assert journal.name in message or str(journal) in message, message
    assert any(word in message.lower() for word in
               ("move", "rename", "remove", "delete", "restore", "sora_widgets_home")), message


def test_a_corrupt_journal_is_a_journal_error_with_advice(relay: RunningEmulator,
                                                          home: Path) -> None:
    journal = home / "journal.sqlite3"
    home.mkdir(parents=True, exist_ok=True)
    journal.write_bytes(b"this is not a database, it was overwritten\n" * 200)
    _assert_journal_error(sw.jobs, journal)
    _assert_journal_error(lambda: sw.generate("a cat on a corrupt journal"), journal)
    assert relay.stats()["posts"] == 0

