"""The engine's events thread: applies transitions in order, off the poller's event loop.

It is also the ``Executor`` the loop hands blocking work to (file finalisation, journal
reads), so one thread does every write a job's handle sees. Transitions are queued bare,
not as futures: a ``ThreadPoolExecutor`` made about a dozen objects per transition (future,
condition, lock, work item, closure), and with thousands of jobs its backlog lived long
enough to reach the garbage collector's oldest generation. A run of consecutive
transitions is handed over at once, so their journal writes share one transaction.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["EventsThread"]

log = logging.getLogger("sora_widgets.engine.job")

T = TypeVar("T")
#: The most transitions handed over (and written in one transaction) at once.
MAX_BATCH = 256


class _Call:
    """Work submitted through the Executor interface, with the future it resolves."""

    __slots__ = ("args", "fn", "future", "kwargs")

    def __init__(self, future: concurrent.futures.Future[Any], fn: Callable[..., Any],
                 args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.future, self.fn, self.args, self.kwargs = future, fn, args, kwargs

    def run(self) -> None:
        if not self.future.set_running_or_notify_cancel():
            return
        try:
            result = self.fn(*self.args, **self.kwargs)
        except BaseException as exc:
            self.future.set_exception(exc)
        else:
            self.future.set_result(result)


_STOP = object()


class EventsThread(concurrent.futures.Executor, Generic[T]):
    """One daemon thread: ``post(transition)`` in order, ``submit(fn)`` as an Executor.

    ``apply`` receives each run of consecutive transitions (at most ``MAX_BATCH``); what
    it raises is logged, never kills the thread."""

    def __init__(self, apply: Callable[[list[T]], None], name: str) -> None:
        self._apply = apply
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def post(self, transition: T) -> None:
        """Queue a transition (RuntimeError once shut down, like ``submit``)."""
        if self._closed:
            raise RuntimeError("the events thread is shut down")
        self._queue.put(transition)

    def submit(self, fn: Callable[..., Any], /, *args: Any,
               **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._queue.put(_Call(future, fn, args, kwargs))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Everything queued before runs first; then the thread ends."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._queue.put(_STOP)
        if wait and threading.current_thread() is not self._thread:
            self._thread.join()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            run: list[T] = []
            for item in batch:
                if item is _STOP or isinstance(item, _Call):
                    self._hand_over(run)
                    run = []
                    if not isinstance(item, _Call):
                        return
                    item.run()
                else:
                    run.append(item)
            self._hand_over(run)

    def _hand_over(self, run: list[T]) -> None:
        if run:
            try:
                self._apply(run)
            except Exception:
                log.exception("sora-widgets events thread: a step failed")
