"""Every -20 SECC timer in virtual time: charge-loop sequence timeout 0.5 s (not 60 s), 60 s
elsewhere, Ongoing limits (Authorization, CableCheck, PreCharge), CP state after
PowerDelivery(Start), the EVSE-notification deadline, CommunicationSetup."""

from __future__ import annotations

import pytest

from exi_schemas.generated import iso20_dc as dc
from sim.iso20_loopback import LoopbackCharger, run_loopback
from secc.iso20.table import S
from secc.v2g.evse import EnterSafeState, StopReason
from secc.v2g.timers import V2GTimerConfig
from sim.evcc import Misbehaviour
from sim.evcc.failures import ConnectionLost

from .conftest import make_evcc, make_secc


def safe(reply) -> bool:
    return any(isinstance(a, EnterSafeState) for a in reply.actions)


# the EV answers 0.05 s after our response, then stalls: gaps of 0.45 s and 0.55 s
@pytest.mark.parametrize("gap, survives", [(0.40, True), (0.50, False)])
def test_charge_loop_sequence_timeout_is_half_a_second(gap, survives):
    adapter, core = make_secc("dc")
    evcc = make_evcc("dc", loops=4, misbehaviour=Misbehaviour(stall={"DC_ChargeLoop": gap}))
    result = run_loopback(core, adapter, evcc, LoopbackCharger())
    if survives:
        assert result.ev_result.record.failure is None
    else:
        assert result.timer_reply is not None and safe(result.timer_reply)
        assert isinstance(result.ev_result.record.failure, ConnectionLost)
        assert result.exchanges[-1].request == "PowerDeliveryReq"
        assert core.terminated and core.evse.present_current == 0


@pytest.mark.parametrize("gap, survives", [(59.0, True), (61.0, False)])
def test_sequence_timeout_outside_the_loop_is_60_seconds(gap, survives):
    adapter, core = make_secc("dc")
    evcc = make_evcc("dc", loops=1, misbehaviour=Misbehaviour(stall={"ServiceDetail": gap}))
    result = run_loopback(core, adapter, evcc, LoopbackCharger())
    assert (result.ev_result.record.failure is None) is survives
    if not survives:
        assert result.timer_reply.close and "sequence timeout" in \
            result.timer_reply.actions[-1].reason


def test_per_state_sequence_timeouts():
    core = make_secc("dc")[1]
    assert core.sequence_timeout_for(S.CHARGE_LOOP) == 0.5
    assert core.sequence_timeout_for(S.STANDBY) == 0.5
    assert core.sequence_timeout_for(S.WAIT_PRE_CHARGE) == 60.0
    assert core.sequence_timeout_for(S.POST_CHARGE) == 60.0


def test_authorization_ongoing_limit_fails_before_the_car_gives_up():
    assert V2GTimerConfig().ongoing_timeout < 60.0  # V2G_EVCC_Ongoing_Timeout
    adapter, core = make_secc("dc", timers=V2GTimerConfig(ongoing_timeout=2.0))
    result = run_loopback(core, adapter, make_evcc("dc"), LoopbackCharger(decision=None))
    assert result.codes[-1] == ("AuthorizationReq", "WARNING_EIMAuthorizationFailure")
    assert 2.0 < result.exchanges[-1].at < 2.2
    assert core.terminated   # no decision in time: the session ends in a safe state
    assert isinstance(result.ev_result.record.failure, ConnectionLost)


def test_cable_check_limit():
    adapter, core = make_secc("dc", timers=V2GTimerConfig(cable_check_timeout=1.0))
    result = run_loopback(core, adapter, make_evcc("dc"), LoopbackCharger(isolation_delay=99))
    assert result.codes[-1] == ("DC_CableCheckReq", "FAILED")
    assert result.requests.count("DC_CableCheckReq") > 10
    assert core.terminated and not core.evse.contactors_closed


def test_precharge_limit_when_the_voltage_never_matches():
    # below the car's own 7 s V2G_EVCC_PreCharge_Timeout, so our limit is what fires
    adapter, core = make_secc("dc", timers=V2GTimerConfig(precharge_timeout=5.0))
    evcc = make_evcc("dc")
    evcc.config.precharge_tolerance = -1.0  # the car is never satisfied
    result = run_loopback(core, adapter, evcc, LoopbackCharger())
    assert result.codes[-1] == ("DC_PreChargeReq", "FAILED")
    first = next(e.at for e in result.exchanges if e.request == "DC_PreChargeReq")
    assert result.exchanges[-1].at - first == pytest.approx(5.0, abs=0.1)


def test_cp_state_must_reach_c_after_power_delivery_start():
    adapter, core = make_secc("dc")
    result = run_loopback(core, adapter, make_evcc("dc", loops=100, stay_in_state_b=True),
                          LoopbackCharger())
    assert result.timer_reply is not None and "cp_state" in result.timer_reply.actions[-1].reason
    assert safe(result.timer_reply)
    start = max(e.at for e in result.exchanges if e.request == "PowerDeliveryReq")
    assert result.now - start == pytest.approx(1.5, abs=0.06)


def test_cp_state_c_in_time_keeps_charging():
    adapter, core = make_secc("dc")
    assert run_loopback(core, adapter, make_evcc("dc", loops=20),
                        LoopbackCharger()).ev_result.record.failure is None


def test_car_ignoring_the_evse_stop_notification_is_cut_off(pump_for):
    from secc.iso20 import Iso20Config
    pump = pump_for("dc", loops=100, core_kwargs={"config": Iso20Config(
        notification_max_delay=1)})
    pump.until("DC_ChargeLoop")
    pump.step()
    assert pump.core.evse_stop(StopReason.REMOTE_STOP) == []   # graceful: no safe state yet
    core = pump.core
    req = dc.DC_ChargeLoopReqType(
        header=None, meter_info_requested=False,
        ev_present_voltage=dc.RationalNumberType(exponent=0, value=400),
        scheduled_dc_cl_req_control_mode=dc.Scheduled_DC_CLReqControlModeType(
            ev_target_current=dc.RationalNumberType(exponent=0, value=100),
            ev_target_voltage=dc.RationalNumberType(exponent=0, value=450)))
    first = pump.send(req, "DC_ChargeLoopReq")
    assert first.response.response_code == "OK"
    assert first.response.evse_status.evse_notification == "Terminate"
    assert first.response.evse_status.notification_max_delay == 1
    assert core.setpoint.current == 0     # ramped down while waiting for the car
    started = pump.now
    reply = None
    while reply is None:                  # the car keeps looping and never stops
        pump.now += 0.25
        reply = core.handle_timer(pump.now)
        if reply is None:
            req.header = None
            pump.send(req, "DC_ChargeLoopReq")
    assert pump.now - started == pytest.approx(1.0, abs=0.26)
    assert reply.close and safe(reply) and core.terminated


def test_communication_setup_timeout_without_session_setup():
    core = make_secc("dc", now=5.0)[1]
    assert core.next_deadline() == 25.0
    reply = core.handle_timer(25.0)
    assert reply.close and safe(reply)
