"""ISO 15118-2 SECC session, AC and DC with EIM, through the real codec."""

from __future__ import annotations

import pytest

from exi_schemas.generated import iso2 as M
from secc.authorization import AuthorizationDecision, AuthorizationStatus
from secc.iso2 import Iso2Adapter, Iso2Session, PausedSessions
from secc.v2g.core import TERMINATED
from secc.v2g.evse import (
    EnterSafeState,
    Isolation,
    RequestAuthorization,
    SetContactors,
    SetDcOutput,
    StopReason,
)
from tests.v2g_harness import Driver, finish_insulation_test

ACCEPT = AuthorizationDecision(AuthorizationStatus.ACCEPTED)
EVCCID = bytes.fromhex("0A0B0C0D0E0F")


def pv(value, unit, multiplier=0):
    return M.PhysicalValueType(multiplier=multiplier, unit=unit, value=value)


def ev_status(soc=50):
    return M.DC_EVStatusType(ev_ready=True, ev_error_code="NO_ERROR", evresssoc=soc)


def make(modes=("DC_extended",), **kw):
    session = Iso2Session(evse_id="DE*PYS*E0001*1", energy_transfer_modes=modes, **kw)
    session.evse.cp_state = "C"     # the DC car closed S2 before the cable check
    return Driver(session, Iso2Adapter())


def setup(d, now=0.0, old_sid=None):
    _, res = d.send("SessionSetupReq", M.SessionSetupReqType(evccid=EVCCID), now,
                    session_id=old_sid or bytes(8))
    d.send("ServiceDiscoveryReq", M.ServiceDiscoveryReqType(), now)
    d.send("PaymentServiceSelectionReq", M.PaymentServiceSelectionReqType(
        selected_payment_option="ExternalPayment",
        selected_service_list=M.SelectedServiceListType(
            selected_service=[M.SelectedServiceType(service_id=1)])), now)
    reply, auth = d.send("AuthorizationReq", M.AuthorizationReqType(), now)
    assert auth.evse_processing == "Ongoing"
    assert any(isinstance(a, RequestAuthorization) for a in reply.actions)
    d.session.authorization_decided(ACCEPT)
    _, auth = d.send("AuthorizationReq", M.AuthorizationReqType(), now + 0.5)
    assert auth.evse_processing == "Finished"
    return res


def dc_parameters(d, now=1.0):
    return d.send("ChargeParameterDiscoveryReq", M.ChargeParameterDiscoveryReqType(
        requested_energy_transfer_mode="DC_extended",
        dc_ev_charge_parameter=M.DC_EVChargeParameterType(
            dc_ev_status=ev_status(), ev_maximum_current_limit=pv(200, "A"),
            ev_maximum_voltage_limit=pv(800, "V"))), now)[1]


def ac_parameters(d, now=1.0):
    return d.send("ChargeParameterDiscoveryReq", M.ChargeParameterDiscoveryReqType(
        requested_energy_transfer_mode="AC_three_phase_core",
        ac_ev_charge_parameter=M.AC_EVChargeParameterType(
            e_amount=pv(20, "Wh", 3), ev_max_voltage=pv(400, "V"), ev_max_current=pv(16, "A"),
            ev_min_current=pv(6, "A"))), now)[1]


def test_dc_session_with_renegotiation():
    d = make()
    s = d.session
    res = setup(d)
    assert res.response_code == "OK_NewSessionEstablished" and res.evseid == "DE*PYS*E0001*1"
    cpd = dc_parameters(d)
    assert cpd.dc_evse_charge_parameter.evse_maximum_power_limit is not None
    s.evse.isolation = Isolation.VALID   # stale: the first answer is Ongoing regardless
    _, res = d.send("CableCheckReq", M.CableCheckReqType(dc_ev_status=ev_status()), 2.0)
    assert res.evse_processing == "Ongoing"
    finish_insulation_test(s)
    _, res = d.send("CableCheckReq", M.CableCheckReqType(dc_ev_status=ev_status()), 2.1)
    assert res.evse_processing == "Finished"
    s.evse.present_voltage = 500.0
    d.send("PreChargeReq", M.PreChargeReqType(dc_ev_status=ev_status(),
                                              ev_target_voltage=pv(500, "V"),
                                              ev_target_current=pv(1, "A")), 2.5)
    _, res = d.send("PowerDeliveryReq", M.PowerDeliveryReqType(
        charge_progress="Start", sa_schedule_tuple_id=1), 3.0)
    assert s.state == "CurrentDemand"
    reply, res = d.send("CurrentDemandReq", M.CurrentDemandReqType(
        dc_ev_status=ev_status(), ev_target_current=pv(180, "A"), ev_target_voltage=pv(500, "V"),
        charging_complete=False), 3.1)
    assert res.evseid == "DE*PYS*E0001*1" and res.sa_schedule_tuple_id == 1
    assert SetDcOutput(500.0, 180.0) in reply.actions
    # renegotiation: back to ChargeParameterDiscovery, then straight to PowerDelivery
    d.send("PowerDeliveryReq", M.PowerDeliveryReqType(charge_progress="Renegotiate",
                                                      sa_schedule_tuple_id=1), 4.0)
    assert s.state == "ChargeParameterDiscovery"
    dc_parameters(d, 4.1)
    assert s.state == "PowerDeliveryDC"
    d.send("PowerDeliveryReq", M.PowerDeliveryReqType(charge_progress="Start",
                                                      sa_schedule_tuple_id=1), 4.2)
    assert s.state == "CurrentDemand"
    d.send("PowerDeliveryReq", M.PowerDeliveryReqType(charge_progress="Stop",
                                                      sa_schedule_tuple_id=1), 5.0)
    s.evse.cp_state = "B"               # the car opened S2 after PowerDeliveryRes(Stop)
    d.send("WeldingDetectionReq", M.WeldingDetectionReqType(dc_ev_status=ev_status()), 5.1)
    reply, res = d.send("SessionStopReq", M.SessionStopReqType(charging_session="Terminate"), 5.2)
    assert res.response_code == "OK" and s.state == TERMINATED and reply.close


def test_ac_session_with_metering_receipt():
    d = make(("AC_three_phase_core",), receipt_required=True)
    s = d.session
    setup(d)
    cpd = ac_parameters(d)
    assert cpd.ac_evse_charge_parameter.evse_max_current.value == 32
    pmax = cpd.sa_schedule_list.sa_schedule_tuple[0].p_max_schedule.p_max_schedule_entry[0].p_max
    assert pmax.value * 10 ** pmax.multiplier == 230 * 32 * 3
    reply, res = d.send("PowerDeliveryReq", M.PowerDeliveryReqType(
        charge_progress="Start", sa_schedule_tuple_id=1, charging_profile=M.ChargingProfileType(
            profile_entry=[M.ProfileEntryType(charging_profile_entry_start=0,
                                              charging_profile_entry_max_power=pv(11, "W", 3))])),
        2.0)
    assert res.ac_evse_status is not None and SetContactors(True) in reply.actions
    s.evse.meter_wh = 1234
    _, res = d.send("ChargingStatusReq", M.ChargingStatusReqType(), 2.5)
    assert res.evse_max_current.value == 16  # the EV's max wins over 32 A
    assert res.receipt_required is True and res.meter_info.meter_reading == 1234
    _, res = d.send("MeteringReceiptReq", M.MeteringReceiptReqType(
        session_id=s.session_id, meter_info=res.meter_info), 2.6)
    assert res.response_code == "OK"
    reply, _ = d.send("PowerDeliveryReq", M.PowerDeliveryReqType(charge_progress="Stop",
                                                                 sa_schedule_tuple_id=1), 3.0)
    assert SetContactors(False) in reply.actions and s.state == "SessionStop"
    d.send("SessionStopReq", M.SessionStopReqType(charging_session="Terminate"), 3.1)
    assert s.state == TERMINATED


def ac_charge_then_stop(d):
    """Setup, authorization, AC parameters, PowerDelivery Start then Stop: SessionStop next."""
    setup(d)
    ac_parameters(d)
    d.send("PowerDeliveryReq", M.PowerDeliveryReqType(charge_progress="Start",
                                                      sa_schedule_tuple_id=1), 2.0)
    d.send("PowerDeliveryReq", M.PowerDeliveryReqType(charge_progress="Stop",
                                                      sa_schedule_tuple_id=1), 3.0)


def test_pause_and_resume_with_the_old_session_id():
    paused = PausedSessions()
    first = make(("AC_three_phase_core",), paused_sessions=paused)
    ac_charge_then_stop(first)
    _, res = first.send("SessionStopReq", M.SessionStopReqType(charging_session="Pause"), 3.1)
    old = first.session.session_id
    assert res.response_code == "OK" and len(paused) == 1
    second = make(("AC_three_phase_core",), paused_sessions=paused)
    res = setup(second, old_sid=old)
    assert res.response_code == "OK_OldSessionJoined" and second.session.session_id == old
    third = make(("AC_three_phase_core",), paused_sessions=paused)
    res = setup(third, old_sid=old)  # only once
    assert res.response_code == "OK_NewSessionEstablished"


def test_unknown_service_detail_is_FAILED_ServiceIDInvalid():
    d = make()
    d.send("SessionSetupReq", M.SessionSetupReqType(evccid=EVCCID), 0, session_id=bytes(8))
    d.send("ServiceDiscoveryReq", M.ServiceDiscoveryReqType(), 0)
    _, res = d.send("ServiceDetailReq", M.ServiceDetailReqType(service_id=77), 0)
    assert res.response_code == "FAILED_ServiceIDInvalid"


def test_contract_payment_is_refused_in_eim_mode():
    d = make()
    d.send("SessionSetupReq", M.SessionSetupReqType(evccid=EVCCID), 0, session_id=bytes(8))
    d.send("ServiceDiscoveryReq", M.ServiceDiscoveryReqType(), 0)
    _, res = d.send("PaymentServiceSelectionReq", M.PaymentServiceSelectionReqType(
        selected_payment_option="Contract", selected_service_list=M.SelectedServiceListType(
            selected_service=[M.SelectedServiceType(service_id=1)])), 0)
    assert res.response_code == "FAILED_PaymentSelectionInvalid"


def test_ac_mode_on_dc_charger_is_wrong_energy_transfer_mode():
    d = make()
    setup(d)
    res = ac_parameters(d)
    assert res.response_code == "FAILED_WrongEnergyTransferMode"


def test_wrong_schedule_id_is_tariff_selection_invalid():
    d = make(("AC_three_phase_core",))
    setup(d)
    ac_parameters(d)
    _, res = d.send("PowerDeliveryReq", M.PowerDeliveryReqType(charge_progress="Start",
                                                               sa_schedule_tuple_id=9), 2.0)
    assert res.response_code == "FAILED_TariffSelectionInvalid"


def test_profile_above_pmax_is_charging_profile_invalid():
    d = make(("AC_three_phase_core",))
    setup(d)
    ac_parameters(d)
    _, res = d.send("PowerDeliveryReq", M.PowerDeliveryReqType(
        charge_progress="Start", sa_schedule_tuple_id=1, charging_profile=M.ChargingProfileType(
            profile_entry=[M.ProfileEntryType(charging_profile_entry_start=0,
                                              charging_profile_entry_max_power=pv(999, "W", 3))])),
        2.0)
    assert res.response_code == "FAILED_ChargingProfileInvalid"


def test_out_of_sequence_and_unknown_session():
    d = make()
    _, res = d.send("AuthorizationReq", M.AuthorizationReqType(), 0, session_id=bytes(8))
    assert res.response_code == "FAILED_SequenceError"
    d = make()
    d.send("SessionSetupReq", M.SessionSetupReqType(evccid=EVCCID), 0, session_id=bytes(8))
    _, res = d.send("ServiceDiscoveryReq", M.ServiceDiscoveryReqType(), 0,
                    session_id=b"\x00" * 7 + b"\x01")
    assert res.response_code == "FAILED_UnknownSession"


def test_sequence_timeout_in_charging_status():
    d = make(("AC_three_phase_core",))
    setup(d)
    ac_parameters(d)
    d.session.evse.cp_state = "C"
    d.send("PowerDeliveryReq", M.PowerDeliveryReqType(charge_progress="Start",
                                                      sa_schedule_tuple_id=1), 2.0)
    assert d.session.handle_timer(3.5) is None  # CP state C in time
    assert d.session.next_deadline() == pytest.approx(62.0)
    reply = d.session.handle_timer(62.0)
    assert reply.close and any(isinstance(a, EnterSafeState) for a in reply.actions)


def test_remote_stop_during_ac_charging_sets_zero_current_and_notification():
    d = make(("AC_three_phase_core",))
    setup(d)
    ac_parameters(d)
    d.send("PowerDeliveryReq", M.PowerDeliveryReqType(charge_progress="Start",
                                                      sa_schedule_tuple_id=1), 2.0)
    d.session.evse_stop(StopReason.REMOTE_STOP)
    _, res = d.send("ChargingStatusReq", M.ChargingStatusReqType(), 2.5)
    assert res.evse_max_current.value == 0
    assert res.ac_evse_status.evse_notification == "StopCharging"


def test_every_failed_response_encodes():
    from secc.iso2.session import FAILED_RESPONSES
    for modes in (("DC_extended",), ("AC_three_phase_core",)):
        s = Iso2Session(evse_id="DE*PYS*E0001*1", energy_transfer_modes=modes)
        s.mode = modes[0]
        for request_name in FAILED_RESPONSES:
            name, response = s.failed_response(request_name, "FAILED")
            Iso2Adapter().encode(name, response, bytes(8))


def test_cp_state_must_reach_c_after_power_delivery_start():
    d = make(("AC_three_phase_core",))
    d.session.evse.cp_state = "B"   # the AC car closes S2 after PowerDelivery(Start)
    setup(d)
    ac_parameters(d)
    d.send("PowerDeliveryReq", M.PowerDeliveryReqType(charge_progress="Start",
                                                      sa_schedule_tuple_id=1), 2.0)
    assert d.session.next_deadline() == pytest.approx(3.5)
    reply = d.session.handle_timer(3.5)  # the car stayed in state B
    assert reply.close and any(isinstance(a, EnterSafeState) for a in reply.actions)


def test_relaxed_cp_state_quirk_doubles_the_window():
    d = make(("AC_three_phase_core",), quirks=frozenset({"relaxed_cp_state"}))
    setup(d)
    ac_parameters(d)
    d.send("PowerDeliveryReq", M.PowerDeliveryReqType(charge_progress="Start",
                                                      sa_schedule_tuple_id=1), 2.0)
    assert d.session.next_deadline() == pytest.approx(5.0)


def test_a_profile_copied_from_our_own_ac_schedule_is_accepted():
    """Cars (Josev) copy our PMaxSchedule into their ChargingProfile; a 22 kW board offers
    min(230 V x 32 A x 3, 22 kW) and must accept that value back."""
    from secc.v2g.evse import EvseLimits
    d = make(("AC_three_phase_core",), limits=EvseLimits(max_power=22_000, ac_max_current=32))
    setup(d)
    cpd = ac_parameters(d)
    pmax = cpd.sa_schedule_list.sa_schedule_tuple[0].p_max_schedule.p_max_schedule_entry[0].p_max
    offered = pmax.value * 10 ** pmax.multiplier
    assert offered == 22_000
    _, res = d.send("PowerDeliveryReq", M.PowerDeliveryReqType(
        charge_progress="Start", sa_schedule_tuple_id=1, charging_profile=M.ChargingProfileType(
            profile_entry=[M.ProfileEntryType(charging_profile_entry_start=0,
                                              charging_profile_entry_max_power=pmax),
                           M.ProfileEntryType(charging_profile_entry_start=86400,
                                              charging_profile_entry_max_power=pv(0, "W"))])),
        2.0)
    assert res.response_code == "OK"
