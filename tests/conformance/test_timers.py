"""The catalogue's long-timer cases (V2G_SECC_Sequence_Timeout 60 s, CommunicationSetup 20 s):
``make conformance`` only (marker ``conformance_long``).

Each (case, protocol) needs an idle SECC for a minute, so they run side by side: every one gets
its own veth link and its own ``secc run``; the first test starts them all, each test then
reports its own case.
"""

from __future__ import annotations

import concurrent.futures
import threading

import pytest

from tests.conformance.cases import CASES
from tests.conformance.runner import Target
from tests.conformance.suite import run_case, start_sut
from tests.conformance.tester import Pilot

from tests.conformance import tester

pytestmark = [pytest.mark.conformance_long, pytest.mark.netns]

JOBS = [(case, protocol) for case in CASES if case.long for protocol in case.protocols]
MAX_PARALLEL = 30
_STARTING = threading.Semaphore(2)   # daemon start-up is CPU work: two at a time


def _run_one(case, protocol) -> None:
    from sim.testing.netns import VethLink

    link = VethLink().create()
    daemon = None
    try:
        with _STARTING:
            daemon = start_sut(case.daemon, link, protocol)
        target = Target(link.ifnames["ev"], Pilot(daemon.socket_path))
        try:
            link.run_coroutine("ev", lambda: run_case(case, protocol, target)).result(150)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- secc log ---\n{daemon.log_tail(15)}") from None
        assert daemon.alive(), f"the daemon died:\n{daemon.log_tail()}"
    finally:
        if daemon is not None:
            daemon.stop()
        link.destroy()


@pytest.fixture(scope="module")
def running():
    from sim.testing.netns import netns_supported

    ok, why = netns_supported()
    if not ok:
        pytest.skip(why)
    tester.SLACK = 3.0
    pool = concurrent.futures.ThreadPoolExecutor(MAX_PARALLEL)
    futures = {(case.id, protocol): pool.submit(_run_one, case, protocol)
               for case, protocol in JOBS if protocol not in case.na_for}
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)
    tester.SLACK = 0.0


@pytest.mark.parametrize("case,protocol", [pytest.param(c, p, id=f"{c.id}-{p}") for c, p in JOBS])
def test_long_case(case, protocol, running, request) -> None:
    request.node.conformance_case = case
    request.node.conformance_protocol = protocol
    if protocol in case.na_for:
        pytest.skip(case.na_for[protocol])
    running[(case.id, protocol)].result(600)
