"""The tests' own house: the environment fixture clears every setting the package reads,
the one ``wait_until`` and the one loopback server base behave as the doubles rely on."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import httpx
import pytest

from .conftest import ENV_VARS, clean_environment
from .doubles import Answer, FileServer, Request, ScriptedRelay, serve_in_thread, wait_until
from .doubles.server import Handler

PACKAGE = Path(__file__).resolve().parents[1] / "sora_widgets"


def settings_in_source() -> set[str]:
    found: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        found.update(re.findall(r"\bSORA_[A-Z][A-Z_]*[A-Z]\b", path.read_text()))
    return found


def test_the_environment_list_names_every_setting_the_package_reads() -> None:
    used = settings_in_source()
    assert "SORA_API_KEY" in used and "SORA_WIDGETS_HOME" in used   # the search works
    assert sorted(used - set(ENV_VARS)) == []


def test_the_clean_environment_unsets_every_sora_variable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*settings_in_source(), "SORA_NOT_YET_INVENTED"):
        monkeypatch.setenv(name, "from the outside")
    monkeypatch.setenv("COLUMNS", "80")     # what every pytest-xdist worker inherits
    monkeypatch.setenv("LINES", "24")
    clean_environment(monkeypatch)
    assert sorted(n for n in os.environ if n.startswith("SORA_")) == []
    assert "COLUMNS" not in os.environ and "LINES" not in os.environ


def test_the_home_fixture_leaves_no_terminal_size_and_only_its_own_settings(
        home: Path) -> None:
    assert "COLUMNS" not in os.environ and "LINES" not in os.environ
    left = {n: v for n, v in os.environ.items() if n.startswith("SORA_")}
    assert set(left) == {"SORA_WIDGETS_HOME", "SORA_EMULATOR_TIME_SCALE"}
    assert left["SORA_WIDGETS_HOME"] == str(home) and Path.cwd().name == "work"


def test_wait_until_returns_on_the_condition_and_fails_on_the_deadline() -> None:
    ready = threading.Event()
    threading.Timer(0.05, ready.set).start()
    assert wait_until(ready.is_set, 30, "the timer") is True
    with pytest.raises(AssertionError, match="waiting for nothing at all"):
        wait_until(lambda: False, 0.05, "nothing at all")
    assert wait_until(lambda: False, 0.05, fail=False) is False


def test_a_scripted_relay_records_what_it_answered() -> None:
    def respond(request: Request) -> Answer:
        return Answer(201, request.body[::-1], headers={"X-Seen": request.path})

    with ScriptedRelay(respond) as relay:
        answer = httpx.post(f"{relay.base_url}/v1/videos?x=1", content=b"abc",
                            headers={"authorization": "Bearer k"})
    assert answer.status_code == 201 and answer.content == b"cba"
    assert answer.headers["x-seen"] == "/v1/videos?x=1"
    (seen,) = relay.requests
    assert (seen.method, seen.body, seen.authorization) == ("POST", b"abc", "Bearer k")
    assert relay.count("POST") == 1 and relay.count("GET") == 0


def test_a_file_server_answers_by_path_and_counts_hits() -> None:
    with FileServer("image/png") as files:
        files.bodies["/a.png"] = (200, b"png")
        with httpx.Client(base_url=files.url) as client:
            found, missing = client.get("/a.png"), client.get("/b.png")   # one connection
    assert (found.status_code, found.content, found.headers["content-type"]) == (
        200, b"png", "image/png")
    assert missing.status_code == 404 and files.hits == ["/a.png", "/b.png"]


def test_serve_in_thread_serves_a_bare_handler_and_frees_the_port() -> None:
    class Hello(Handler):
        def do_GET(self) -> None:
            self.send_answer(Answer(200, b"hello", content_type="text/plain"))

    with serve_in_thread(Hello) as served:
        assert httpx.get(served.base_url).text == "hello"
        url = served.base_url
    assert not served.thread.is_alive()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=5)
