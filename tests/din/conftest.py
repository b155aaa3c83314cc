"""Drive a DIN session through the real codec: request object -> EXI -> adapter -> core ->
response -> EXI -> decoded response object."""

from __future__ import annotations

import pytest

import exi_schemas
from exi_schemas.generated import din as M
from secc.din import DinAdapter

ADAPTER = DinAdapter()
REQ_FIELD = {name: field for field, name in __import__(
    "secc.din.adapter", fromlist=["REQUEST_FIELDS"]).REQUEST_FIELDS}


class Driver:
    def __init__(self, session):
        self.session = session
        self.replies = []

    def send(self, name, body, now=0.0, session_id=None):
        sid = self.session.session_id if session_id is None else session_id
        msg = M.V2G_Message(header=M.MessageHeaderType(session_id=sid),
                            body=M.BodyType(**{REQ_FIELD[name]: body}))
        request = ADAPTER.decode(0x8001, exi_schemas.encode(msg))
        reply = self.session.receive(request.name, request.body, now, request.session_id)
        self.replies.append(reply)
        if reply.response is None:
            return reply, None
        _, data = ADAPTER.encode(reply.response_name, reply.response, self.session.session_id)
        decoded = exi_schemas.decode(data, "din")
        field = reply.response_name[0].lower()
        body = next(v for k, v in vars_of(decoded.body).items() if v is not None)
        assert type(body).__name__.startswith(reply.response_name) or field
        return reply, body


def vars_of(obj):
    return {k: getattr(obj, k) for k in obj.__slots__}


def ev_status(soc=40):
    return M.DC_EVStatusType(ev_ready=True, ev_error_code="NO_ERROR", evresssoc=soc)


def pv(value, unit, multiplier=0):
    return M.PhysicalValueType(multiplier=multiplier, unit=unit, value=value)


@pytest.fixture
def din_session():
    from secc.din import DinSession
    return DinSession(evse_id="00")


@pytest.fixture
def driver(din_session):
    return Driver(din_session)
