"""Drive a DIN session through the real codec: request object -> EXI -> adapter -> core ->
response -> EXI -> decoded response object."""

from __future__ import annotations

import pytest

from tests.v2g_harness import Driver as HarnessDriver
from exi_schemas.generated import din as M
from secc.din import DinAdapter

ADAPTER = DinAdapter()
REQ_FIELD = {name: field for field, name in __import__(
    "secc.din.adapter", fromlist=["REQUEST_FIELDS"]).REQUEST_FIELDS}


class Driver(HarnessDriver):
    def __init__(self, session):
        super().__init__(session, ADAPTER)


def ev_status(soc=40):
    return M.DC_EVStatusType(ev_ready=True, ev_error_code="NO_ERROR", evresssoc=soc)


def pv(value, unit, multiplier=0):
    return M.PhysicalValueType(multiplier=multiplier, unit=unit, value=value)


@pytest.fixture
def din_session():
    from secc.din import DinSession
    session = DinSession(evse_id="00")
    session.evse.cp_state = "C"     # the DC car closed S2 before the cable check
    return session


@pytest.fixture
def driver(din_session):
    return Driver(din_session)
