"""Sequence errors, wrong SessionIDs, malformed EXI, every -20 failure response code we can
produce, and EVSE-side stops (emergency, isolation fault, remote stop)."""

from __future__ import annotations

import random

import pytest

import exi_schemas
from exi_schemas import ExiDecodeError
from exi_schemas.generated import iso20 as cm
from exi_schemas.generated import iso20_ac as ac
from hal.board import SafeStateReason
from secc.authorization import AuthorizationDecision, AuthorizationStatus
from secc.iso20 import UnsupportedPayloadType
from sim.iso20_loopback import LoopbackCharger, exchange, run_loopback
from secc.iso20.table import S
from secc.v2g.evse import EnterSafeState, Isolation, SetContactors, SetDcOutput, StopReason
from secc.v2g.failures import RESPONSE_CODES
from sim.evcc import Battery, Misbehaviour
from sim.evcc.failures import ConnectionLost, ResponseCodeFailed

from .conftest import make_evcc, make_secc

ISO20_CODES = next(set(v[3]) for v in vars(cm).values()
                   if isinstance(v, tuple) and len(v) == 6 and isinstance(v[3], tuple)
                   and "FAILED_SequenceError" in v[3])


def last_code(result):
    return result.codes[-1]


def run(energy="dc", charger=None, core_kwargs=None, **evcc_kwargs):
    adapter, core = make_secc(energy, **(core_kwargs or {}))
    result = run_loopback(core, adapter, make_evcc(energy, **evcc_kwargs),
                          charger or LoopbackCharger())
    return core, result


def test_every_iso20_failure_code_is_in_the_schema_enumeration():
    assert set(RESPONSE_CODES["iso20"].values()) <= ISO20_CODES


def test_skipped_step_is_a_sequence_error_and_ends_safe():
    core, result = run(misbehaviour=Misbehaviour(skip=frozenset({"DC_CableCheck"})))
    assert last_code(result) == ("DC_PreChargeReq", "FAILED_SequenceError")
    assert core.terminated
    assert isinstance(result.ev_result.record.failure, ResponseCodeFailed)


def test_charge_loop_before_power_delivery_is_a_sequence_error():
    core, result = run(misbehaviour=Misbehaviour(send_instead={"PowerDelivery": "DC_ChargeLoop"}))
    assert last_code(result) == ("DC_ChargeLoopReq", "FAILED_SequenceError")


def test_ac_message_in_a_dc_session_is_a_sequence_error(pump_for):
    pump = pump_for("dc")
    pump.until("ServiceDiscovery")
    step = pump.send(ac.AC_ChargeLoopReqType(
        header=None, meter_info_requested=False,
        scheduled_ac_cl_req_control_mode=ac.Scheduled_AC_CLReqControlModeType(
            ev_present_active_power=ac.RationalNumberType(exponent=0, value=0))),
        "AC_ChargeLoopReq")
    assert step.reply.response_name == "AC_ChargeLoopRes"
    assert step.response.response_code == "FAILED_SequenceError"
    assert step.response.evse_status.evse_notification == "Terminate"


def test_wrong_session_id_is_unknown_session():
    core, result = run(misbehaviour=Misbehaviour(wrong_session_id=frozenset({"ServiceDiscovery"})))
    assert last_code(result) == ("ServiceDiscoveryReq", "FAILED_UnknownSession")
    assert core.terminated


def test_garbage_exi_closes_the_connection_in_a_safe_state():
    charger = LoopbackCharger()
    core, result = run(charger=charger, loops=50,
                       misbehaviour=Misbehaviour(garbage=frozenset({"PowerDelivery"})))
    assert result.exchanges[-1].request == "<undecodable>"
    assert core.terminated and charger.safe_state_reasons
    assert isinstance(result.ev_result.record.failure, ConnectionLost)


def test_adapter_raises_typed_errors_for_bad_payloads():
    adapter, core = make_secc("dc")
    good = exi_schemas.encode(cm.SessionSetupReqType(
        header=cm.MessageHeaderType(session_id=bytes(8), time_stamp=1), evccid="ABC"))
    assert adapter.decode(0x8002, good).name == "SessionSetupReq"
    with pytest.raises(ExiDecodeError):
        adapter.decode(0x8002, good[:5])
    with pytest.raises(ExiDecodeError):
        adapter.decode(0x8004, good)  # right bytes, wrong schema for the payload type
    with pytest.raises(UnsupportedPayloadType):
        adapter.decode(0x8001, good)
    response = exi_schemas.encode(cm.SessionStopResType(
        header=cm.MessageHeaderType(session_id=bytes(8), time_stamp=1), response_code="OK"))
    with pytest.raises(ValueError, match="not a request"):
        adapter.decode(0x8002, response)


FIXED_ID = bytes.fromhex("0102030405060708")


def _replay(mode, payloads, upto):
    """A fresh core fed the first ``upto`` recorded requests (same times, fixed SessionID)."""
    adapter, core = make_secc(mode)
    core.new_session_id = lambda: FIXED_ID
    charger = LoopbackCharger()
    now = 0.0
    for payload_type, payload, cp_state in payloads[:upto]:
        charger.tick(core, now)
        core.evse.cp_state = cp_state
        request = adapter.decode(payload_type, payload)
        charger.apply(core, core.receive(request.name, request.body, now,
                                         request.session_id).actions, now)
        now += 0.05
    return adapter, core, now


@pytest.mark.parametrize("mode, service, control_mode", [("dc", "DC_BPT", 1), ("dc", "DC", 2),
                                                         ("ac", "AC_BPT", 2)])
def test_mutated_requests_in_their_own_state_never_crash_the_core(mode, service, control_mode):
    """Bit flips in each request, delivered in the state where that request is expected: the
    adapter raises a typed error or the core answers (FAILED or not) without an exception."""
    _, core = make_secc(mode)
    core.new_session_id = lambda: FIXED_ID
    evcc = make_evcc(mode, loops=3, service=service, control_mode=control_mode)
    payloads = []
    adapter, charger, now = make_secc(mode)[0], LoopbackCharger(), 0.0
    out = evcc.start(now)
    while hasattr(out, "payload"):
        payloads.append((out.payload_type, out.payload, evcc.cp_state))
        out, now = exchange(core, adapter, charger, evcc, out, now)
    assert out.record.failure is None
    rng = random.Random(f"{mode}{service}{control_mode}")
    decoded = 0
    for _ in range(300):
        index = rng.randrange(len(payloads))
        adapter, core, now = _replay(mode, payloads, index)
        payload_type, payload, cp_state = payloads[index]
        data = bytearray(payload)
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(1, len(data))] ^= 1 << rng.randrange(8)
        try:
            request = adapter.decode(payload_type, bytes(data))
        except (ExiDecodeError, ValueError):
            continue
        decoded += 1
        reply = core.receive(request.name, request.body, now, request.session_id)
        if reply.response is not None:
            adapter.encode(reply.response_name, reply.response, core.session_id)
        if reply.close:
            assert any(isinstance(a, EnterSafeState) for a in reply.actions) or \
                core.terminated
    assert decoded > 50


@pytest.mark.parametrize("name", ["SessionSetupReq", "AuthorizationSetupReq",
                                  "AuthorizationReq", "ServiceDiscoveryReq", "ServiceDetailReq",
                                  "ServiceSelectionReq", "ScheduleExchangeReq",
                                  "PowerDeliveryReq", "SessionStopReq",
                                  "MeteringConfirmationReq", "VehicleCheckInReq",
                                  "VehicleCheckOutReq", "DC_ChargeParameterDiscoveryReq",
                                  "DC_CableCheckReq", "DC_PreChargeReq", "DC_ChargeLoopReq",
                                  "DC_WeldingDetectionReq", "AC_ChargeParameterDiscoveryReq",
                                  "AC_ChargeLoopReq"])
def test_failed_response_of_every_request_encodes(name):
    adapter, core = make_secc("dc")
    res_name, res = core.failed_response(name, "FAILED_SequenceError")
    assert res_name == name[:-3] + "Res"
    payload_type, data = adapter.encode(res_name, res, bytes(8))
    schema = {0x8002: "iso20", 0x8003: "iso20-ac", 0x8004: "iso20-dc"}[payload_type]
    assert exi_schemas.decode_element(data, schema)[0] == res_name


def test_unknown_service_detail_is_service_id_invalid(pump_for):
    pump = pump_for("dc")
    pump.until("ServiceDetail")
    step = pump.send(cm.ServiceDetailReqType(header=None, service_id=3), "ServiceDetailReq")
    assert step.response.response_code == "FAILED_ServiceIDInvalid"


def test_no_common_service_is_no_energy_transfer_service_selected(pump_for):
    pump = pump_for("dc")
    pump.until("ServiceDiscovery")
    step = pump.send(cm.ServiceDiscoveryReqType(
        header=None, supported_service_i_ds=cm.ServiceIDListType(service_id=[1, 5])),
        "ServiceDiscoveryReq")
    assert step.response.response_code == "FAILED_NoEnergyTransferServiceSelected"


@pytest.mark.parametrize("override", [{"service_id_override": 5},
                                      {"parameter_set_override": 9}])
def test_selection_of_something_not_offered_is_service_selection_invalid(override):
    core, result = run(**override)
    assert last_code(result) == ("ServiceSelectionReq", "FAILED_ServiceSelectionInvalid")


def test_parameters_not_matching_the_selected_service_are_wrong_charge_parameter():
    core, result = run(service_id_override=6)   # selects DC_BPT, sends plain DC parameters
    assert last_code(result) == ("DC_ChargeParameterDiscoveryReq", "FAILED_WrongChargeParameter")


def test_car_voltage_outside_the_evse_range_is_wrong_charge_parameter():
    core, result = run(battery=Battery(max_voltage=100, empty_voltage=60, full_voltage=95))
    assert last_code(result) == ("DC_ChargeParameterDiscoveryReq", "FAILED_WrongChargeParameter")


def test_wrong_control_mode_in_the_loop_is_wrong_charge_parameter():
    core, result = run(wrong_control_mode_in_loop=True)
    assert last_code(result) == ("DC_ChargeLoopReq", "FAILED_WrongChargeParameter")


def test_unoffered_schedule_tuple_is_schedule_selection_invalid(pump_for):
    pump = pump_for("dc")
    pump.until("DC_CableCheck")   # schedule agreed; the car now picks a tuple never offered
    pump.evcc.schedule_tuple_id = 7
    pump.until("PowerDelivery")
    assert pump.step().response.response_code == "FAILED_ScheduleSelectionInvalid"


def test_profile_above_the_schedule_is_ev_power_profile_invalid(pump_for):
    pump = pump_for("dc")
    pump.until("DC_CableCheck")
    pump.evcc.battery.max_power = pump.evcc.schedule_power = 1_000_000
    pump.until("PowerDelivery")
    assert pump.step().response.response_code == "FAILED_EVPowerProfileInvalid"


def test_power_delivery_start_during_remote_stop_is_not_applied(pump_for):
    pump = pump_for("dc")
    pump.until("PowerDelivery")
    pump.core.evse_stop(StopReason.REMOTE_STOP)
    step = pump.step()
    assert step.response.response_code == "FAILED_PowerDeliveryNotApplied"
    assert step.response.evse_status.evse_notification == "Terminate"


class StuckContactors(LoopbackCharger):
    def apply(self, core, actions, now):
        super().apply(core, [a for a in actions if a != SetContactors(True)], now)


def test_contactors_not_closed_at_power_delivery_is_contactor_error():
    core, result = run(charger=StuckContactors())
    assert last_code(result) == ("PowerDeliveryReq", "FAILED_ContactorError")


def test_isolation_fault_in_cable_check_fails_and_opens_contactors():
    charger = LoopbackCharger(isolation_result=Isolation.FAULT)
    core, result = run(charger=charger)
    assert last_code(result) == ("DC_CableCheckReq", "FAILED")
    assert not core.evse.contactors_closed and charger.safe_state_reasons


def test_rejected_authorization_is_a_warning_and_the_car_stops():
    charger = LoopbackCharger(decision=AuthorizationDecision(AuthorizationStatus.INVALID, "x"))
    core, result = run(charger=charger)
    assert ("AuthorizationReq", "WARNING_EIMAuthorizationFailure") in result.codes
    assert last_code(result) == ("SessionStopReq", "OK")
    assert result.ev_result.record.stop_reason == "WARNING_EIMAuthorizationFailure"
    assert "AuthorizationRejected" in charger.event_kinds()


def test_pnc_when_only_eim_is_offered_is_authorization_selection_invalid(pump_for):
    pump = pump_for("dc")
    pump.until("Authorization")
    step = pump.send(cm.AuthorizationReqType(
        header=None, selected_authorization_service="PnC",
        pn_c_a_req_authorization_mode=cm.PnC_AReqAuthorizationModeType(
            id="A1", gen_challenge=bytes(16),
            contract_certificate_chain=cm.ContractCertificateChainType(
                certificate=b"\x30\x00", sub_certificates=cm.SubCertificatesType(
                    certificate=[b"\x30\x00"])))), "AuthorizationReq")
    assert step.response.response_code == "WARNING_AuthorizationSelectionInvalid"
    assert pump.core.state == S.WAIT_AUTHORIZATION   # the car may retry with EIM


def test_session_stop_right_after_session_setup_is_accepted():
    core, result = run(stop_after_setup=True)
    assert result.codes == [("SessionSetupReq", "OK_NewSessionEstablished"),
                            ("SessionStopReq", "OK")]
    assert result.ev_result.record.failure is None and core.terminated


@pytest.mark.parametrize("reason", [StopReason.EMERGENCY, StopReason.ISOLATION_FAULT,
                                    StopReason.MALFUNCTION])
def test_dangerous_evse_stop_makes_power_safe_at_once_and_fails_the_next_request(
        pump_for, reason):
    pump = pump_for("dc", loops=50)
    pump.until("DC_ChargeLoop")
    pump.step()
    actions = pump.core.evse_stop(reason)
    assert any(isinstance(a, EnterSafeState) for a in actions)
    pump.charger.apply(pump.core, actions, pump.now)
    step = pump.step()
    assert step.response.response_code == "FAILED"
    assert step.response.evse_status.evse_notification == "Terminate"
    assert pump.core.terminated and step.reply.close
    assert pump.core.evse.present_current == 0 and not pump.core.evse.contactors_closed


def test_isolation_fault_seen_in_the_snapshot_during_the_loop_fails(pump_for):
    pump = pump_for("dc", loops=50)
    pump.until("DC_ChargeLoop")
    pump.step()
    pump.core.evse.isolation = Isolation.FAULT
    assert pump.step().response.response_code == "FAILED"
    assert pump.core.terminated


def test_remote_stop_is_graceful_the_car_stops_with_welding_detection(pump_for):
    pump = pump_for("dc", loops=50)
    pump.until("DC_ChargeLoop")
    pump.step()
    pump.core.evse_stop(StopReason.REMOTE_STOP)
    step = pump.step()
    assert step.response.response_code == "OK"
    assert step.response.evse_status.evse_notification == "Terminate"
    assert pump.charger.actions[-1] == SetDcOutput(pump.core.setpoint.voltage, 0.0)
    pump.run()
    record = pump.evcc.record
    assert record.failure is None and record.stop_reason == "evse_stop"
    assert [s.request for s in pump.steps][-3:] == ["PowerDeliveryReq", "DC_WeldingDetectionReq",
                                                    "SessionStopReq"]
    assert pump.core.terminated and not pump.core.evse.contactors_closed


def test_remote_stop_before_charging_ends_the_session(pump_for):
    pump = pump_for("dc")
    pump.until("ServiceDetail")
    pump.core.evse_stop(StopReason.REMOTE_STOP)
    assert pump.step().response.response_code == "FAILED"
    assert pump.core.terminated


def test_session_stop_anytime_quirk_still_ends_the_session(pump_for):
    pump = pump_for("dc", core_kwargs={"quirks": frozenset({"session_stop_anytime"})})
    pump.until("ServiceDiscovery")
    assert pump.core.state == S.WAIT_SERVICE_DISCOVERY   # no Pause in this row of the table
    step = pump.send(cm.SessionStopReqType(header=None, charging_session="Pause"),
                     "SessionStopReq")
    assert step.response.response_code == "OK" and step.reply.close and pump.core.terminated
    # service renegotiation is only possible where the table says so
    pump2 = pump_for("dc", core_kwargs={"quirks": frozenset({"session_stop_anytime"})})
    pump2.until("ServiceDiscovery")
    step = pump2.send(cm.SessionStopReqType(header=None, charging_session="ServiceRenegotiation"),
                      "SessionStopReq")
    assert step.response.response_code == "FAILED_SequenceError"


def test_emergency_seen_only_in_the_snapshot_fails_with_its_safe_state_cause(pump_for):
    pump = pump_for("dc", loops=50)
    pump.until("DC_ChargeLoop")
    pump.step()
    pump.core.evse.stop_reason = StopReason.EMERGENCY   # the daemon's refresh saw the e-stop
    step = pump.step()
    assert step.response.response_code == "FAILED"
    safe = [a for a in step.reply.actions if isinstance(a, EnterSafeState)]
    assert safe and safe[0].cause is SafeStateReason.EMERGENCY_STOP
