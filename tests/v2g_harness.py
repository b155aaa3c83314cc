"""Drive a DIN / ISO-2 session core through the real codec, as the driver does:
request object -> EXI -> adapter.decode -> core -> adapter.encode -> EXI -> response object."""

from __future__ import annotations

import exi_schemas


class Driver:
    def __init__(self, session, adapter):
        self.session = session
        self.adapter = adapter
        self.M = adapter.M
        self.req_field = {name: field for field, name in adapter.REQUEST_FIELDS}
        self.replies = []

    def send(self, name, body, now=0.0, session_id=None):
        M = self.M
        sid = self.session.session_id if session_id is None else session_id
        msg = M.V2G_Message(header=M.MessageHeaderType(session_id=sid),
                            body=M.BodyType(**{self.req_field[name]: body}))
        request = self.adapter.decode(0x8001, exi_schemas.encode(msg))
        reply = self.session.receive(request.name, request.body, now, request.session_id)
        self.replies.append(reply)
        if reply.response is None:
            return reply, None
        _, data = self.adapter.encode(reply.response_name, reply.response,
                                      self.session.session_id)
        body = exi_schemas.decode(data, self.adapter.schema).body
        return reply, next(getattr(body, k) for k in body.__slots__
                           if getattr(body, k) is not None)


def finish_insulation_test(session, state=None, voltage=None):
    """The board completes the insulation test the session's cable check started (what a
    real board reports after holding the test voltage); a no-op before any cable check."""
    from secc.v2g.evse import InsulationTestResult, Isolation

    check = getattr(session, "cable_check", None)
    if check is None or not check.started:
        return
    session.evse.insulation_test = InsulationTestResult(
        check.token, check.voltage if voltage is None else voltage, complete=True,
        state=Isolation.VALID if state is None else state)
