"""DIN 70121 SECC session: the full DC flow and its failure paths, through the real codec."""

from __future__ import annotations

from exi_schemas.generated import din as M
from secc.authorization import AuthorizationDecision, AuthorizationStatus
from secc.din import DinSession
from secc.v2g.core import TERMINATED
from secc.v2g.evse import (
    EnterSafeState,
    Isolation,
    RequestAuthorization,
    SetContactors,
    SetDcOutput,
    StartIsolationCheck,
    StopReason,
)
from tests.din.conftest import Driver, ev_status, pv
from tests.v2g_harness import finish_insulation_test

ACCEPT = AuthorizationDecision(AuthorizationStatus.ACCEPTED)


def setup_to_charge_parameters(d: Driver, now=0.0):
    _, res = d.send("SessionSetupReq", M.SessionSetupReqType(evccid=bytes.fromhex("0A0B0C0D0E0F")),
                    now, session_id=bytes(8))
    assert res.response_code == "OK_NewSessionEstablished"
    _, res = d.send("ServiceDiscoveryReq", M.ServiceDiscoveryReqType(service_category="EVCharging"),
                    now)
    assert res.charge_service.energy_transfer_type == "DC_extended"
    assert res.payment_options.payment_option == ["ExternalPayment"]
    _, res = d.send("ServicePaymentSelectionReq", M.ServicePaymentSelectionReqType(
        selected_payment_option="ExternalPayment",
        selected_service_list=M.SelectedServiceListType(
            selected_service=[M.SelectedServiceType(service_id=1)])), now)
    assert res.response_code == "OK"


def authorize(d: Driver, now=0.0):
    reply, res = d.send("ContractAuthenticationReq", M.ContractAuthenticationReqType(), now)
    assert res.evse_processing == "Ongoing"
    requests = [a for a in reply.actions if isinstance(a, RequestAuthorization)]
    assert requests and requests[0].request.id_token == "0A0B0C0D0E0F"
    d.session.authorization_decided(ACCEPT)
    _, res = d.send("ContractAuthenticationReq", M.ContractAuthenticationReqType(), now + 1)
    assert res.evse_processing == "Finished" and res.response_code == "OK"


def charge_parameters(d: Driver, now=0.0):
    _, res = d.send("ChargeParameterDiscoveryReq", M.ChargeParameterDiscoveryReqType(
        ev_requested_energy_transfer_type="DC_extended",
        dc_ev_charge_parameter=M.DC_EVChargeParameterType(
            dc_ev_status=ev_status(), ev_maximum_current_limit=pv(125, "A"),
            ev_maximum_voltage_limit=pv(450, "V"))), now)
    assert res.response_code == "OK" and res.evse_processing == "Finished"
    assert res.sa_schedule_list.sa_schedule_tuple[0].sa_schedule_tuple_id == 1
    return res


def to_current_demand(d: Driver) -> None:
    """Setup, authorization, parameters, cable check and PowerDelivery(start)."""
    d.session.evse.cp_state = "C"       # the DC car closed S2 before the cable check
    setup_to_charge_parameters(d)
    authorize(d)
    charge_parameters(d)
    d.send("CableCheckReq", M.CableCheckReqType(dc_ev_status=ev_status()), 2.0)
    finish_insulation_test(d.session)   # the board reports this cable check's test
    d.send("CableCheckReq", M.CableCheckReqType(dc_ev_status=ev_status()), 2.1)
    d.send("PowerDeliveryReq", M.PowerDeliveryReqType(ready_to_charge_state=True), 3.0)


def test_full_dc_session(driver):
    d, s = driver, driver.session
    setup_to_charge_parameters(d)
    authorize(d)
    charge_parameters(d)
    # cable check: ongoing until the isolation monitor says valid
    reply, res = d.send("CableCheckReq", M.CableCheckReqType(dc_ev_status=ev_status()), 2.0)
    assert res.evse_processing == "Ongoing"
    assert res.dc_evse_status.evse_status_code == "EVSE_IsolationMonitoringActive"
    assert any(isinstance(a, StartIsolationCheck) and a.voltage == 500 for a in reply.actions)
    assert SetContactors(True) in reply.actions
    s.evse.isolation = Isolation.VALID   # a reading from before this test: not a result
    _, res = d.send("CableCheckReq", M.CableCheckReqType(dc_ev_status=ev_status()), 2.5)
    assert res.evse_processing == "Ongoing" and s.state == "CableCheck"
    finish_insulation_test(s)
    _, res = d.send("CableCheckReq", M.CableCheckReqType(dc_ev_status=ev_status()), 3.0)
    assert res.evse_processing == "Finished" and s.state == "PreCharge"
    # pre-charge follows the EV's target voltage with at most 2 A
    reply, res = d.send("PreChargeReq", M.PreChargeReqType(
        dc_ev_status=ev_status(), ev_target_voltage=pv(380, "V"),
        ev_target_current=pv(10, "A")), 4.0)
    assert SetDcOutput(380.0, 2.0) in reply.actions
    s.evse.present_voltage = 379.0
    _, res = d.send("PreChargeReq", M.PreChargeReqType(
        dc_ev_status=ev_status(), ev_target_voltage=pv(380, "V"),
        ev_target_current=pv(1, "A")), 4.2)
    assert res.evse_present_voltage.value * 10 ** res.evse_present_voltage.multiplier == 379
    _, res = d.send("PowerDeliveryReq", M.PowerDeliveryReqType(ready_to_charge_state=True), 4.5)
    assert res.response_code == "OK" and s.state == "CurrentDemand"
    for i in range(5):
        s.evse.present_current = 100.0
        reply, res = d.send("CurrentDemandReq", M.CurrentDemandReqType(
            dc_ev_status=ev_status(40 + i), ev_target_current=pv(150, "A"),
            ev_target_voltage=pv(400, "V"), charging_complete=False,
            ev_maximum_current_limit=pv(125, "A")), 5.0 + i * 0.1)
        assert res.response_code == "OK"
        assert SetDcOutput(400.0, 125.0) in reply.actions  # EV max current wins over target
        assert res.evse_current_limit_achieved is True
    _, res = d.send("PowerDeliveryReq", M.PowerDeliveryReqType(ready_to_charge_state=False), 6.0)
    assert s.state == "WeldingDetection"
    s.evse.cp_state = "B"               # the car opened S2 after PowerDeliveryRes(Stop)
    s.evse.present_voltage = 10.0
    _, res = d.send("WeldingDetectionReq", M.WeldingDetectionReqType(dc_ev_status=ev_status()),
                    6.5)
    assert res.response_code == "OK"
    reply, res = d.send("SessionStopReq", M.SessionStopType(), 7.0)
    assert res.response_code == "OK" and s.state == TERMINATED and reply.close
    assert SetContactors(False) in reply.actions


def test_request_out_of_sequence_gets_FAILED_SequenceError(driver):
    setup_to_charge_parameters(driver)
    reply, res = driver.send("CableCheckReq", M.CableCheckReqType(dc_ev_status=ev_status()), 1.0)
    assert res.response_code == "FAILED_SequenceError"
    assert reply.close and any(isinstance(a, EnterSafeState) for a in reply.actions)


def test_wrong_session_id_gets_FAILED_UnknownSession(driver):
    setup_to_charge_parameters(driver)
    _, res = driver.send("ContractAuthenticationReq", M.ContractAuthenticationReqType(), 1.0,
                         session_id=b"\x11" * 8)
    assert res.response_code == "FAILED_UnknownSession"


def test_rejected_authorization_fails_the_session(driver):
    setup_to_charge_parameters(driver)
    driver.send("ContractAuthenticationReq", M.ContractAuthenticationReqType(), 1.0)
    driver.session.authorization_decided(AuthorizationDecision(AuthorizationStatus.INVALID, "x"))
    reply, res = driver.send("ContractAuthenticationReq", M.ContractAuthenticationReqType(), 2.0)
    assert res.response_code == "FAILED" and reply.close


def test_authorization_pending_too_long_fails(driver):
    setup_to_charge_parameters(driver)
    driver.send("ContractAuthenticationReq", M.ContractAuthenticationReqType(), 1.0)
    _, res = driver.send("ContractAuthenticationReq", M.ContractAuthenticationReqType(), 30.0)
    assert res.evse_processing == "Ongoing"
    _, res = driver.send("ContractAuthenticationReq", M.ContractAuthenticationReqType(), 57.0)
    assert res.response_code == "FAILED"


def test_ac_request_on_dc_charger_is_wrong_energy_transfer_type(driver):
    setup_to_charge_parameters(driver)
    authorize(driver)
    _, res = driver.send("ChargeParameterDiscoveryReq", M.ChargeParameterDiscoveryReqType(
        ev_requested_energy_transfer_type="AC_three_phase_core",
        ac_ev_charge_parameter=M.AC_EVChargeParameterType(
            departure_time=0, e_amount=pv(20, "Wh", 3), ev_max_voltage=pv(400, "V"),
            ev_max_current=pv(32, "A"), ev_min_current=pv(6, "A"))), 2.0)
    assert res.response_code == "FAILED_WrongEnergyTransferType"


def test_isolation_fault_in_cable_check_fails_and_goes_safe(driver):
    setup_to_charge_parameters(driver)
    authorize(driver)
    charge_parameters(driver)
    driver.send("CableCheckReq", M.CableCheckReqType(dc_ev_status=ev_status()), 2.0)
    finish_insulation_test(driver.session, Isolation.FAULT)
    reply, res = driver.send("CableCheckReq", M.CableCheckReqType(dc_ev_status=ev_status()), 3.0)
    assert res.response_code == "FAILED"
    assert any(isinstance(a, EnterSafeState) for a in reply.actions)


def test_cable_check_timeout_ends_session(driver):
    setup_to_charge_parameters(driver)
    authorize(driver)
    charge_parameters(driver)
    _, res = driver.send("CableCheckReq", M.CableCheckReqType(dc_ev_status=ev_status()), 2.0)
    assert res.evse_processing == "Ongoing"
    _, res = driver.send("CableCheckReq", M.CableCheckReqType(dc_ev_status=ev_status()), 40.0)
    assert res.evse_processing == "Ongoing"   # 38 s: still within the limit
    reply, res = driver.send("CableCheckReq", M.CableCheckReqType(dc_ev_status=ev_status()), 40.1)
    assert res.response_code == "FAILED" and reply.close
    assert driver.session.state == TERMINATED
    assert any(isinstance(a, EnterSafeState) for a in reply.actions)


def test_emergency_stop_during_current_demand(driver):
    d, s = driver, driver.session
    to_current_demand(d)
    actions = s.evse_stop(StopReason.EMERGENCY)
    assert any(isinstance(a, EnterSafeState) for a in actions)
    reply, res = d.send("CurrentDemandReq", M.CurrentDemandReqType(
        dc_ev_status=ev_status(), ev_target_current=pv(100, "A"), ev_target_voltage=pv(400, "V"),
        charging_complete=False), 4.0)
    assert res.response_code == "FAILED"
    assert res.dc_evse_status.evse_status_code == "EVSE_EmergencyShutdown"
    assert reply.close


def test_remote_stop_asks_the_car_to_stop_and_cuts_current(driver):
    d, s = driver, driver.session
    to_current_demand(d)
    assert s.evse_stop(StopReason.REMOTE_STOP) == []
    reply, res = d.send("CurrentDemandReq", M.CurrentDemandReqType(
        dc_ev_status=ev_status(), ev_target_current=pv(100, "A"), ev_target_voltage=pv(400, "V"),
        charging_complete=False), 4.0)
    assert res.response_code == "OK"
    assert res.dc_evse_status.evse_notification == "StopCharging"
    assert SetDcOutput(400.0, 0.0) in reply.actions


def test_session_stop_right_after_setup_needs_the_quirk():
    strict = Driver(DinSession(evse_id="00"))
    setup_to_charge_parameters(strict)
    _, res = strict.send("SessionStopReq", M.SessionStopType(), 1.0)
    assert res.response_code == "FAILED_SequenceError"
    lenient = Driver(DinSession(evse_id="00", quirks=frozenset({"session_stop_anytime"})))
    setup_to_charge_parameters(lenient)
    reply, res = lenient.send("SessionStopReq", M.SessionStopType(), 1.0)
    assert res.response_code == "OK" and lenient.session.state == TERMINATED


def test_no_zero_limits_quirk_raises_minimum_current():
    d = Driver(DinSession(evse_id="00", quirks=frozenset({"no_zero_limits"})))
    setup_to_charge_parameters(d)
    authorize(d)
    res = charge_parameters(d)
    assert res.dc_evse_charge_parameter.evse_minimum_current_limit.value > 0
    plain = Driver(DinSession(evse_id="00"))
    setup_to_charge_parameters(plain)
    authorize(plain)
    assert charge_parameters(plain).dc_evse_charge_parameter.evse_minimum_current_limit.value == 0


def test_ev_max_voltage_below_evse_minimum_is_wrong_charge_parameter(driver):
    setup_to_charge_parameters(driver)
    authorize(driver)
    _, res = driver.send("ChargeParameterDiscoveryReq", M.ChargeParameterDiscoveryReqType(
        ev_requested_energy_transfer_type="DC_extended",
        dc_ev_charge_parameter=M.DC_EVChargeParameterType(
            dc_ev_status=ev_status(), ev_maximum_current_limit=pv(125, "A"),
            ev_maximum_voltage_limit=pv(100, "V"))), 2.0)
    assert res.response_code == "FAILED_WrongChargeParameter"


def test_every_failed_response_is_schema_valid_and_encodes():
    import exi_schemas
    from secc.din import DinAdapter
    s = DinSession(evse_id="00")
    requests = [n[:-4] for n in dir(M) if n.endswith("ReqType") and not n.startswith("_")]
    assert "ChargingStatusReq" in requests and "MeteringReceiptReq" in requests
    for request_name in requests:
        name, response = s.failed_response(request_name, "FAILED_SequenceError")
        _, data = DinAdapter().encode(name, response, bytes(8))
        decoded = exi_schemas.decode(data, "din")
        assert decoded.header.session_id == bytes(8)
        element, body = exi_schemas.body_element(decoded)
        assert element == name and body.response_code == "FAILED_SequenceError"


def test_requests_a_dc_evse_never_serves_still_get_a_failed_answer_before_close():
    """ChargingStatus (AC), MeteringReceipt, CertificateInstallation: SequenceError, not
    silence (the issue: the connection closed without any answer)."""
    for name in ("ChargingStatusReq", "MeteringReceiptReq", "CertificateInstallationReq"):
        s = DinSession(evse_id="00")
        reply = s.receive(name, None, 0.0, bytes(8))
        assert reply.close and reply.response is not None, name
        assert reply.response.response_code == "FAILED_SequenceError"
        assert any(isinstance(a, EnterSafeState) for a in reply.actions)


def test_all_zero_session_id_after_setup_is_unknown_session(driver):
    setup_to_charge_parameters(driver)
    _, res = driver.send("ContractAuthenticationReq", M.ContractAuthenticationReqType(), 1.0,
                         session_id=bytes(8))
    assert res.response_code == "FAILED_UnknownSession"


def test_precharge_that_never_converges_fails_after_the_precharge_time(driver):
    d, s = driver, driver.session
    setup_to_charge_parameters(d)
    authorize(d)
    charge_parameters(d)
    d.send("CableCheckReq", M.CableCheckReqType(dc_ev_status=ev_status()), 2.0)
    finish_insulation_test(s)
    d.send("CableCheckReq", M.CableCheckReqType(dc_ev_status=ev_status()), 2.1)
    req = M.PreChargeReqType(dc_ev_status=ev_status(), ev_target_voltage=pv(380, "V"),
                             ev_target_current=pv(2, "A"))
    _, res = d.send("PreChargeReq", req, 3.0)
    assert res.response_code == "OK"
    _, res = d.send("PreChargeReq", req, 9.9)   # 6.9 s: still within V2G_EVCC_PreCharge 7 s
    assert res.response_code == "OK"
    reply, res = d.send("PreChargeReq", req, 10.1)
    assert res.response_code == "FAILED" and reply.close


def test_csms_limit_mid_session_lowers_the_din_current_limit_without_renegotiation(driver):
    """DIN 70121 has no renegotiation: a lower CSMS limit shows as lower EVSE limits at once."""
    from secc.v2g.charging_limit import ChargingLimit, LimitPeriod

    d, s = driver, driver.session
    s.evse.cp_state = "C"       # the DC car closed S2 before the cable check
    setup_to_charge_parameters(d)
    authorize(d)
    charge_parameters(d)
    d.send("CableCheckReq", M.CableCheckReqType(dc_ev_status=ev_status()), 2.0)
    finish_insulation_test(s)   # the board reports this cable check's test
    _, res = d.send("CableCheckReq", M.CableCheckReqType(dc_ev_status=ev_status()), 2.1)
    assert res.evse_processing == "Finished" and s.state == "PreCharge"
    s.evse.present_voltage = 400.0
    d.send("PreChargeReq", M.PreChargeReqType(dc_ev_status=ev_status(),
                                              ev_target_voltage=pv(400, "V"),
                                              ev_target_current=pv(1, "A")), 3.0)
    _, res = d.send("PowerDeliveryReq", M.PowerDeliveryReqType(ready_to_charge_state=True), 4.0)
    assert res.response_code == "OK" and s.state == "CurrentDemand"
    wall = 1_770_000_000.0
    s.charging_limit_changed(ChargingLimit(3, "W", (LimitPeriod(wall, 20_000.0),), wall + 600),
                             wall + 1)
    reply, res = d.send("CurrentDemandReq", M.CurrentDemandReqType(
        dc_ev_status=ev_status(), ev_target_current=pv(150, "A"), ev_target_voltage=pv(400, "V"),
        charging_complete=False, ev_maximum_current_limit=pv(125, "A")), 5.0)
    current = res.evse_maximum_current_limit
    assert current.value * 10 ** current.multiplier == 50          # 20 kW at 400 V
    assert SetDcOutput(400.0, 50.0) in reply.actions
    assert res.dc_evse_status.evse_notification == "None"


def test_cable_check_with_cp_b_starts_no_test_and_fails_after_the_cp_detection_time(driver):
    """CableCheck_008: the car never closed S2. No insulation test (no test voltage) while
    CP is B; Ongoing within the CP state detection time (its pilot is debounced), then FAILED."""
    d, s = driver, driver.session
    setup_to_charge_parameters(d)
    authorize(d)
    charge_parameters(d)
    s.evse.cp_state = "B"
    reply, res = d.send("CableCheckReq", M.CableCheckReqType(dc_ev_status=ev_status()), 2.0)
    assert res.response_code == "OK" and res.evse_processing == "Ongoing"
    assert not any(isinstance(a, StartIsolationCheck) for a in reply.actions)
    reply, res = d.send("CableCheckReq", M.CableCheckReqType(dc_ev_status=ev_status()), 3.0)
    assert not any(isinstance(a, StartIsolationCheck) for a in reply.actions)
    reply, res = d.send("CableCheckReq", M.CableCheckReqType(dc_ev_status=ev_status()), 3.6)
    assert res.response_code == "FAILED" and reply.close
    assert not any(isinstance(a, StartIsolationCheck) for a in reply.actions)


def test_cable_check_starts_the_test_once_the_car_shows_c(driver):
    d, s = driver, driver.session
    setup_to_charge_parameters(d)
    authorize(d)
    charge_parameters(d)
    s.evse.cp_state = "B"
    d.send("CableCheckReq", M.CableCheckReqType(dc_ev_status=ev_status()), 2.0)
    s.evse.cp_state = "C"
    reply, res = d.send("CableCheckReq", M.CableCheckReqType(dc_ev_status=ev_status()), 2.1)
    assert res.evse_processing == "Ongoing"
    assert any(isinstance(a, StartIsolationCheck) for a in reply.actions)
