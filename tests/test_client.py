"""The wire protocol over real loopback HTTP against the emulator (MockTransport: tiny cases)."""

from __future__ import annotations

import socket
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import pytest

from sora_widgets.core.errors import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    MalformedResponseError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    SubmissionUnknown,
)
from sora_widgets.core.models import TaskSnapshot, VideoRequest
from sora_widgets.core.retry import Backoff
from sora_widgets.emulator import EmulatorConfig, RunningEmulator, start_emulator
from sora_widgets.relay.client import SoraClient

from .conftest import VIP_KEY

FAST = Backoff(base=0.01, cap=0.05)
REQ = VideoRequest.create("a red fox in snow", aspect_ratio="16:9")


@pytest.fixture
def client(emulator: RunningEmulator) -> Iterator[SoraClient]:
    with SoraClient(VIP_KEY, emulator.base_url, backoff=FAST) as c:
        yield c


def wait_final(client: SoraClient, task_id: str, deadline: float = 20.0) -> TaskSnapshot:
    end = time.monotonic() + deadline
    seen = []
    while time.monotonic() < end:
        snap = client.retrieve(task_id)
        seen.append(snap)
        if snap.is_final:
            return snap
        time.sleep(0.02)
    raise AssertionError(f"not final in time: {seen[-1:]}")


def test_submit_poll_complete_download(client: SoraClient, emulator: RunningEmulator,
                                       tmp_path: Path) -> None:
    queued = client.submit(REQ)
    assert queued.status == "queued" and queued.id.startswith("v_")
    done = wait_final(client, queued.id)
    assert done.status == "completed" and done.progress == 100
    assert done.video_url and done.video_url.startswith(emulator.base_url)
    seen: list[tuple[int, int | None]] = []
    path = client.download(done.video_url, tmp_path / "out.mp4",
                           on_progress=lambda n, total: seen.append((n, total)))
    assert seen[-1][0] == path.stat().st_size == seen[-1][1]
    assert not list(tmp_path.glob("*.part"))
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.width > stream.codec_context.height


def test_failed_task_carries_the_relay_message(emulator: RunningEmulator,
                                               client: SoraClient) -> None:
    emulator.config.failure_rate = 1.0
    snap = wait_final(client, client.submit(REQ).id)
    assert snap.status == "failed" and snap.error is not None
    assert snap.error.message and snap.error.code


def test_no_key_is_401_and_the_message_says_what_to_do(emulator: RunningEmulator,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SORA_API_KEY", raising=False)
    with SoraClient(None, emulator.base_url) as anonymous, \
            pytest.raises(AuthenticationError) as info:
        anonymous.submit(REQ)
    assert info.value.status_code == 401 and "SORA_API_KEY" in str(info.value)


def test_non_vip_key_is_403_with_vip_words(emulator: RunningEmulator) -> None:
    key = "nonvip-" + "k" * 24
    with SoraClient(key, emulator.base_url) as ordinary, \
            pytest.raises(PermissionDeniedError) as info:
        ordinary.submit(REQ)
    assert "VIP group" in str(info.value)
    assert key not in str(info.value) and key[:8] not in repr(ordinary)
    assert emulator.stats()["tasks_created"] == 0


def test_server_400_is_a_bad_request_with_its_message(client: SoraClient) -> None:
    invalid = VideoRequest("x", aspect_ratio="4:3")  # bypasses create(): only the server checks
    with pytest.raises(BadRequestError) as info:
        client.submit(invalid)
    assert "aspect_ratio" in str(info.value) and info.value.status_code == 400


def test_unknown_id_is_404(client: SoraClient) -> None:
    with pytest.raises(NotFoundError):
        client.retrieve("v_does_not_exist")


def test_string_and_missing_progress(emulator: RunningEmulator, client: SoraClient) -> None:
    for mode in ("string", "missing", "stuck"):
        emulator.config.progress_mode = mode
        task = client.submit(VideoRequest.create(f"mode {mode}"))
        snaps = []
        while not snaps or not snaps[-1].is_final:
            snaps.append(client.retrieve(task.id))
        running = [s for s in snaps if s.status == "in_progress"]
        if mode == "missing":
            assert all(s.progress is None for s in running)
        elif mode == "stuck":
            assert all(s.progress == 0 for s in running)
        else:
            assert all(isinstance(s.progress, int) for s in running)
        assert snaps[-1].status == "completed"


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_get_429_honours_retry_after(emulator: RunningEmulator, client: SoraClient,
                                     form: str) -> None:
    task = client.submit(REQ)
    emulator.inject("429", method="GET", retry_after=1, retry_after_form=form)
    started = time.monotonic()
    snap = client.retrieve(task.id)
    assert snap.id == task.id
    assert time.monotonic() - started >= 0.9  # not before the server allowed (1 s, rounded)
    assert emulator.stats()["tasks"][task.id]["gets"] == 2


@pytest.mark.parametrize("fault", ["500", "502", "503", "drop", "reset", "malformed"])
def test_get_faults_are_retried(emulator: RunningEmulator, client: SoraClient,
                                fault: str) -> None:
    task = client.submit(REQ)
    emulator.inject(fault, method="GET", times=2, retry_after=0)
    assert client.retrieve(task.id).id == task.id


def test_get_gives_up_after_max_attempts_with_a_typed_error(emulator: RunningEmulator,
                                                            client: SoraClient) -> None:
    task = client.submit(REQ)
    emulator.inject("500", method="GET", times=client.max_get_attempts)
    with pytest.raises(ServerError) as info:
        client.retrieve(task.id)
    assert info.value.status_code == 500
    assert emulator.stats()["tasks"][task.id]["gets"] == client.max_get_attempts
    emulator.inject("429", method="GET", times=2, retry_after=0)
    client.max_get_attempts = 2
    with pytest.raises(RateLimitError):
        client.retrieve(task.id)


@pytest.mark.parametrize("fault", ["accept_then_drop", "reset", "502", "504", "malformed",
                                   "accept_then_hang"])
def test_ambiguous_submit_is_unknown_and_never_resent(emulator: RunningEmulator,
                                                      fault: str) -> None:
    emulator.inject(fault, method="POST", hang_seconds=5)
    with SoraClient(VIP_KEY, emulator.base_url, timeout=httpx.Timeout(1.0),
                    backoff=FAST) as c, pytest.raises(SubmissionUnknown) as info:
        c.submit(REQ)
    assert "may have been charged" in str(info.value)
    assert emulator.stats()["posts"] == 1


def test_refused_connection_is_retried_then_reported(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once we leave: connections are refused
    with SoraClient(VIP_KEY, f"http://127.0.0.1:{port}", backoff=FAST) as c, \
            pytest.raises(APIConnectionError):
        c.submit(REQ)


def test_refused_then_accepted_submits_exactly_once() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if len(calls) == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"task_id": "v_only_task_id", "status": "queued"})

    http = httpx.Client(transport=httpx.MockTransport(handler))
    snap = SoraClient(VIP_KEY, "https://relay.test", http=http, backoff=FAST).submit(REQ)
    assert snap.id == "v_only_task_id" and calls == ["POST", "POST"]


def test_read_error_after_sending_is_not_retried() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        raise httpx.ReadError("connection reset", request=request)

    http = httpx.Client(transport=httpx.MockTransport(handler))
    with pytest.raises(SubmissionUnknown):
        SoraClient(VIP_KEY, "https://relay.test", http=http, backoff=FAST).submit(REQ)
    assert calls == ["POST"]


def test_unknown_status_and_html_error_page() -> None:
    answers = iter([
        httpx.Response(200, json={"id": "v1", "status": "moderating", "progress": "7"}),
        httpx.Response(200, text="<html><body>502 Bad Gateway</body></html>"),
    ])
    http = httpx.Client(transport=httpx.MockTransport(lambda r: next(answers)))
    c = SoraClient(VIP_KEY, "https://relay.test", http=http, backoff=FAST, max_get_attempts=1)
    snap = c.retrieve("v1")
    assert (snap.status, snap.progress) == ("moderating", 7)
    with pytest.raises(MalformedResponseError):
        c.retrieve("v1")


def test_expired_links_are_403_and_a_fresh_get_gives_a_working_link(
        emulator: RunningEmulator, client: SoraClient, tmp_path: Path) -> None:
    done = wait_final(client, client.submit(REQ).id)
    emulator.expire_links()
    assert done.video_url
    with pytest.raises(PermissionDeniedError) as info:
        client.download(done.video_url, tmp_path / "a.mp4")
    assert info.value.code == "link_expired" and not (tmp_path / "a.mp4").exists()
    fresh = client.retrieve(done.id)
    assert fresh.video_url and fresh.video_url != done.video_url
    assert client.download(fresh.video_url, tmp_path / "b.mp4").stat().st_size > 1000


def test_ttl_expiry() -> None:
    with start_emulator(EmulatorConfig(time_scale=0.005, url_ttl_seconds=0.3)) as emu, \
            SoraClient(VIP_KEY, emu.base_url, backoff=FAST) as c:
        done = wait_final(c, c.submit(REQ).id)
        assert done.video_url
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                c.download(done.video_url, Path(emu.base_url.split(":")[-1] + ".mp4"))
            except PermissionDeniedError:
                break
            finally:
                Path(emu.base_url.split(":")[-1] + ".mp4").unlink(missing_ok=True)
            time.sleep(0.05)
        else:
            raise AssertionError("the link never expired")


def test_key_comes_from_env_and_never_shows(emulator: RunningEmulator,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SORA_API_KEY", VIP_KEY)
    monkeypatch.setenv("SORA_BASE_URL", emulator.base_url)
    with SoraClient() as c:
        assert c.base_url == emulator.base_url
        assert c.submit(REQ).status == "queued"
        assert VIP_KEY not in repr(c) and VIP_KEY[:8] not in repr(c)


def test_plain_http_to_a_remote_host_is_warned_about() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        SoraClient(VIP_KEY, "http://relay.example.com").close()
        SoraClient(VIP_KEY, "http://127.0.0.1:9").close()
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "clear text" in messages[0]
