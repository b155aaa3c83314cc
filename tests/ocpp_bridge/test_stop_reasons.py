"""The one table from the SECC's EndReason to OCPP TransactionEvent trigger/stopped reasons:
one test per row, and the bridge's queue applies it to Ended events."""

from __future__ import annotations

import json

import pytest

from ocpp_bridge.queue import TransactionQueue
from ocpp_bridge.stop_reasons import OCPP_END_REASONS, ocpp_end
from secc.contract import SCHEMA_DIR
from secc.contract.reasons import EndReason

ROWS = [
    (EndReason.EV_STOPPED, "ChargingStateChanged", "StoppedByEV"),
    (EndReason.EV_PAUSED, "ChargingStateChanged", "StoppedByEV"),
    (EndReason.SOC_LIMIT_REACHED, "ChargingStateChanged", "SOCLimitReached"),
    (EndReason.EV_UNPLUGGED, "EVCommunicationLost", "EVDisconnected"),
    (EndReason.COMMUNICATION_LOST, "EVCommunicationLost", "Other"),
    (EndReason.TIMEOUT, "EVCommunicationLost", "Timeout"),
    (EndReason.PROTOCOL_ERROR, "AbnormalCondition", "Other"),
    (EndReason.DEAUTHORIZED, "Deauthorized", "DeAuthorized"),
    (EndReason.REMOTE_STOP, "RemoteStop", "Remote"),
    (EndReason.IMMEDIATE_RESET, "ResetCommand", "ImmediateReset"),
    (EndReason.LOCAL_STOP, "StopAuthorized", "Local"),
    (EndReason.EMERGENCY_STOP, "AbnormalCondition", "EmergencyStop"),
    (EndReason.ISOLATION_FAULT, "AbnormalCondition", "GroundFault"),
    (EndReason.MALFUNCTION, "AbnormalCondition", "Other"),
    (EndReason.POWER_LOSS, "AbnormalCondition", "PowerLoss"),
    (EndReason.INTERNAL_ERROR, "AbnormalCondition", "Other"),
]


@pytest.mark.parametrize("end, trigger, stopped", ROWS, ids=[r[0].value for r in ROWS])
def test_row(end, trigger, stopped):
    assert ocpp_end(end.value) == (trigger, stopped)


def test_every_end_reason_has_one_row_and_the_bus_schema_lists_them_all():
    assert {r[0] for r in ROWS} == set(EndReason) == set(OCPP_END_REASONS)
    schema = json.loads((SCHEMA_DIR / "transaction_event.json").read_text())["properties"]
    assert schema["end_reason"]["enum"] == [r.value for r in EndReason]
    for trigger, stopped in OCPP_END_REASONS.values():   # values OCPP 2.0.1 knows
        assert trigger in schema["trigger_reason"]["enum"]
        assert stopped in schema["stopped_reason"]["enum"]


def test_normal_ends_are_not_abnormal():
    for end in (EndReason.EV_STOPPED, EndReason.EV_PAUSED, EndReason.EV_UNPLUGGED,
                EndReason.REMOTE_STOP, EndReason.LOCAL_STOP, EndReason.SOC_LIMIT_REACHED):
        trigger, stopped = ocpp_end(end.value)
        assert trigger != "AbnormalCondition" and stopped != "Other"


def _event(message_id, kind, **extra):
    return {"message_id": message_id, "event_type": kind, "session_id": "s1",
            "timestamp": "2026-01-01T00:00:00Z", "trigger_reason": "StopAuthorized", **extra}


def test_the_queue_sends_an_ended_event_with_the_tables_reasons(tmp_path):
    queue = TransactionQueue(tmp_path / "q.db")
    queue.enqueue_transaction_event(1, _event("m-000001", "Started"), offline=False, now=0)
    queue.enqueue_transaction_event(1, _event("m-000002", "Ended", end_reason="ev_stopped",
                                              stopped_reason="Other"), offline=False, now=1)
    queue.mark_sent(queue.head().row_id)
    ended = queue.head().payload
    assert ended["triggerReason"] == "ChargingStateChanged"
    assert ended["transactionInfo"]["stoppedReason"] == "StoppedByEV"


def test_the_queue_keeps_a_senders_own_reasons_without_end_reason(tmp_path):
    queue = TransactionQueue(tmp_path / "q.db")
    queue.enqueue_transaction_event(1, _event("m-000001", "Ended", trigger_reason="EVDeparted",
                                              stopped_reason="EVDisconnected"),
                                    offline=False, now=0)
    ended = queue.head().payload
    assert ended["triggerReason"] == "EVDeparted"
    assert ended["transactionInfo"]["stoppedReason"] == "EVDisconnected"
