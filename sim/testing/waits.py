"""Waiting on conditions and events in tests, never on fixed time.

A test that sleeps "long enough" flakes on a loaded machine and wastes time on an idle one.
These helpers return as soon as the awaited thing happens and fail with a message naming it
when it does not happen within the (generous) timeout.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

POLL_S = 0.01   # how often a condition without an event is re-checked


async def wait_until(predicate: Callable[[], Any], timeout: float = 10.0,
                     what: str = "condition") -> bool:
    """True as soon as ``predicate()`` holds; TimeoutError naming ``what`` after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() >= deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(POLL_S)
    return True


def wait_until_sync(predicate: Callable[[], Any], timeout: float = 10.0,
                    what: str = "condition") -> bool:
    """``wait_until`` for code outside an event loop (threads, subprocess tests)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(POLL_S)
    return True


async def wait_for_thread_event(event: threading.Event, timeout: float | None = None,
                                what: str = "event") -> None:
    """Await a ``threading.Event`` set by another thread, without blocking the loop."""
    if not await asyncio.to_thread(event.wait, timeout):
        raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
