"""The ISO 15118-2 EVCC (AC and DC, EIM) against a scripted SECC, in virtual time."""

from __future__ import annotations

import pytest
from exi_schemas.generated import iso2
from secc.v2gtp import PayloadType
from sim.evcc import (
    Battery,
    EvccConfig,
    InvalidResponse,
    Iso2Evcc,
    MessageTimeout,
    Misbehaviour,
    OngoingTimeout,
    ResponseCodeFailed,
    Send,
)
from tests.evcc.harness import run_virtual
from tests.evcc.scripted_secc import SESSION_ID, Script, ScriptedSecc

SETUP = ["SessionSetup", "ServiceDiscovery", "PaymentServiceSelection", "Authorization",
         "ChargeParameterDiscovery"]


def ev(mode: str = "dc", iterations: int = 3, misbehaviour: Misbehaviour | None = None,
       battery: Battery | None = None, **config) -> Iso2Evcc:
    config.setdefault("seconds_per_iteration", 10.0)
    return Iso2Evcc(battery or Battery(max_iterations=iterations),
                    EvccConfig(mode=mode, **config), misbehaviour)


def requests_of(secc: ScriptedSecc, step: str) -> list:
    return [r for s, r in zip(secc.log, secc.requests) if s == step]


def test_nominal_dc_session():
    secc = ScriptedSecc("iso2", "dc")
    record = run_virtual(ev("dc"), secc)
    assert record.ok
    assert secc.log == SETUP + ["CableCheck", "PreCharge", "PreCharge", "PowerDelivery",
                                "CurrentDemand", "CurrentDemand", "CurrentDemand",
                                "PowerDelivery", "WeldingDetection", "SessionStop"]
    assert [d.charge_progress for d in requests_of(secc, "PowerDelivery")] == ["Start", "Stop"]
    assert requests_of(secc, "SessionStop")[0].charging_session == "Terminate"
    assert record.evse_id == "DE*PNX*E12345*1" and record.session_id == SESSION_ID
    cpd = requests_of(secc, "ChargeParameterDiscovery")[0]
    assert cpd.requested_energy_transfer_mode == "DC_extended"
    assert cpd.dc_ev_charge_parameter is not None and cpd.ac_ev_charge_parameter is None


def test_nominal_ac_session_uses_charging_status_and_no_dc_steps():
    secc = ScriptedSecc("iso2", "ac")
    record = run_virtual(ev("ac"), secc)
    assert record.ok
    assert secc.log == SETUP + ["PowerDelivery", "ChargingStatus", "ChargingStatus",
                                "ChargingStatus", "PowerDelivery", "SessionStop"]
    cpd = requests_of(secc, "ChargeParameterDiscovery")[0]
    assert cpd.requested_energy_transfer_mode == "AC_three_phase_core"
    assert cpd.ac_ev_charge_parameter.ev_max_current.unit == "A"
    # the scripted EVSE allows 16 A: 16 A x 230 V x 3 phases for 3 x 10 s
    assert record.energy_wh == pytest.approx(16 * 230 * 3 * 30 / 3600, rel=1e-6)


def test_ev_chooses_the_first_schedule_and_sends_a_charging_profile_within_it():
    secc = ScriptedSecc("iso2", "dc")
    run_virtual(ev("dc", battery=Battery(max_power=30_000, max_iterations=2)), secc)
    start, stop = requests_of(secc, "PowerDelivery")
    assert start.sa_schedule_tuple_id == stop.sa_schedule_tuple_id == 7
    entries = start.charging_profile.profile_entry
    assert [e.charging_profile_entry_start for e in entries] == [0, 3600]
    powers = [e.charging_profile_entry_max_power.value * 10 ** e.charging_profile_entry_max_power
              .multiplier for e in entries]
    assert powers == [30_000, 11_000]  # min(EVSE PMax 50 kW / 11 kW, EV 30 kW)
    assert stop.charging_profile is None


@pytest.mark.parametrize("step", ["Authorization", "ChargeParameterDiscovery"])
def test_authorization_and_charge_parameter_discovery_repeat_while_ongoing(step):
    secc = ScriptedSecc("iso2", "ac", Script(ongoing={step: 2}))
    record = run_virtual(ev("ac"), secc)
    assert record.ok and secc.log.count(step) == 3


def test_authorization_ongoing_longer_than_60_s_fails():
    secc = ScriptedSecc("iso2", "ac", Script(ongoing={"Authorization": 10**6}))
    record = run_virtual(ev("ac", repeat_interval=1.0), secc)
    assert isinstance(record.failure, OngoingTimeout)
    assert record.failure.step == "Authorization" and record.failure.limit == 60.0
    assert 55 <= secc.log.count("Authorization") <= 61


@pytest.mark.parametrize("mode", ["dc", "ac"])
def test_metering_receipt_is_sent_when_the_secc_requires_one(mode):
    secc = ScriptedSecc("iso2", mode, Script(receipt_required_at={2}))
    record = run_virtual(ev(mode), secc)
    assert record.ok and record.metering_receipts == 1
    loop = "CurrentDemand" if mode == "dc" else "ChargingStatus"
    i = secc.log.index("MeteringReceipt")
    assert secc.log[i - 1] == loop and secc.log[i + 1] == loop
    receipt = secc.requests[i]
    assert receipt.session_id == SESSION_ID and receipt.meter_info.meter_id == "METER1"
    assert receipt.sa_schedule_tuple_id == 7


def test_ev_requested_renegotiation_goes_through_charge_parameter_discovery_once():
    secc = ScriptedSecc("iso2", "dc")
    record = run_virtual(ev("dc", iterations=4, misbehaviour=Misbehaviour(renegotiate_after=2)),
                         secc)
    assert record.ok and record.renegotiations == 1
    progress = [d.charge_progress for d in requests_of(secc, "PowerDelivery")]
    assert progress == ["Start", "Renegotiate", "Start", "Stop"]
    assert secc.log.count("ChargeParameterDiscovery") == 2
    assert secc.log.count("CableCheck") == 1 and secc.log.count("PreCharge") == 2  # not redone
    i = secc.log.index("ChargeParameterDiscovery", secc.log.index("CurrentDemand"))
    assert secc.log[i - 1:i + 2] == ["PowerDelivery", "ChargeParameterDiscovery", "PowerDelivery"]


def test_secc_renegotiation_notification_is_followed():
    secc = ScriptedSecc("iso2", "ac", Script(renegotiate_after_loops=1))
    record = run_virtual(ev("ac"), secc)
    assert record.ok and record.renegotiations == 1
    assert [d.charge_progress for d in requests_of(secc, "PowerDelivery")] == \
        ["Start", "Renegotiate", "Start", "Stop"]


def test_pause_ends_with_session_stop_pause_and_resume_sends_the_old_session_id():
    secc = ScriptedSecc("iso2", "ac")
    paused = run_virtual(ev("ac", misbehaviour=Misbehaviour(pause_instead_of_terminate=True)),
                         secc)
    assert paused.ok and paused.paused
    assert requests_of(secc, "SessionStop")[0].charging_session == "Pause"

    again = ScriptedSecc("iso2", "ac", Script(old_session_id=paused.session_id))
    resumed = run_virtual(ev("ac", resume_session_id=paused.session_id), again)
    assert resumed.ok and resumed.resumed and not resumed.paused
    assert again.session_ids[0] == paused.session_id
    assert resumed.response_codes[0] == ("SessionSetup", "OK_OldSessionJoined")


def test_evse_stop_in_ac_ends_with_power_delivery_stop_and_session_stop():
    secc = ScriptedSecc("iso2", "ac", Script(stop_after_loops=2))
    record = run_virtual(ev("ac", iterations=50), secc)
    assert record.ok and record.stop_reason == "evse_stop"
    assert secc.log[-2:] == ["PowerDelivery", "SessionStop"]


def test_no_schedule_in_charge_parameter_discovery_is_an_invalid_response():
    secc = ScriptedSecc("iso2", "dc")
    original = secc.res_ChargeParameterDiscovery

    def without_schedule(req, n):
        res = original(req, n)
        res.sa_schedule_list = None
        return res

    secc.res_ChargeParameterDiscovery = without_schedule
    record = run_virtual(ev("dc"), secc)
    assert isinstance(record.failure, InvalidResponse)
    assert record.failure.step == "ChargeParameterDiscovery"


def test_evse_without_the_cars_charging_kind_is_an_invalid_response():
    secc = ScriptedSecc("iso2", "dc", Script(energy_transfer="AC_single_phase_core"))
    record = run_virtual(ev("dc"), secc)
    assert isinstance(record.failure, InvalidResponse) and record.failure.step == "ServiceDiscovery"


def test_ev_takes_another_dc_mode_when_dc_extended_is_not_offered():
    secc = ScriptedSecc("iso2", "dc", Script(energy_transfer="DC_core"))
    record = run_virtual(ev("dc"), secc)
    assert record.ok
    assert requests_of(secc, "ChargeParameterDiscovery")[0].requested_energy_transfer_mode == \
        "DC_core"


def test_failed_authorization_is_reported():
    secc = ScriptedSecc("iso2", "ac", Script(failed={"Authorization": "FAILED"}))
    record = run_virtual(ev("ac"), secc)
    assert isinstance(record.failure, ResponseCodeFailed) and record.failure.step == "Authorization"


@pytest.mark.parametrize(("mode", "step", "timeout"), [
    ("dc", "CurrentDemand", 0.25), ("ac", "ChargingStatus", 2.0), ("ac", "PowerDelivery", 5.0),
    ("dc", "CableCheck", 2.0)])
def test_message_timeouts_follow_iso_15118_2_table_109(mode, step, timeout):
    evcc = ev(mode)
    secc = ScriptedSecc("iso2", mode)
    action = evcc.start(0.0)
    while action.step != step:
        action = evcc.receive(PayloadType.EXI, secc.respond(action.payload),
                              action.not_before + 0.01)
        assert isinstance(action, Send)
    assert action.deadline - action.not_before == pytest.approx(timeout)
    assert evcc.handle_timer(action.deadline - 0.001) is None
    done = evcc.handle_timer(action.deadline)
    assert isinstance(done.failure, MessageTimeout) and done.failure.timeout == timeout


def test_message_timeout_can_be_overridden_per_step():
    evcc = ev("dc", message_timeouts={"SessionSetup": 0.5})
    assert evcc.start(1.0).deadline == 1.5


def test_ac_requests_use_the_iso2_classes():
    secc = ScriptedSecc("iso2", "ac")
    run_virtual(ev("ac"), secc)
    assert all(isinstance(r, iso2.ChargingStatusReqType)
               for r in requests_of(secc, "ChargingStatus"))
    assert requests_of(secc, "SessionSetup")[0].evccid == bytes.fromhex("020000000001")
