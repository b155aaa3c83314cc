"""Pause/resume with the old SessionID, schedule renegotiation (EV- and EVSE-triggered),
standby, service renegotiation, and dynamic mode with changing targets."""

from __future__ import annotations

import pytest

from secc.iso20 import QUIRK_BPT_DISCHARGE_POSITIVE, BptLimits, Iso20Config, PausedSessions
from sim.iso20_loopback import LoopbackCharger, run_loopback
from secc.iso20.table import S
from secc.v2g.evse import SetDcOutput
from sim.evcc import Misbehaviour

from .conftest import make_evcc, make_secc


def test_paused_session_resumes_with_old_session_id_and_keeps_authorization():
    adapter, core = make_secc("dc")
    first = run_loopback(core, adapter, make_evcc(
        "dc", loops=2, misbehaviour=Misbehaviour(pause_instead_of_terminate=True)),
        LoopbackCharger())
    record = first.ev_result.record
    assert record.failure is None and record.paused
    assert first.exchanges[-1].request == "SessionStopReq" and core.terminated
    assert len(adapter.paused_sessions) == 1
    old_id = core.session_id

    core2 = adapter.new_core()
    charger = LoopbackCharger(decision=None)  # no new authorization decision arrives
    second = run_loopback(core2, adapter, make_evcc("dc", loops=2, resume=old_id), charger)
    record2 = second.ev_result.record
    assert record2.failure is None and record2.resumed
    assert second.codes[0] == ("SessionSetupReq", "OK_OldSessionJoined")
    assert core2.session_id == old_id
    # authorized at once: the paused session's decision was kept
    assert second.requests.count("AuthorizationReq") == 1
    assert "SessionResumed" in charger.event_kinds()
    assert len(adapter.paused_sessions) == 0


def test_unknown_or_foreign_session_id_gets_a_new_session():
    adapter, core = make_secc("dc")
    run_loopback(core, adapter, make_evcc(
        "dc", loops=1, misbehaviour=Misbehaviour(pause_instead_of_terminate=True)))
    old_id = core.session_id
    # another car presenting the paused ID does not get it
    core2 = adapter.new_core()
    other = make_evcc("dc", loops=1, resume=old_id)
    other.config.evcc_id = bytes.fromhex("0A0B0C0D0E0F")
    result = run_loopback(core2, adapter, other)
    assert result.codes[0] == ("SessionSetupReq", "OK_NewSessionEstablished")
    assert core2.session_id != old_id


def test_paused_sessions_expire():
    store = PausedSessions(lifetime=10.0)
    adapter, core = make_secc("dc")
    adapter.paused_sessions = store
    core.paused_sessions = store
    run_loopback(core, adapter, make_evcc(
        "dc", loops=1, misbehaviour=Misbehaviour(pause_instead_of_terminate=True)))
    paused_at = store._sessions[core.session_id].paused_at
    assert store.take(core.session_id, make_evcc().evccid, paused_at + 11) is None


def test_pause_while_power_flows_is_refused_with_pause_not_allowed(pump_for):
    pump = pump_for("dc", loops=50)
    pump.until("DC_ChargeLoop")
    pump.step()
    from exi_schemas.generated import iso20 as cm
    step = pump.send(cm.SessionStopReqType(header=None, charging_session="Pause"),
                     "SessionStopReq")
    assert step.response.response_code == "FAILED_PauseNotAllowed"
    assert pump.core.terminated and pump.core.evse.present_current == 0


@pytest.mark.parametrize("energy", ["dc", "ac"])
def test_ev_triggered_schedule_renegotiation_returns_to_the_loop(energy):
    adapter, core = make_secc(energy)
    charger = LoopbackCharger()
    evcc = make_evcc(energy, loops=6, misbehaviour=Misbehaviour(renegotiate_after=2))
    result = run_loopback(core, adapter, evcc, charger)
    record = result.ev_result.record
    assert record.failure is None and record.renegotiations == 1
    reqs = result.requests
    i = reqs.index("ScheduleExchangeReq", reqs.index("PowerDeliveryReq") + 1)
    assert reqs[i - 1] == "PowerDeliveryReq" and reqs[i + 1] == "PowerDeliveryReq"
    assert "ScheduleRenegotiated" in charger.event_kinds()
    # no second cable check or pre-charge
    assert reqs.count("DC_CableCheckReq") == (reqs.count("DC_CableCheckReq") if energy == "dc"
                                              else 0)
    assert reqs[i + 2].endswith("ChargeLoopReq")


def test_evse_triggered_renegotiation_is_announced_in_the_loop(pump_for):
    pump = pump_for("dc", loops=8)
    pump.until("DC_ChargeLoop")
    pump.step()
    pump.core.request_schedule_renegotiation()
    step = pump.step()
    assert step.response.evse_status.evse_notification == "ScheduleRenegotiation"
    pump.run()
    assert pump.evcc.record.failure is None and pump.evcc.record.renegotiations == 1
    assert "ScheduleRenegotiation" in pump.evcc.notifications


def test_standby_turns_output_off_and_start_resumes(pump_for):
    pump = pump_for("dc", loops=8, standby_after=2, standby_loops=2)
    pump.until("PowerDelivery")
    pump.step()  # Start
    pump.until("PowerDelivery")
    pump.step()  # Standby
    assert pump.core.state == S.STANDBY
    assert pump.charger.actions[-2] == SetDcOutput(pump.core.evse.present_voltage, 0.0,
                                                   enabled=False) or any(
        a == SetDcOutput(a.voltage, 0.0, enabled=False) for a in pump.charger.actions[-3:])
    loop = pump.step()
    assert loop.request == "DC_ChargeLoopReq" and pump.core.state == S.STANDBY
    assert pump.core.sequence_timeout_for(S.STANDBY) == 0.5
    pump.run()
    assert pump.evcc.record.failure is None
    assert "StandbyExited" in pump.charger.event_kinds()


def test_service_renegotiation_goes_back_to_service_discovery():
    adapter, core = make_secc("dc")
    evcc = make_evcc("dc", loops=2, service_renegotiation_after_stop=True)
    result = run_loopback(core, adapter, evcc, LoopbackCharger())
    assert result.ev_result.record.failure is None
    assert result.requests.count("ServiceDiscoveryReq") == 2
    assert result.requests.count("SessionStopReq") == 2


def test_service_renegotiation_refused_when_not_offered():
    adapter, core = make_secc("dc", config=Iso20Config(service_renegotiation_supported=False))
    result = run_loopback(core, adapter, make_evcc("dc", loops=1,
                                                   service_renegotiation_after_stop=True))
    assert result.codes[-1] == ("SessionStopReq", "FAILED_NoServiceRenegotiationSupported")


def test_dynamic_mode_follows_changing_ev_limits_and_evse_power_request(pump_for):
    pump = pump_for("dc", loops=6, control_mode=2, service="DC_BPT",
                    max_charge_power=[40_000, 40_000, 20_000, 20_000, 20_000, 20_000],
                    core_kwargs={"config": Iso20Config(bpt=BptLimits(
                        max_discharge_current=40, max_discharge_power=8_000))})
    pump.until("DC_ChargeLoop")
    powers = []
    for i in range(5):
        if i == 3:
            pump.core.set_power_request(-6_000)   # the grid wants power back
        voltage = pump.core.evse.present_voltage  # the set-point is computed at this voltage
        pump.step()
        powers.append(pump.core.setpoint.current * voltage)
    assert powers[0] == pytest.approx(40_000, rel=0.01)
    assert powers[2] == pytest.approx(20_000, rel=0.01)   # the car lowered its limit
    assert powers[3] == pytest.approx(-6_000, rel=0.01)   # discharge: negative current
    assert pump.core.setpoint.current < 0
    loop_res = pump.steps[-1].response
    mode = loop_res.bpt_dynamic_dc_cl_res_control_mode
    assert mode is not None and mode.evse_maximum_discharge_power.value < 0  # default sign


@pytest.mark.parametrize("quirks, car_negative, sign", [
    (frozenset(), True, -1), (frozenset({QUIRK_BPT_DISCHARGE_POSITIVE}), False, 1)])
def test_bpt_discharge_sign_is_a_quirk(pump_for, quirks, car_negative, sign):
    pump = pump_for("dc", loops=3, control_mode=2, service="DC_BPT",
                    discharge_limits_negative=car_negative, core_kwargs={"quirks": quirks})
    pump.until("ScheduleExchange")
    cpd = pump.steps[-1].response.bpt_dc_cpd_res_energy_transfer_mode
    assert cpd.evse_maximum_discharge_power.value * sign > 0
    assert cpd.evse_maximum_discharge_current.value * sign > 0
    # the car's limits are read by magnitude whatever their sign
    assert pump.core.ev.max_discharge_current == 100
    pump.run()
    assert pump.evcc.record.failure is None


def test_ac_bpt_dynamic_discharge_target_is_negative(pump_for):
    pump = pump_for("ac", loops=4, control_mode=2, service="AC_BPT")
    pump.until("AC_ChargeLoop")
    pump.core.set_power_request(-5_000)
    step = pump.step()
    assert step.response.bpt_dynamic_ac_cl_res_control_mode.evse_target_active_power.value < 0
    assert pump.charger.events[-1].data == {"watts": -5_000}


@pytest.mark.parametrize("energy", ["dc", "ac"])
def test_pause_switches_power_and_the_oscillator_off_before_the_car_sleeps(energy):
    """SessionStop(Pause): like ISO-2's pause, the safe state (contactors open, X1) comes
    before SessionStopRes and the SessionPaused event that puts the daemon to sleep: a -20 car
    must find the oscillator off, so that its BCB toggle can wake the charger."""
    from secc.v2g.evse import CloseConnection, EnterSafeState, PublishEvent, SetContactors

    adapter, core = make_secc(energy)
    charger = LoopbackCharger()
    run_loopback(core, adapter, make_evcc(
        energy, loops=1, misbehaviour=Misbehaviour(pause_instead_of_terminate=True)), charger)
    stop = charger.actions[max(i for i, a in enumerate(charger.actions)
                               if isinstance(a, SetContactors)):]
    kinds = [type(a) for a in stop]
    assert kinds[-3:] == [EnterSafeState, PublishEvent, CloseConnection], kinds
    assert stop[-2].kind == "SessionPaused" and not stop[0].closed
    terminate_adapter, terminate_core = make_secc(energy)
    terminated = LoopbackCharger()
    run_loopback(terminate_core, terminate_adapter, make_evcc(energy, loops=1), terminated)
    assert sum(isinstance(a, EnterSafeState) for a in terminated.actions) == 1   # as before
