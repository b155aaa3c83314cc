"""Loop-lag monitor: names every event-loop callback that ran longer than a threshold.

A car allows 250 ms for a CurrentDemandRes; the SECC's sessions, bus client and board
share one asyncio loop, so anything that holds the loop (an fsync, a signature, an import)
delays every session's next response. The monitor times each callback the loop runs (the
``Handle`` it calls: task steps, ``call_soon``/``call_later`` callbacks, I/O callbacks) and,
for one over ``threshold_s``, logs a warning naming it (``handle=<Handle ... Task.__step ...>``
tells which coroutine ran) and counts it. Sessions put the count of stalls during their life
into their summary.

Cost: two ``perf_counter`` calls per callback (well under a microsecond). Installed once per
process by the daemon; ``uninstall`` restores the loop's own code.
"""

from __future__ import annotations

import asyncio.events
import time
from dataclasses import dataclass, field
from typing import Any

from secc.common.logs import layer_logger

log = layer_logger("v2g")

DEFAULT_THRESHOLD_S = 0.050


@dataclass
class Stall:
    seconds: float
    what: str


@dataclass
class LoopLagMonitor:
    threshold_s: float = DEFAULT_THRESHOLD_S
    count: int = 0
    worst_s: float = 0.0
    recent: list[Stall] = field(default_factory=list)   # the last few, newest last
    keep: int = 20
    _original: Any = None

    def install(self) -> LoopLagMonitor:
        if self._original is not None:
            return self
        original = asyncio.events.Handle._run
        monitor = self

        def timed_run(handle: asyncio.events.Handle) -> None:
            started = time.perf_counter()
            try:
                original(handle)
            finally:
                took = time.perf_counter() - started
                if took > monitor.threshold_s:
                    monitor._stalled(took, handle)

        self._original = original
        asyncio.events.Handle._run = timed_run  # type: ignore[method-assign]
        return self

    def uninstall(self) -> None:
        if self._original is not None:
            asyncio.events.Handle._run = self._original  # type: ignore[method-assign]
            self._original = None

    @property
    def installed(self) -> bool:
        return self._original is not None

    def _stalled(self, seconds: float, handle: Any) -> None:
        self.count += 1
        self.worst_s = max(self.worst_s, seconds)
        try:
            what = describe(handle)
        except Exception:  # describing must never break the loop
            what = object.__repr__(handle)
        self.recent.append(Stall(seconds, what))
        del self.recent[:-self.keep]
        log.warning("event loop stalled", extra={"ms": round(seconds * 1000, 1),
                                                 "threshold_ms": round(self.threshold_s * 1000),
                                                 "handle": what[:300]})


def describe(handle: Any) -> str:
    """What a handle ran: for a task step, the task's name and its coroutine with the line it
    is suspended at now (the step ended there); otherwise the callback's repr."""
    callback = getattr(handle, "_callback", None)
    task = getattr(callback, "__self__", None)
    if isinstance(task, asyncio.Task):
        coro = task.get_coro()
        frame = getattr(coro, "cr_frame", None)
        where = (f" at {frame.f_code.co_filename.rsplit('/', 2)[-2:][-1]}:{frame.f_lineno}"
                 if frame is not None else "")
        name = getattr(coro, "__qualname__", type(coro).__name__)
        return f"task {task.get_name()} {name}(){where}"
    return repr(handle)


#: the process's monitor (the daemon installs it; sessions read its count)
monitor = LoopLagMonitor()
