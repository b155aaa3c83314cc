"""After PowerDeliveryRes(Stop) the DC car opens S2 (pilot B) before WeldingDetection /
SessionStop. The core holds the answer (``Reply.hold_until``) while the pilot still shows C/D,
answers normally once it shows B, and fails the request (FAILED, safe state, close) once
V2G_SECC_CPState_Detection_Timeout (1.5 s) after PowerDeliveryRes(Stop) has passed with C/D.
DIN 70121 and ISO 15118-2 DC (ISO 15118-4 style WeldingDetection_005 / SessionStop_006)."""

from __future__ import annotations

import pytest

from exi_schemas.generated import din as MD
from exi_schemas.generated import iso2 as M2
from secc.v2g.core import TERMINATED
from secc.v2g.evse import EnterSafeState, SetContactors
from tests.din.conftest import Driver as DinDriver
from tests.din.test_din_session import ev_status as din_status
from tests.din.test_din_session import to_current_demand
from tests.iso2.test_iso2_session import ev_status as iso2_status
from tests.iso2.test_iso2_session import make, setup, dc_parameters, pv
from tests.v2g_harness import finish_insulation_test

STOP_AT = 10.0       # PowerDeliveryRes(Stop), s
TIMEOUT = 1.5        # V2G_SECC_CPState_Detection_Timeout


def din_stopped():
    from secc.din import DinSession
    session = DinSession(evse_id="00")
    d = DinDriver(session)
    to_current_demand(d)
    _, res = d.send("PowerDeliveryReq", MD.PowerDeliveryReqType(ready_to_charge_state=False),
                    STOP_AT)
    assert res.response_code == "OK" and session.state == "WeldingDetection"
    return d


def iso2_stopped():
    d = make()
    s = d.session
    setup(d)
    dc_parameters(d)
    d.send("CableCheckReq", M2.CableCheckReqType(dc_ev_status=iso2_status()), 2.0)
    finish_insulation_test(s)
    d.send("CableCheckReq", M2.CableCheckReqType(dc_ev_status=iso2_status()), 2.1)
    s.evse.present_voltage = 500.0
    d.send("PreChargeReq", M2.PreChargeReqType(dc_ev_status=iso2_status(),
                                               ev_target_voltage=pv(500, "V"),
                                               ev_target_current=pv(1, "A")), 2.5)
    d.send("PowerDeliveryReq", M2.PowerDeliveryReqType(charge_progress="Start",
                                                       sa_schedule_tuple_id=1), 3.0)
    assert s.state == "CurrentDemand"
    _, res = d.send("PowerDeliveryReq", M2.PowerDeliveryReqType(charge_progress="Stop",
                                                                sa_schedule_tuple_id=1), STOP_AT)
    assert res.response_code == "OK" and s.state == "WeldingDetection"
    return d


def welding(d):
    if d.session.PROTOCOL == "din":
        return "WeldingDetectionReq", MD.WeldingDetectionReqType(dc_ev_status=din_status())
    return "WeldingDetectionReq", M2.WeldingDetectionReqType(dc_ev_status=iso2_status())


def session_stop(d):
    if d.session.PROTOCOL == "din":
        return "SessionStopReq", MD.SessionStopType()
    return "SessionStopReq", M2.SessionStopReqType(charging_session="Terminate")


CASES = [pytest.param(din_stopped, welding, id="din-welding"),
         pytest.param(din_stopped, session_stop, id="din-session-stop"),
         pytest.param(iso2_stopped, welding, id="iso2-welding"),
         pytest.param(iso2_stopped, session_stop, id="iso2-session-stop")]


@pytest.mark.parametrize("stopped, request_of", CASES)
def test_held_while_c_then_answered_ok_once_the_pilot_shows_b(stopped, request_of):
    d = stopped()
    s = d.session
    name, body = request_of(d)
    reply, res = d.send(name, body, STOP_AT + 0.05)          # the car sent it right after S2
    assert res is None and reply.hold_until == pytest.approx(STOP_AT + TIMEOUT)
    assert not reply.close and not reply.actions and not s.terminated
    reply, res = d.send(name, body, STOP_AT + 0.3)           # still C: still held, same deadline
    assert res is None and reply.hold_until == pytest.approx(STOP_AT + TIMEOUT)
    s.evse.cp_state = "B"                                     # the debounced pilot shows B
    reply, res = d.send(name, body, STOP_AT + 0.35)
    assert reply.hold_until is None and res.response_code == "OK"
    if name == "SessionStopReq":
        assert s.state == TERMINATED and reply.close and SetContactors(False) in reply.actions
    else:
        assert s.state == "WeldingDetection" and not reply.close
        # answered once: the next request is a new one, answered at once (no hold)
        reply, res = d.send(name, body, STOP_AT + 0.5)
        assert reply.hold_until is None and res.response_code == "OK"


@pytest.mark.parametrize("stopped, request_of", CASES)
def test_c_kept_fails_after_the_detection_time_never_before(stopped, request_of):
    d = stopped()
    s = d.session
    name, body = request_of(d)
    for t in (0.01, 0.5, 1.0, TIMEOUT - 0.001):
        reply, res = d.send(name, body, STOP_AT + t)
        assert res is None and reply.hold_until == pytest.approx(STOP_AT + TIMEOUT), t
        assert not s.terminated and not any(isinstance(a, EnterSafeState) for a in reply.actions)
    reply, res = d.send(name, body, STOP_AT + TIMEOUT)       # the driver's deadline wake-up
    assert reply.hold_until is None
    assert res.response_code == "FAILED"
    assert s.state == TERMINATED and reply.close
    assert any(isinstance(a, EnterSafeState) for a in reply.actions)
    # answered once: the core ignores a repeat after it closed
    reply, res = d.send(name, body, STOP_AT + TIMEOUT + 0.1)
    assert res is None and reply.close and reply.hold_until is None


@pytest.mark.parametrize("stopped", [din_stopped, iso2_stopped])
def test_the_pilot_in_b_before_the_request_is_answered_at_once(stopped):
    d = stopped()
    d.session.evse.cp_state = "B"
    name, body = welding(d)
    reply, res = d.send(name, body, STOP_AT + 0.01)
    assert reply.hold_until is None and res.response_code == "OK"


def test_ac_session_stop_is_not_held():
    from tests.iso2.test_iso2_session import ac_charge_then_stop
    d = make(("AC_three_phase_core",))
    ac_charge_then_stop(d)
    d.session.evse.cp_state = "C"
    reply, res = d.send("SessionStopReq", M2.SessionStopReqType(charging_session="Terminate"),
                        3.1)
    assert reply.hold_until is None and res.response_code == "OK"


def test_session_stop_during_charging_is_not_held():
    """Only after PowerDelivery(Stop): a car aborting from CurrentDemand (field quirk) gets its
    answer at once."""
    from secc.din import DinSession
    from secc.v2g.quirks import DEFAULT_FIELD_QUIRKS
    d = DinDriver(DinSession(evse_id="00", quirks=DEFAULT_FIELD_QUIRKS))
    to_current_demand(d)
    reply, res = d.send("SessionStopReq", MD.SessionStopType(), 4.0)
    assert reply.hold_until is None and res.response_code == "OK"
