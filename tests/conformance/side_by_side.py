"""Cases that spend their time waiting on protocol time (60 s sequence timeouts, a paused car's
sleep) run side by side: every (case, protocol) gets its own veth link and its own daemon under
test, in a thread pool; the module's first test starts them all, each test then reports its own
case (test_timers.py, test_resume.py)."""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Iterator
from typing import Any

from tests.conformance.runner import Target
from tests.conformance.suite import run_case, start_sut
from tests.conformance.tester import Pilot

_STARTING = threading.Semaphore(2)   # link and daemon start-up are CPU work: two at a time


def _new_link():
    """A veth link; pyroute2's namespace helper child may not answer within its 2 s on a
    loaded box (TimeoutError, seen in make test beside other jobs): one more try, set-up only."""
    from sim.testing.netns import VethLink

    try:
        return VethLink().create()
    except TimeoutError:
        return VethLink().create()


def run_isolated(case: Any, protocol: str, timeout: float, log_lines: int) -> None:
    """One case against its own link and daemon; the daemon's log tail joins a failure."""
    with _STARTING:
        link = _new_link()
    daemon = None
    try:
        with _STARTING:
            daemon = start_sut(case.daemon, link, protocol)
        target = Target(link.ifnames["ev"], Pilot(daemon.socket_path))
        try:
            link.run_coroutine("ev", lambda: run_case(case, protocol, target)).result(timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- secc log ---\n{daemon.log_tail(log_lines)}") \
                from None
        assert daemon.alive(), f"the daemon died:\n{daemon.log_tail()}"
    finally:
        if daemon is not None:
            daemon.stop()
        link.destroy()


def start_all(jobs: list[tuple[Any, str]], max_parallel: int, timeout: float,
              log_lines: int) -> Iterator[dict[tuple[str, str], concurrent.futures.Future]]:
    """Generator body of a module fixture: submits every job, yields the futures by
    (case id, protocol), waits for all on the way out."""
    pool = concurrent.futures.ThreadPoolExecutor(max_parallel)
    futures = {(case.id, protocol): pool.submit(run_isolated, case, protocol, timeout, log_lines)
               for case, protocol in jobs}
    try:
        yield futures
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
