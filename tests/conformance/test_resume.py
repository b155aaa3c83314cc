"""The catalogue's pause/resume cases (ISO-2 AC and DC; flows in resume.py), side by side.

Each case charges, pauses, lets the car sleep (1 s until its BCB toggle, or the SECC's 3 s
wake-up time), then resumes: seconds of waiting on protocol time, little CPU. So every
(case, protocol) gets its own veth link and ``secc run`` (the paused-session store and the
sleep belong to one daemon) and they run a few at a time; the first test starts them all,
each test then reports its own case. They are in ``make test`` and ``make conformance``.
"""

from __future__ import annotations

import pytest

from tests.conformance.cases import CASES
from tests.conformance.side_by_side import start_all

pytestmark = [pytest.mark.netns]

JOBS = [(case, protocol) for case in CASES if case.side_by_side and not case.na
        for protocol in case.protocols]
# the flows check timing (wake-up within 2 s, not before the SECC's PIXIT): keep the box calm
MAX_PARALLEL = 6


@pytest.fixture(scope="module")
def running():
    from sim.testing.netns import netns_supported

    ok, why = netns_supported()
    if not ok:
        pytest.skip(why)
    yield from start_all(JOBS, MAX_PARALLEL, timeout=120, log_lines=25)


@pytest.mark.parametrize("case,protocol", [pytest.param(c, p, id=f"{c.id}-{p}") for c, p in JOBS])
def test_resume_case(case, protocol, running, request) -> None:
    request.node.conformance_case = case
    request.node.conformance_protocol = protocol
    running[(case.id, protocol)].result(600)
