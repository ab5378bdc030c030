"""The tests' one way to wait: poll a condition against a deadline.

A deadline is a generous bound for a loaded 2-core machine, never a claim about speed:
the condition is the behaviour under test, the timeout only ends a test that would hang.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["wait_until"]

#: The default deadline: generous, so a busy machine does not fail a correct test.
DEFAULT_TIMEOUT = 30.0


def wait_until(predicate: Callable[[], object], timeout: float = DEFAULT_TIMEOUT,
               what: str = "", *, fail: bool = True, step: float = 0.01) -> bool:
    """Poll ``predicate`` every ``step`` seconds until it holds or ``timeout`` seconds pass.

    With ``fail`` (the default) a timeout is an AssertionError naming ``what``; without,
    the result says whether it held (for a window that ends early on a positive sign).
    """
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            if fail:
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {what or 'the condition'}")
            return False
        time.sleep(step)
