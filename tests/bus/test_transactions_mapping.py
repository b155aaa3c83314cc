"""Session end reasons map to OCPP trigger/stopped reasons the CSMS can act on."""

import pytest

from secc.bus.transactions import TRANSACTION_EVENTS, stopped_reason


@pytest.mark.parametrize("reason, expected", [
    ("emergency", ("AbnormalCondition", "EmergencyStop")),
    ("isolation", ("AbnormalCondition", "GroundFault")),
    ("remote_stop", ("RemoteStop", "Remote")),
    ("connection lost: EV unplugged", ("EVCommunicationLost", "EVDisconnected")),
    ("sequence timeout in state CurrentDemand", ("EVCommunicationLost", "Timeout")),
    ("session stopped by EV", ("StopAuthorized", "StoppedByEV")),
    ("FAILED_SequenceError: CableCheckReq not allowed", ("AbnormalCondition", "Other")),
])
def test_end_reasons(reason, expected):
    assert stopped_reason(reason) == expected


def test_every_session_lifecycle_event_is_a_transaction_event():
    assert TRANSACTION_EVENTS["SessionStarted"][0] == "Started"
    assert TRANSACTION_EVENTS["SessionStopped"][0] == "Ended"
    assert {"Authorized", "ChargingStarted", "ChargingStopped"} <= set(TRANSACTION_EVENTS)
