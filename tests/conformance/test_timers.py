"""The catalogue's long-timer cases (V2G_SECC_Sequence_Timeout 60 s, CommunicationSetup 20 s):
``make conformance`` only (marker ``conformance_long``).

Each (case, protocol) needs an idle SECC for a minute, so they run side by side: every one gets
its own veth link and its own ``secc run``; the first test starts them all, each test then
reports its own case.
"""

from __future__ import annotations

import pytest

from tests.conformance import tester
from tests.conformance.cases import CASES
from tests.conformance.side_by_side import start_all

pytestmark = [pytest.mark.conformance_long, pytest.mark.netns]

JOBS = [(case, protocol) for case in CASES if case.long for protocol in case.protocols]
MAX_PARALLEL = 30


@pytest.fixture(scope="module")
def running():
    from sim.testing.netns import netns_supported

    ok, why = netns_supported()
    if not ok:
        pytest.skip(why)
    tester.SLACK = 3.0
    try:
        yield from start_all([(c, p) for c, p in JOBS if p not in c.na_for], MAX_PARALLEL,
                             timeout=150, log_lines=15)
    finally:
        tester.SLACK = 0.0


@pytest.mark.parametrize("case,protocol", [pytest.param(c, p, id=f"{c.id}-{p}") for c, p in JOBS])
def test_long_case(case, protocol, running, request) -> None:
    request.node.conformance_case = case
    request.node.conformance_protocol = protocol
    if protocol in case.na_for:
        pytest.skip(case.na_for[protocol])
    running[(case.id, protocol)].result(600)
