"""Every way a session ends says why with an EndReason (never log text), and every safe state
has a SafeStateReason: the core's tables are total, an EVSE-side stop explains the end."""

from __future__ import annotations

import pytest

from exi_schemas.generated import iso2 as M2
from hal.board import SafeStateReason
from secc.authorization import AuthorizationDecision, AuthorizationStatus
from secc.contract.reasons import EndReason
from secc.v2g.core import EVSE_STOP_ENDS, STOP_CAUSES
from secc.v2g.evse import EnterSafeState, PublishEvent, StopReason
from sim.evcc import Misbehaviour
from sim.iso20_loopback import LoopbackCharger, run_loopback
from tests.iso2.test_iso2_session import ac_charge_then_stop, make
from tests.iso20.conftest import make_evcc, make_secc
from tests.v2g.test_core import Toy


def stopped(actions) -> list[PublishEvent]:
    return [a for a in actions if isinstance(a, PublishEvent) and a.kind == "SessionStopped"]


def end_of(actions) -> EndReason:
    (event,) = stopped(actions)
    assert isinstance(event.data["end_reason"], EndReason)
    return event.data["end_reason"]


def test_safe_state_causes_are_enums_with_no_fallback():
    assert set(STOP_CAUSES) == set(StopReason)
    assert all(isinstance(c, SafeStateReason) for c in STOP_CAUSES.values())
    assert set(EVSE_STOP_ENDS) == set(StopReason) - {StopReason.NONE}
    with pytest.raises(TypeError, match="SafeStateReason"):
        EnterSafeState("text is not a cause", "communication_error")


def test_a_timer_ends_the_session_as_timeout():
    core = Toy()
    core.receive("SessionSetupReq", None, 0.0)
    reply = core.handle_timer(core.next_deadline())
    assert end_of(reply.actions) is EndReason.TIMEOUT


def test_a_failed_request_is_a_protocol_error_and_a_refused_token_deauthorized():
    core = Toy()
    core.receive("SessionSetupReq", None, 0.0)
    reply = core.receive("AuthReq", "bad", 1.0, session_id=core.session_id)
    assert end_of(reply.actions) is EndReason.PROTOCOL_ERROR
    d = make()
    d.send("SessionSetupReq", M2.SessionSetupReqType(evccid=bytes(6)), 0.0, session_id=bytes(8))
    d.send("ServiceDiscoveryReq", M2.ServiceDiscoveryReqType(), 0.1)
    d.send("PaymentServiceSelectionReq", M2.PaymentServiceSelectionReqType(
        selected_payment_option="ExternalPayment", selected_service_list=M2.SelectedServiceListType(
            selected_service=[M2.SelectedServiceType(service_id=1)])), 0.2)
    d.send("AuthorizationReq", M2.AuthorizationReqType(), 0.3)
    d.session.authorization_decided(AuthorizationDecision(AuthorizationStatus.INVALID, "unknown"))
    reply, res = d.send("AuthorizationReq", M2.AuthorizationReqType(), 0.6)
    assert res.response_code.startswith("FAILED")
    assert end_of(reply.actions) is EndReason.DEAUTHORIZED


def test_an_evse_side_stop_is_the_end_reason_whatever_follows():
    core = Toy()
    core.receive("SessionSetupReq", None, 0.0)
    core.evse_stop(StopReason.REMOTE_STOP)
    reply = core.receive("AuthReq", "bad", 1.0, session_id=core.session_id)
    assert end_of(reply.actions) is EndReason.REMOTE_STOP
    safe = [a for a in reply.actions if isinstance(a, EnterSafeState)]
    assert safe[0].cause is SafeStateReason.SESSION_END


def test_a_lost_connection_is_ev_unplugged_only_with_the_pilot_in_a():
    core = Toy()
    core.receive("SessionSetupReq", None, 0.0)
    assert end_of(core.connection_lost("reset")) is EndReason.COMMUNICATION_LOST
    core = Toy()
    core.receive("SessionSetupReq", None, 0.0)
    core.evse.cp_state = "A"
    actions = core.connection_lost("reset")
    assert end_of(actions) is EndReason.EV_UNPLUGGED
    assert [a.cause for a in actions if isinstance(a, EnterSafeState)] == [
        SafeStateReason.COMMUNICATION_ERROR]


def test_iso2_terminate_is_ev_stopped_and_pause_keeps_the_transaction():
    d = make(("AC_three_phase_core",))
    ac_charge_then_stop(d)
    reply, _ = d.send("SessionStopReq", M2.SessionStopReqType(charging_session="Terminate"), 3.1)
    assert end_of(reply.actions) is EndReason.EV_STOPPED
    d = make(("AC_three_phase_core",))
    ac_charge_then_stop(d)
    reply, _ = d.send("SessionStopReq", M2.SessionStopReqType(charging_session="Pause"), 3.1)
    assert not stopped(reply.actions)
    assert [a.kind for a in reply.actions if isinstance(a, PublishEvent)] == ["SessionPaused"]


def test_iso20_normal_terminate_is_ev_stopped_not_an_abnormal_end():
    adapter, core = make_secc("dc")
    charger = LoopbackCharger()
    run_loopback(core, adapter, make_evcc("dc", loops=2), charger)
    assert end_of(charger.events) is EndReason.EV_STOPPED
    adapter, core = make_secc("dc")
    charger = LoopbackCharger()
    run_loopback(core, adapter, make_evcc(
        "dc", loops=2, misbehaviour=Misbehaviour(pause_instead_of_terminate=True)), charger)
    assert not stopped(charger.events) and "SessionPaused" in charger.event_kinds()


@pytest.mark.parametrize("complete, end", [(True, EndReason.SOC_LIMIT_REACHED),
                                           (False, EndReason.EV_STOPPED)])
def test_a_dc_car_that_said_it_is_full_ends_as_soc_limit_reached(complete, end):
    from exi_schemas.generated import din as MD
    from secc.din import DinSession
    from tests.din.conftest import Driver, ev_status, pv
    from tests.din.test_din_session import to_current_demand

    d = Driver(DinSession(evse_id="00"))
    to_current_demand(d)
    d.send("CurrentDemandReq", MD.CurrentDemandReqType(
        dc_ev_status=ev_status(), ev_target_current=pv(10, "A"), ev_target_voltage=pv(400, "V"),
        charging_complete=complete), 4.0)
    d.send("PowerDeliveryReq", MD.PowerDeliveryReqType(ready_to_charge_state=False), 5.0)
    d.session.evse.cp_state = "B"       # the car opened S2 after PowerDeliveryRes(Stop)
    d.send("WeldingDetectionReq", MD.WeldingDetectionReqType(dc_ev_status=ev_status()), 5.5)
    reply, res = d.send("SessionStopReq", MD.SessionStopType(), 6.0)
    assert res.response_code == "OK"
    assert end_of(reply.actions) is end
