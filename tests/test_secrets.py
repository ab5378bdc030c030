"""5. The API key never leaks: not in notebooks, widget state, reprs, exceptions, logs,
the journal or downloaded files, and never to a host other than the relay.

Sentinel keys (``sk-SENTINEL-`` + random hex) are searched whole, as every 8-character
piece, and base64-encoded. A relay double that echoes the Authorization header back in
its error messages checks that server text is scrubbed too.
"""

from __future__ import annotations

import base64
import json
import logging
import pickle
import secrets
import traceback
from collections.abc import Iterator
from pathlib import Path

import httpx
import nbformat
import pytest
from nbclient import NotebookClient

import sora_widgets as sw
from sora_widgets.core.errors import SoraError
from sora_widgets.core.models import VideoRequest
from sora_widgets.core.settings import APIKey, settings
from sora_widgets.emulator import EmulatorConfig, RunningEmulator, start_emulator
from sora_widgets.relay.client import AsyncSoraClient, SoraClient
from sora_widgets.studio import studio as studio_module
from sora_widgets.ui import render

from .conftest import TEST_TIME_SCALE
from .doubles import Answer, Request, ScriptedRelay

KEY = f"sk-SENTINEL-{secrets.token_hex(16)}"
NONVIP_KEY = f"nonvip-SENTINEL-{secrets.token_hex(16)}"


def needles(*keys: str) -> set[str]:
    found = set()
    for key in keys:
        found.add(key)
        found.update(key[i:i + 8] for i in range(len(key) - 7))
        found.add(base64.b64encode(key.encode()).decode())
        found.add(base64.b64encode(f"Bearer {key}".encode()).decode())
    return found


NEEDLES = needles(KEY, NONVIP_KEY)


def leaks(text: str | bytes, where: str) -> list[str]:
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    return [f"{where}: {n!r}" for n in sorted(NEEDLES) if n in text]


def places(found: list[str]) -> dict[str, int]:
    """Where the key leaked, and how many of its pieces are there (a readable failure)."""
    counts: dict[str, int] = {}
    for item in found:
        where = item.rsplit(": ", 1)[0]
        counts[where] = counts.get(where, 0) + 1
    return counts


def files_under(*roots: Path) -> Iterator[Path]:
    for root in roots:
        if root.exists():
            yield from (p for p in root.rglob("*") if p.is_file())


def echo_relay(request: Request) -> Answer:
    """A relay that quotes the caller's Authorization header in every error it gives."""
    auth = request.headers.get("Authorization", "")
    key = auth.removeprefix("Bearer ")
    said = f"denied for {auth!r} (key {key}, starting {key[:10]}, ending {key[-9:]})"
    path = request.path.partition("?")[0]
    if request.method == "POST":
        page = f"<html><body><h1>502 Bad Gateway</h1><pre>{auth}</pre></body></html>"
        return Answer(502, page.encode(), content_type="text/html")
    ref = path.rsplit("/", 1)[-1]
    if ref.startswith("e") and ref[1:].isdigit():
        body = {"error": {"message": said, "code": "invalid_api_key"}}
        return Answer(int(ref[1:]), json.dumps(body).encode(), headers={"Retry-After": "0"})
    if ref == "failed":
        body = {"id": "v_failed", "status": "failed",
                "error": {"message": f"upstream rejected {said}", "code": "bad_key"}}
        return Answer(200, json.dumps(body).encode())
    return Answer(404, b'{"error": {"message": "no such task"}}')


@pytest.fixture
def echo() -> Iterator[ScriptedRelay]:
    with ScriptedRelay(echo_relay) as relay:
        yield relay


# -- in process: the core alone, caplog at DEBUG ---------------------------------------------


def test_the_core_never_shows_the_key(relay: RunningEmulator, home: Path, echo: ScriptedRelay,
                                      monkeypatch: pytest.MonkeyPatch,
                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("SORA_API_KEY", KEY)
    found: list[str] = []
    texts: list[tuple[str, str]] = []

    done = sw.generate("a sentinel lighthouse").wait(timeout=30)
    assert done.local_path is not None
    relay.inject("accept_then_drop", method="POST")
    lost = sw.generate("an answer that is lost")
    with pytest.raises(sw.SubmissionUnknown) as unknown:
        lost.wait(timeout=30)
    monkeypatch.setenv("SORA_API_KEY", NONVIP_KEY)
    refused = sw.generate("a forbidden fruit")
    with pytest.raises(sw.PermissionDeniedError) as forbidden:
        refused.wait(timeout=30)
    monkeypatch.setenv("SORA_API_KEY", KEY)
    assert refused.error_code == "403"
    errors: list[BaseException] = [unknown.value, forbidden.value]

    with SoraClient(KEY, echo.base_url, max_get_attempts=1) as client:
        for ref in ("e401", "e403", "e404", "e429", "e500", "e503"):
            with pytest.raises(SoraError) as info:
                client.retrieve_once(ref)
            errors.append(info.value)
        with pytest.raises(sw.SubmissionUnknown) as info:
            client.submit(VideoRequest.create("echo my key back"))
        errors.append(info.value)
        texts.append(("client repr", repr(client)))
    assert echo.count("GET") == 6 and echo.count("POST") == 1
    for exc in errors:
        chain = "".join(traceback.format_exception(exc))
        texts.append((f"{type(exc).__name__}", f"{exc}\n{exc!r}\n{chain}"))
        texts.append(("exception attrs", repr(vars(exc))))

    studio = studio_module.default_studio()
    for job in (done, lost, refused):
        texts.append(("job repr", repr(job)))
        texts.append(("job html", render.job_html(job) + render.job_text(job)))
        texts.append(("job traits", json.dumps(job.trait_values(), default=str)))
        texts.append(("job vars", repr(vars(job))))
    texts += [("studio", repr(studio) + repr(vars(studio))),
              ("settings", repr(settings())),
              ("backend", repr(done._backend)),
              ("clients", repr(SoraClient()) + repr(AsyncSoraClient(KEY))),
              ("key", repr(APIKey(KEY)) + str(APIKey(KEY)) + f"{APIKey(KEY)}"),
              ("jobs table", render.jobs_table_html(sw.jobs())),
              ("spend", repr(sw.spend())),
              ("log", caplog.text),
              ("log records", "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}"
                                         for r in caplog.records))]
    with pytest.raises(TypeError):
        pickle.dumps(APIKey(KEY))
    for where, text in texts:
        found += leaks(text, where)
    for path in files_under(home):
        found += leaks(path.read_bytes(), str(path.relative_to(home)))
    assert "HTTP Request" in caplog.text       # the DEBUG log did capture the traffic
    assert places(found) == {}


def test_the_key_is_scrubbed_from_a_failed_task_message(home: Path,
                                                        studio: studio_module.Studio,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Server text in a 200 answer (a failed task's ``error.message``) is scrubbed too,
    as errors.py promises: else it reaches the job, the journal and the HTML."""

    def answer(request: Request) -> Answer:
        if request.method == "POST":
            return Answer(200, b'{"id": "v_echo", "status": "queued"}')
        return echo_relay(Request("GET", "/v1/videos/failed", request.headers, b""))

    with ScriptedRelay(answer) as relay:
        monkeypatch.setenv("SORA_API_KEY", KEY)
        monkeypatch.setenv("SORA_BASE_URL", relay.base_url)
        monkeypatch.setenv("SORA_POLL_SCALE", str(TEST_TIME_SCALE))
        job = sw.generate("a relay that quotes my key")
        with pytest.raises(sw.JobFailed) as info:
            job.wait(timeout=30)
    assert "upstream rejected" in str(info.value)
    found = leaks(str(info.value), "JobFailed") + leaks(job.error or "", "job.error")
    found += leaks(render.job_html(job), "job html")
    for path in files_under(home):
        found += leaks(path.read_bytes(), str(path.relative_to(home)))
    assert places(found) == {}


def test_the_key_is_scrubbed_from_error_codes() -> None:
    """``error.code`` is server text like ``error.message``: an echoed key is scrubbed."""

    def answer(request: Request) -> Answer:
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return Answer(401, json.dumps({"error": {"message": "no", "code": key}}).encode())

    with ScriptedRelay(answer) as relay, SoraClient(KEY, relay.base_url) as client, \
            pytest.raises(sw.AuthenticationError) as info:
        client.retrieve_once("v_x")
    assert places(leaks(repr(vars(info.value)), "AuthenticationError.code")) == {}


def test_the_key_goes_only_to_the_relay_never_to_a_cdn_or_a_redirect(
        home: Path, studio: studio_module.Studio, monkeypatch: pytest.MonkeyPatch) -> None:
    cdn = ScriptedRelay(lambda r: Answer(200, b"\x00\x00\x00\x18ftypmp42" + b"\0" * 5000,
                                         content_type="video/mp4"))

    def relay_answer(request: Request) -> Answer:
        path = request.path.partition("?")[0]
        if request.method == "POST":
            return Answer(200, b'{"id": "v_cdn", "status": "queued"}')
        if path == "/v1/videos/v_cdn":
            body = {"id": "v_cdn", "status": "completed", "progress": 100,
                    "video_url": f"{relay.base_url}/redirect/v_cdn.mp4"}
            return Answer(200, json.dumps(body).encode())
        if path.startswith("/redirect/"):
            return Answer(302, b"", headers={"Location": f"{cdn.base_url}/v_cdn.mp4"})
        return Answer(404, b"{}")

    relay = ScriptedRelay(relay_answer)
    try:
        monkeypatch.setenv("SORA_API_KEY", KEY)
        monkeypatch.setenv("SORA_BASE_URL", relay.base_url)
        monkeypatch.setenv("SORA_POLL_SCALE", str(TEST_TIME_SCALE))
        job = sw.generate("a video from a CDN").wait(timeout=30)
        assert job.local_path is not None and job.local_path.stat().st_size > 5000
        direct = SoraClient(KEY, relay.base_url)
        direct.download(f"{cdn.base_url}/v_cdn.mp4", home / "direct.mp4")
        direct.close()
        assert cdn.count("GET") >= 2
        for request in cdn.requests:
            assert "authorization" not in {h.lower() for h in request.headers}
            assert leaks(json.dumps(request.headers), "CDN request") == []
        assert any(r.headers.get("Authorization") == f"Bearer {KEY}" for r in relay.requests)
    finally:
        relay.stop()
        cdn.stop()


# -- a real notebook: the magic and the widget, run by nbclient -------------------------------

NOTEBOOK = [
    "import logging, os, time, traceback\n"
    "logging.basicConfig(filename=os.environ['TEST_LOG_FILE'], level=logging.DEBUG, force=True,\n"
    "                    format='%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s')\n"
    "%load_ext sora_widgets",
    "%sora --wait -o first a lighthouse keeper's cat",
    "print(repr(first), first.status, first.cost_usd)\nfirst",
    "import sora_widgets as sw\n"
    "from sora_widgets.studio.studio import default_studio\n"
    "panel = sw.SoraWidget(prompt='a widget-made teapot', aspect_ratio='9:16')\n"
    "panel.generate()\n"
    "card = panel.cards[0]\n"
    "card.job.wait(60)\n"
    "deadline = time.monotonic() + 20\n"
    "while not card.item['src'] and time.monotonic() < deadline:\n"
    "    time.sleep(0.05)\n"
    "panel",
    "print(repr(sw.SoraClient()), repr(default_studio()), repr(card.job), sw.jobs())\n"
    "print(vars(card.job))",
    "saved = os.environ['SORA_API_KEY']\n"
    "os.environ['SORA_API_KEY'] = os.environ['TEST_NONVIP_KEY']\n"
    "%sora --wait a forbidden fruit\n"
    "os.environ['SORA_API_KEY'] = saved",
    "import httpx\n"
    "httpx.post(os.environ['SORA_BASE_URL'] + '/_emulator/inject',\n"
    "           json={'fault': 'accept_then_drop'}).raise_for_status()\n"
    "%sora --wait an answer that gets lost",
    "client = sw.SoraClient(base_url=os.environ['TEST_ECHO_URL'], max_get_attempts=2)\n"
    "for ref in ['e401', 'e403', 'e404', 'e429', 'e500']:\n"
    "    try:\n"
    "        client.retrieve(ref)\n"
    "    except sw.SoraError as exc:\n"
    "        print(type(exc).__name__, exc, repr(exc))\n"
    "        traceback.print_exc()\n"
    "try:\n"
    "    client.submit(sw.VideoRequest.create('echo'))\n"
    "except sw.SoraError as exc:\n"
    "    print(type(exc).__name__, exc)\n"
    "    traceback.print_exc()",
    "%sora jobs",
    "%sora cost",
    "client.retrieve('e401')   # an unhandled error: the traceback is saved in the notebook",
]


@pytest.mark.slow   # a whole notebook headless
def test_a_notebook_using_the_magic_and_the_widget_keeps_the_key_secret(
        home: Path, echo: ScriptedRelay, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook_dir = home.parent / "notebook"
    notebook_dir.mkdir()
    log_file = home.parent / "kernel-debug.log"
    with start_emulator(EmulatorConfig(time_scale=TEST_TIME_SCALE, seed=9,
                                       shared_video=True)) as emulator:
        monkeypatch.setenv("SORA_API_KEY", KEY)
        monkeypatch.setenv("SORA_BASE_URL", emulator.base_url)
        monkeypatch.setenv("SORA_POLL_SCALE", str(TEST_TIME_SCALE))
        monkeypatch.setenv("TEST_NONVIP_KEY", NONVIP_KEY)
        monkeypatch.setenv("TEST_ECHO_URL", echo.base_url)
        monkeypatch.setenv("TEST_LOG_FILE", str(log_file))
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(source) for source in NOTEBOOK]
        NotebookClient(nb, kernel_name="python3", timeout=120, allow_errors=True,
                       store_widget_state=True,
                       resources={"metadata": {"path": str(notebook_dir)}}).execute()
        stats = emulator.stats()
    saved = notebook_dir / "secret.ipynb"
    nbformat.write(nb, saved)

    # The run did what it says, so that the search below means something.
    errors = [(i, o) for i, c in enumerate(nb.cells) for o in c.outputs
              if o.get("output_type") == "error"]
    assert [i for i, _ in errors] == [len(NOTEBOOK) - 1], errors
    assert errors[0][1]["ename"] == "AuthenticationError"
    text = saved.read_text()
    assert "a widget-made teapot" in json.dumps(nb.metadata["widgets"])  # widget state saved
    assert "VIP group" in text and "may have been charged" in text
    assert "<video" in text and stats["tasks_created"] == 3          # 2 videos + 1 lost
    log = log_file.read_text()
    assert "HTTP Request: POST" in log and "DEBUG" in log
    assert "sora_widgets.relay.client INFO retrieve: ServerError; retry 1" in log

    found = leaks(text, "notebook") + leaks(log, "debug log")
    found += leaks(json.dumps(nb.metadata.get("widgets", {})), "widget state")
    for path in files_under(home, notebook_dir):
        found += leaks(path.read_bytes(), str(path))
    assert places(found) == {}
    assert echo.count("GET") == 8 and echo.count("POST") == 1


def test_a_plain_key_argument_is_masked_at_once() -> None:
    for client in (SoraClient(KEY, "https://relay.example.com"),
                   AsyncSoraClient(KEY, "https://relay.example.com")):
        assert leaks(repr(client) + str(client) + repr(vars(client)), "client") == []
    client = SoraClient(KEY, "https://relay.example.com")
    auth = client._auth_for("https://relay.example.com/v1/videos")
    assert auth is not None and client._auth_for("https://cdn.example.com/v.mp4") is None
    request = next(auth.auth_flow(httpx.Request("GET", "https://relay.example.com")))
    assert request.headers["Authorization"] == f"Bearer {KEY}"   # the one place it goes
    assert KEY not in repr(request.headers) and KEY not in repr(auth)
