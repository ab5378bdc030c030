"""Starting and stopping an emulator: in a daemon thread (tests, the embedded default) or
in the foreground (the CLI)."""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import Any

from .config import EmulatorConfig
from .engine import Engine
from .handler import EmulatorHTTPServer
from .tasks import Task

__all__ = ["RunningEmulator", "serve_forever", "start_emulator"]

logger = logging.getLogger("sora_widgets.emulator")


class RunningEmulator:
    """A running emulator: its address, its live config, and the test/benchmark controls."""

    def __init__(self, config: EmulatorConfig, host: str, port: int) -> None:
        self._engine = Engine(config)
        self._server = EmulatorHTTPServer((host, port), self._engine)
        self._stop_lock = threading.Lock()
        self._stopped = False
        bound_host, bound_port = self._server.server_address[:2]
        self.host = _reachable(str(bound_host))
        self.port = int(bound_port)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sora-widgets-emulator:{self.port}",
            daemon=True,
        )
        self._thread.start()
        while not self._server.serving.wait(0.05):
            if not self._thread.is_alive():
                raise RuntimeError("the emulator's server thread died while starting")

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT``, without a trailing slash."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def api_base_url(self) -> str:
        """The base URL a client is given: the part before ``/v1/videos`` (``base_url`` +
        ``/api`` in the router style, as OpenRouter's is ``https://openrouter.ai/api``)."""
        return self.base_url + ("/api" if self._engine.config.style == "router" else "")

    @property
    def config(self) -> EmulatorConfig:
        """The live config: assigning a field affects the next requests."""
        return self._engine.config

    def stats(self) -> dict[str, Any]:
        """The same dict as ``GET /_emulator/stats``."""
        return self._engine.stats()

    def reset_stats(self) -> None:
        """Zero the request counters (tasks stay)."""
        self._engine.store.reset_stats()

    def inject(self, fault: str, *, method: str = "POST", times: int = 1, **params: Any) -> None:
        """Queue a one-shot fault for the next ``times`` requests of ``method``.

        See ``sora_widgets.emulator.faults`` for the names; params: ``retry_after``,
        ``retry_after_form``, ``delay`` (slow), ``hang_seconds``, ``kind`` (malformed).
        """
        self._engine.faults.inject(fault, method=method, times=times, params=params)

    def clear_faults(self) -> None:
        """Drop every scripted fault not consumed yet."""
        self._engine.faults.clear()

    def expire_links(self) -> None:
        """Invalidate every artifex video link issued so far (a fresh task GET gives a new
        one), and expire the openai content of every task completed so far (for good)."""
        self._engine.expire_all()

    def task(self, task_id: str) -> Task | None:
        """The task record (immutable, with its whole schedule), or None if unknown."""
        return self._engine.store.get(task_id)

    def stop(self) -> None:
        """Close the listening socket and every connection; held requests end at once."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        self._engine.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._server.close_all_connections()
        self._thread.join(timeout=5)

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "running"
        return f"<RunningEmulator {self.base_url} {state}>"


def _reachable(host: str) -> str:
    """A wildcard bind address is not something to connect to: use loopback instead."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104


def start_emulator(
    config: EmulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> RunningEmulator:
    """Start an emulator in a daemon thread; returns once it is serving (port 0 = any free)."""
    return RunningEmulator(config if config is not None else EmulatorConfig(), host, port)


def serve_forever(
    config: EmulatorConfig | None = None, host: str = "127.0.0.1", port: int = 8000
) -> None:
    """Run an emulator in the foreground until Ctrl-C (the CLI)."""
    emulator = start_emulator(config, host=host, port=port)
    style = "" if emulator.config.style == "artifex" else f", {emulator.config.style} style"
    print(
        f"sora-widgets emulator listening on {emulator.api_base_url} "
        f"(time scale {emulator.config.time_scale:g}{style})",
        flush=True,
    )
    stop = threading.Event()
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
