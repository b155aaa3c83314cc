"""Session events become transaction events; why a session ended travels as an EndReason.

The reporter never interprets log text: it carries the core's ``end_reason`` on the bus (the
bridge maps it to OCPP, ``tests/ocpp_bridge/test_stop_reasons.py``). A paused session keeps its
transaction open (Updated/SuspendedEV) until it resumes, another session starts, or the cable
is unplugged.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from secc.bus.client import SeccBusClient, SeccBusConfig
from secc.bus.transactions import TRANSACTION_EVENTS, TransactionReporter
from secc.common.mqtt import BrokerConfig
from secc.contract.reasons import EndReason
from secc.v2g.evse import PublishEvent


class Bus:
    """The real SECC bus client, never started: what it commits stays in its outbox, after
    the contract's schema validation."""

    def __init__(self, path) -> None:
        self.client = SeccBusClient(SeccBusConfig(BrokerConfig(), 1, path))
        self.send_transaction_event = self.client.send_transaction_event

    @property
    def sent(self) -> list[tuple[str, str, str, dict]]:
        rows, outbox = [], self.client.outbox
        while (row := outbox.oldest()) is not None:
            rows.append(row.payload)
            outbox.remove(row.message_id)
        self._sent = getattr(self, "_sent", []) + [
            (p["event_type"], p["session_id"], p["trigger_reason"], p) for p in rows]
        return self._sent


class Board:
    async def read_meter(self, signed=False):
        return SimpleNamespace(energy_wh=1000.0, power_w=0.0, current_a=0.0, voltage_v=400.0,
                               signed=None)


def event(kind: str, session_id: str = "aa01", **data) -> PublishEvent:
    return PublishEvent(kind, {"session_id": session_id, **data})


@pytest.fixture
def reporter(tmp_path):
    bus = Bus(tmp_path / "outbox.db")
    return TransactionReporter(bus, Board(), meter_interval=3600), bus


def test_every_session_lifecycle_event_is_a_transaction_event():
    assert TRANSACTION_EVENTS["SessionStarted"][0] == "Started"
    assert TRANSACTION_EVENTS["SessionStopped"][0] == "Ended"
    assert {"Authorized", "ChargingStarted", "ChargingStopped"} <= set(TRANSACTION_EVENTS)


@pytest.mark.parametrize("end", list(EndReason))
async def test_session_stopped_carries_its_end_reason_not_an_ocpp_guess(reporter, end):
    reporter, bus = reporter
    await reporter.on_event(event("SessionStopped", reason="whatever the log says",
                                  end_reason=end))
    (event_type, session_id, _, kwargs), = bus.sent
    assert (event_type, session_id) == ("Ended", "aa01")
    assert kwargs["end_reason"] == end.value
    assert "stopped_reason" not in kwargs   # the bridge's table decides that


async def test_a_stop_without_end_reason_still_ends_the_transaction_as_internal_error(
        reporter, caplog):
    reporter, bus = reporter
    await reporter.on_event(event("SessionStopped", reason="EV SessionStop"))
    assert bus.sent[0][0] == "Ended" and bus.sent[0][3]["end_reason"] == "internal_error"
    assert "without a valid end_reason" in caplog.text


async def test_pause_suspends_the_transaction_and_resume_continues_it(reporter):
    reporter, bus = reporter
    await reporter.on_event(event("SessionStarted"))
    await reporter.on_event(event("SessionPaused"))
    await reporter.on_event(event("SessionResumed"))
    await reporter.on_event(event("SessionStopped", end_reason=EndReason.EV_STOPPED))
    assert [(s[0], s[2], s[3].get("charging_state")) for s in bus.sent] == [
        ("Started", "EVDetected", "EVConnected"),
        ("Updated", "ChargingStateChanged", "SuspendedEV"),
        ("Updated", "ChargingStateChanged", "EVConnected"),
        ("Ended", "StopAuthorized", "Idle")]
    await reporter.ev_unplugged()   # nothing paused any more: nothing to end
    assert len(bus.sent) == 4


async def test_unplugging_a_paused_session_ends_its_transaction_as_ev_unplugged(reporter):
    reporter, bus = reporter
    await reporter.on_event(event("SessionStarted"))
    await reporter.on_event(event("SessionPaused"))
    await reporter.ev_unplugged()
    assert bus.sent[-1][0] == "Ended" and bus.sent[-1][1] == "aa01"
    assert bus.sent[-1][3]["end_reason"] == "ev_unplugged"
    await reporter.ev_unplugged()
    assert len(bus.sent) == 3   # ended once


async def test_a_new_session_after_a_pause_ends_the_paused_transaction_first(reporter):
    reporter, bus = reporter
    await reporter.on_event(event("SessionStarted", "aa01"))
    await reporter.on_event(event("SessionPaused", "aa01"))
    await reporter.on_event(event("SessionStarted", "bb02"))
    assert [(s[0], s[1]) for s in bus.sent[2:]] == [("Ended", "aa01"), ("Started", "bb02")]
    assert bus.sent[2][3]["end_reason"] == "ev_stopped"
