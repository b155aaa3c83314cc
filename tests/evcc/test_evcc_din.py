"""The DIN 70121 EVCC against a scripted SECC, in virtual time."""

from __future__ import annotations

import exi_schemas as exi
import pytest
from exi_schemas.generated import din
from secc.v2gtp import PayloadType
from sim.evcc import (
    Battery,
    DinEvcc,
    EvccConfig,
    Finished,
    MessageTimeout,
    Misbehaviour,
    OngoingTimeout,
    ResponseCodeFailed,
    Send,
    SessionIdMismatch,
    UndecodableResponse,
    UnexpectedMessage,
)
from tests.evcc.harness import run_virtual
from tests.evcc.scripted_secc import SESSION_ID, Script, ScriptedSecc

NOMINAL = ["SessionSetup", "ServiceDiscovery", "ServicePaymentSelection",
           "ContractAuthentication", "ChargeParameterDiscovery", "CableCheck",
           "PreCharge", "PreCharge", "PowerDelivery",
           "CurrentDemand", "CurrentDemand", "CurrentDemand",
           "PowerDelivery", "WeldingDetection", "SessionStop"]


def ev(iterations: int = 3, misbehaviour: Misbehaviour | None = None, **config) -> DinEvcc:
    config.setdefault("seconds_per_iteration", 10.0)
    return DinEvcc(Battery(max_iterations=iterations), EvccConfig(**config), misbehaviour)


def test_nominal_din_session_sends_the_real_car_sequence_with_the_seccs_session_id():
    secc = ScriptedSecc("din")
    record = run_virtual(ev(), secc)
    assert record.ok and record.failure is None
    assert secc.log == NOMINAL == record.steps_sent
    assert secc.session_ids[0] == bytes(8)
    assert set(secc.session_ids[1:]) == {SESSION_ID}
    assert record.session_id == SESSION_ID
    assert record.loop_iterations == 3 and record.stop_reason == "max_iterations"
    assert record.energy_wh > 0 and record.soc_end > record.soc_start
    assert record.response_codes[0] == ("SessionSetup", "OK_NewSessionEstablished")


def test_power_delivery_start_then_stop_and_welding_detection_with_ev_not_ready():
    secc = ScriptedSecc("din")
    run_virtual(ev(), secc)
    deliveries = [r for s, r in zip(secc.log, secc.requests) if s == "PowerDelivery"]
    assert [d.ready_to_charge_state for d in deliveries] == [True, False]
    assert deliveries[1].dc_ev_power_delivery_parameter.charging_complete is True
    welding = secc.requests[secc.log.index("WeldingDetection")]
    assert welding.dc_ev_status.ev_ready is False


@pytest.mark.parametrize("step", ["ContractAuthentication", "ChargeParameterDiscovery",
                                  "CableCheck"])
def test_step_is_repeated_while_the_secc_answers_ongoing(step):
    secc = ScriptedSecc("din", script=Script(ongoing={step: 3}))
    record = run_virtual(ev(), secc)
    assert record.ok
    assert secc.log.count(step) == 4
    assert [e.evse_processing for e in record.exchanges if e.step == step] == \
        ["Ongoing"] * 3 + ["Finished"]


def test_precharge_repeats_until_the_present_voltage_is_within_tolerance():
    secc = ScriptedSecc("din", script=Script(precharge_steps=6))
    record = run_virtual(ev(precharge_tolerance=5.0), secc)
    assert record.ok
    targets = {r.ev_target_voltage.value for s, r in zip(secc.log, secc.requests)
               if s == "PreCharge"}
    assert secc.log.count("PreCharge") == 6 and len(targets) == 1


@pytest.mark.parametrize(("step", "limit", "script"), [
    ("CableCheck", 40.0, Script(ongoing={"CableCheck": 10**6})),
    ("ContractAuthentication", 60.0, Script(ongoing={"ContractAuthentication": 10**6})),
    ("ChargeParameterDiscovery", 60.0, Script(ongoing={"ChargeParameterDiscovery": 10**6})),
    ("PreCharge", 7.0, Script(precharge_steps=10**6)),
])
def test_ev_gives_up_when_a_step_exceeds_its_evcc_time_limit(step, limit, script):
    sent: list[Send] = []
    record = run_virtual(ev(repeat_interval=0.5), ScriptedSecc("din", script=script), sent=sent)
    assert isinstance(record.failure, OngoingTimeout)
    assert record.failure.step == step and record.failure.limit == limit
    repeats = [s.not_before for s in sent if s.step == step]
    assert repeats[-1] - repeats[0] <= limit < repeats[-1] - repeats[0] + 0.6


def test_failed_response_code_ends_the_session_with_a_typed_failure():
    secc = ScriptedSecc("din", script=Script(failed={
        "ChargeParameterDiscovery": "FAILED_WrongChargeParameter"}))
    record = run_virtual(ev(), secc)
    assert isinstance(record.failure, ResponseCodeFailed)
    assert record.failure.response_code == "FAILED_WrongChargeParameter"
    assert record.failure.step == "ChargeParameterDiscovery"
    assert secc.log[-1] == "ChargeParameterDiscovery"  # nothing sent after the failure


def test_response_to_another_request_is_an_unexpected_message():
    secc = ScriptedSecc("din", script=Script(answer_with={"CableCheck": "WeldingDetection"}))
    record = run_virtual(ev(), secc)
    assert isinstance(record.failure, UnexpectedMessage)
    assert (record.failure.expected, record.failure.got) == ("cable_check_res", "welding_detection_res")


def test_response_with_another_session_id_is_rejected():
    secc = ScriptedSecc("din", script=Script(wrong_session_id={"ServiceDiscovery"}))
    record = run_virtual(ev(), secc)
    assert isinstance(record.failure, SessionIdMismatch)
    assert record.failure.step == "ServiceDiscovery"


def _until(evcc: DinEvcc, secc: ScriptedSecc, step: str) -> Send:
    action = evcc.start(0.0)
    now = 0.0
    while action.step != step:
        now = action.not_before + 0.01
        action = evcc.receive(PayloadType.EXI, secc.respond(action.payload), now)
        assert isinstance(action, Send)
    return action


def test_current_demand_response_is_due_within_250_ms():
    evcc = ev()
    send = _until(evcc, ScriptedSecc("din"), "CurrentDemand")
    assert send.deadline == pytest.approx(send.not_before + 0.25)
    assert evcc.next_deadline() == send.deadline
    assert evcc.handle_timer(send.not_before + 0.249) is None
    done = evcc.handle_timer(send.not_before + 0.25)
    assert isinstance(done, Finished) and isinstance(done.failure, MessageTimeout)
    assert done.failure.timeout == 0.25 and done.failure.step == "CurrentDemand"


def test_other_responses_are_due_within_2_s():
    evcc = ev()
    send = evcc.start(100.0)
    assert send.deadline == 102.0
    assert evcc.handle_timer(101.99) is None
    assert isinstance(evcc.handle_timer(102.0).failure, MessageTimeout)
    assert evcc.next_deadline() is None  # finished: no more timers


def test_silent_secc_yields_a_message_timeout():
    record = run_virtual(ev(), ScriptedSecc("din", script=Script(silent={"PowerDelivery"})))
    assert isinstance(record.failure, MessageTimeout) and record.failure.step == "PowerDelivery"


@pytest.mark.parametrize(("payload_type", "payload"), [
    (PayloadType.EXI, b"\x80\xff\xff\xff"), (PayloadType.EXI, b""), (0x9000, b"\x80\x00")])
def test_undecodable_or_mistyped_response_is_a_typed_failure_never_an_exception(
        payload_type, payload):
    evcc = ev()
    evcc.start(0.0)
    done = evcc.receive(payload_type, payload, 0.1)
    assert isinstance(done, Finished) and isinstance(done.failure, UndecodableResponse)
    assert evcc.receive(PayloadType.EXI, b"\x80", 0.2) is done  # stays finished


def test_evse_stop_charging_notification_ends_the_loop():
    secc = ScriptedSecc("din", script=Script(stop_after_loops=2))
    record = run_virtual(ev(iterations=100), secc)
    assert record.ok and record.stop_reason == "evse_stop" and record.loop_iterations == 2
    assert secc.log[-3:] == ["PowerDelivery", "WeldingDetection", "SessionStop"]


def test_charging_ends_at_the_target_soc():
    battery = Battery(soc=78.0, target_soc=80.0, capacity_wh=10_000)
    evcc = DinEvcc(battery, EvccConfig(seconds_per_iteration=10.0))
    record = run_virtual(evcc, ScriptedSecc("din"))
    assert record.ok and record.stop_reason == "target_soc"
    assert 80.0 <= battery.soc < 82.0


# --- misbehaviour -------------------------------------------------------------------------------
def test_skip_sends_the_following_request_instead():
    secc = ScriptedSecc("din")
    run_virtual(ev(misbehaviour=Misbehaviour(skip=frozenset({"CableCheck"}))), secc)
    assert "CableCheck" not in secc.log
    assert secc.log[secc.log.index("ChargeParameterDiscovery") + 1] == "PreCharge"


def test_out_of_sequence_request_is_sent_and_a_sequence_error_reported():
    secc = ScriptedSecc("din", script=Script(failed={"PowerDelivery": "FAILED_SequenceError"}))
    record = run_virtual(ev(misbehaviour=Misbehaviour(
        send_instead={"ServiceDiscovery": "PowerDelivery"})), secc)
    assert secc.log == ["SessionSetup", "PowerDelivery"]
    assert record.failure.response_code == "FAILED_SequenceError"


def test_wrong_session_id_is_sent_once():
    secc = ScriptedSecc("din")
    run_virtual(ev(misbehaviour=Misbehaviour(wrong_session_id=frozenset({"CableCheck"}))), secc)
    wrong = secc.session_ids[secc.log.index("CableCheck")]
    assert wrong != SESSION_ID
    assert secc.session_ids.count(wrong) == 1


def test_stall_delays_the_request_and_its_deadline():
    evcc = ev(misbehaviour=Misbehaviour(stall={"ServiceDiscovery": 3.0}))
    secc = ScriptedSecc("din")
    first = evcc.start(0.0)
    second = evcc.receive(PayloadType.EXI, secc.respond(first.payload), 0.1)
    assert second.step == "ServiceDiscovery"
    assert second.not_before == pytest.approx(3.1) and second.deadline == pytest.approx(5.1)


def test_garbage_replaces_the_request_bytes_once():
    sent: list[Send] = []
    record = run_virtual(ev(misbehaviour=Misbehaviour(garbage=frozenset({"CableCheck"}))),
                         ScriptedSecc("din"), sent=sent)
    garbage = next(s for s in sent if s.step == "CableCheck")
    assert garbage.message is None
    with pytest.raises(exi.ExiDecodeError):
        exi.decode(garbage.payload, "din")
    assert isinstance(record.failure, MessageTimeout)  # this scripted SECC ignores it


def test_din_requests_carry_the_fields_real_cars_send():
    secc = ScriptedSecc("din")
    run_virtual(ev(), secc)
    cpd = secc.requests[secc.log.index("ChargeParameterDiscovery")]
    assert isinstance(cpd, din.ChargeParameterDiscoveryReqType)
    assert cpd.ev_requested_energy_transfer_type == "DC_extended"
    params = cpd.dc_ev_charge_parameter
    assert params.ev_maximum_voltage_limit.unit == "V" and params.full_soc == 80
    spsr = secc.requests[secc.log.index("ServicePaymentSelection")]
    assert spsr.selected_payment_option == "ExternalPayment"
    assert [s.service_id for s in spsr.selected_service_list.selected_service] == [1]


def test_skipping_session_stop_ends_the_session_without_it():
    secc = ScriptedSecc("din")
    record = run_virtual(ev(misbehaviour=Misbehaviour(skip=frozenset({"SessionStop"}))), secc)
    assert record.ok and secc.log[-1] == "WeldingDetection"


def test_skipping_the_self_looping_charge_loop_cannot_hang():
    secc = ScriptedSecc("din")
    record = run_virtual(ev(misbehaviour=Misbehaviour(skip=frozenset({"CurrentDemand"}))), secc)
    assert record.ok and secc.log.count("CurrentDemand") == 3


def test_a_stall_before_a_step_does_not_eat_into_its_own_time_limit():
    secc = ScriptedSecc("din")
    record = run_virtual(ev(misbehaviour=Misbehaviour(stall={"PreCharge": 10.0})), secc)
    assert record.ok  # PreCharge's 7 s run from its first request, sent after the stall
    first = next(e for e in record.exchanges if e.step == "PreCharge")
    before = record.exchanges[record.exchanges.index(first) - 1]
    assert first.sent_at - before.received_at == pytest.approx(10.0)
