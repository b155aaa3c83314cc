"""Run a sans-I/O EVCC against the scripted SECC in virtual time (no sockets, no sleeping)."""

from __future__ import annotations

from typing import Any

import exi_schemas as exi
from secc.v2gtp import PayloadType
from sim.evcc.core import Finished, SessionRecord
from tests.evcc.scripted_secc import ScriptedSecc


def run_virtual(evcc: Any, secc: ScriptedSecc, *, response_delay: float = 0.01,
                max_messages: int = 10_000, sent: list | None = None) -> SessionRecord:
    """Drive ``evcc`` to its end; the SECC answers ``response_delay`` seconds after each
    request; a request the SECC leaves unanswered lets virtual time jump to the EV's deadline."""
    now = 0.0
    action = evcc.start(now)
    for _ in range(max_messages):
        if isinstance(action, Finished):
            return action.record
        if sent is not None:
            sent.append(action)
        now = max(now, action.not_before)
        try:
            reply = secc.respond(action.payload)
        except exi.ExiDecodeError:
            reply = None
        if reply is None:
            now = evcc.next_deadline()
            action = evcc.handle_timer(now)
            assert action is not None, "a deadline passed without ending the session"
            continue
        now += response_delay
        action = evcc.receive(PayloadType.EXI, reply, now)
    raise AssertionError("the session never ended")
