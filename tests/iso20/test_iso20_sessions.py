"""Full -20 sessions per service and control mode: the SECC core and the -20 EVCC exchange
real EXI bytes (encode -> bytes -> decode both ways) in virtual time."""

from __future__ import annotations

import pytest

from secc.iso20 import BptLimits, Iso20Config
from sim.iso20_loopback import LoopbackCharger, run_loopback
from secc.iso20.table import S
from secc.v2g.core import TERMINATED
from secc.v2g.evse import EnterSafeState, SetContactors, SetDcOutput, StartIsolationCheck

from .conftest import make_evcc, make_secc

DC_SEQUENCE = ["SessionSetupReq", "AuthorizationSetupReq", "AuthorizationReq",
               "ServiceDiscoveryReq", "ServiceDetailReq", "ServiceSelectionReq",
               "DC_ChargeParameterDiscoveryReq", "ScheduleExchangeReq", "DC_CableCheckReq",
               "DC_PreChargeReq", "PowerDeliveryReq", "DC_ChargeLoopReq", "PowerDeliveryReq",
               "DC_WeldingDetectionReq", "SessionStopReq"]
AC_SEQUENCE = ["SessionSetupReq", "AuthorizationSetupReq", "AuthorizationReq",
               "ServiceDiscoveryReq", "ServiceDetailReq", "ServiceSelectionReq",
               "AC_ChargeParameterDiscoveryReq", "ScheduleExchangeReq", "PowerDeliveryReq",
               "AC_ChargeLoopReq", "PowerDeliveryReq", "SessionStopReq"]


def dedup(names):
    out = []
    for n in names:
        if not out or out[-1] != n:
            out.append(n)
    return out


@pytest.mark.parametrize("service", ["DC", "DC_BPT"])
@pytest.mark.parametrize("control_mode", [1, 2])
def test_dc_session_runs_every_step_in_order_and_ends_safe(service, control_mode):
    adapter, core = make_secc("dc")
    charger = LoopbackCharger()
    evcc = make_evcc("dc", loops=6, service=service, control_mode=control_mode)
    result = run_loopback(core, adapter, evcc, charger)
    assert result.ev_result.record.failure is None
    assert dedup(result.requests) == DC_SEQUENCE
    assert all(code.startswith("OK") for _, code in result.codes)
    assert core.state == TERMINATED
    assert result.ev_result.record.loop_iterations == 6
    # Ongoing repeats happened (authorization and isolation take time) and ended
    assert result.requests.count("AuthorizationReq") > 1
    assert result.requests.count("DC_CableCheckReq") > 1
    kinds = [type(a) for a in charger.actions]
    assert StartIsolationCheck in kinds and SetDcOutput in kinds
    assert charger.events[0].kind == "SessionStarted"
    assert [e.kind for e in charger.events][-2:] == ["ChargingStopped", "SessionStopped"]
    assert isinstance(charger.actions[-3], EnterSafeState) or any(
        isinstance(a, EnterSafeState) for a in charger.actions[-4:])
    assert core.evse.contactors_closed is False and core.evse.present_current == 0
    assert evcc.battery.energy_delivered_wh > 0


@pytest.mark.parametrize("service", ["AC", "AC_BPT"])
@pytest.mark.parametrize("control_mode", [1, 2])
def test_ac_session_runs_every_step_in_order(service, control_mode):
    adapter, core = make_secc("ac")
    charger = LoopbackCharger()
    result = run_loopback(core, adapter, make_evcc("ac", loops=4, service=service,
                                                   control_mode=control_mode), charger)
    assert result.ev_result.record.failure is None
    assert dedup(result.requests) == AC_SEQUENCE
    assert SetContactors(True) in charger.actions and SetContactors(False) in charger.actions
    targets = [e.data["watts"] for e in charger.events if e.kind == "AcPowerTarget"]
    assert targets and targets[0] == pytest.approx(3 * 230 * 32)


def test_payload_types_follow_the_message_schema():
    adapter, core = make_secc("dc")
    pump_types = []
    evcc = make_evcc("dc", loops=2)
    out = evcc.start(0.0)
    now = 0.0
    charger = LoopbackCharger()
    while hasattr(out, "payload"):
        request = adapter.decode(out.payload_type, out.payload)
        pump_types.append((request.name, out.payload_type))
        charger.tick(core, now)
        core.evse.cp_state = evcc.cp_state
        reply = core.receive(request.name, request.body, now, request.session_id)
        charger.apply(core, reply.actions, now)
        pt, data = adapter.encode(reply.response_name, reply.response, core.session_id)
        assert pt == out.payload_type  # a response travels like its request
        now += 0.05
        out = evcc.receive(pt, data, now)
    types = dict(pump_types)
    assert types["SessionSetupReq"] == 0x8002 and types["PowerDeliveryReq"] == 0x8002
    assert types["DC_ChargeLoopReq"] == 0x8004 and types["DC_CableCheckReq"] == 0x8004


def test_dc_scheduled_loop_follows_the_cars_changing_target_current():
    adapter, core = make_secc("dc")
    charger = LoopbackCharger()
    evcc = make_evcc("dc", loops=4, target_current=[50, 120, 80, 10])
    result = run_loopback(core, adapter, evcc, charger)
    assert result.ev_result.record.failure is None
    loop_currents = [a.current for a in charger.actions
                     if isinstance(a, SetDcOutput) and a.enabled and a.current > 2]
    assert loop_currents == [50, 120, 80, 10]


def test_dc_bpt_scheduled_negative_target_discharges_within_limits():
    adapter, core = make_secc("dc", config=Iso20Config(bpt=BptLimits(max_discharge_current=30,
                                                                      max_discharge_power=11_000)))
    charger = LoopbackCharger()
    evcc = make_evcc("dc", loops=3, service="DC_BPT", target_current=[-20, -500, 30],
                     max_discharge_current=100)
    result = run_loopback(core, adapter, evcc, charger)
    assert result.ev_result.record.failure is None
    currents = [a.current for a in charger.actions if isinstance(a, SetDcOutput) and a.enabled]
    # -20 A as asked; -500 A clamped to 30 A and then to 11 kW at the car's 450 V; +30 A
    assert currents[-3:] == [-20, pytest.approx(-11_000 / 450), 30]


def test_session_and_timestamps_in_every_response_header():
    adapter, core = make_secc("dc")
    evcc = make_evcc("dc", loops=1)
    result = run_loopback(core, adapter, evcc, LoopbackCharger())
    record = result.ev_result.record
    assert record.failure is None and record.session_id == core.session_id
    assert record.evse_id == core.evse_id


def test_state_after_schedule_exchange_differs_for_dc_and_ac():
    assert make_secc("dc")[1].TRANSITIONS[S.WAIT_SCHEDULE_EXCHANGE]["ScheduleExchangeReq"] == \
        S.WAIT_CABLE_CHECK
    assert make_secc("ac")[1].TRANSITIONS[S.WAIT_SCHEDULE_EXCHANGE]["ScheduleExchangeReq"] == \
        S.WAIT_POWER_DELIVERY
