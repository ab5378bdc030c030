"""Runs last: no fixture may leave an event loop registered as the main thread's running
loop (the browser suite's Playwright once did, and broke every later ``asyncio.run``)."""

import asyncio


def test_no_running_loop_left_on_the_main_thread() -> None:
    assert asyncio.events._get_running_loop() is None
