"""Any sequence of well-formed requests, in any order, with right, zero or foreign SessionIDs,
at any pace: the DIN and ISO-2 cores never raise, every response they produce encodes, and
every ending leaves the charger in a safe state."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exi_schemas.generated import din as D
from exi_schemas.generated import iso2 as I
from secc.authorization import AuthorizationDecision, AuthorizationStatus
from secc.din import DinAdapter, DinSession
from secc.iso2 import Iso2Adapter, Iso2Session
from secc.v2g.evse import EnterSafeState, Isolation
from tests.v2g_harness import finish_insulation_test


def _pv(M, v, unit):
    return M.PhysicalValueType(multiplier=0, unit=unit, value=v)


def din_requests():
    st_ = D.DC_EVStatusType(ev_ready=True, ev_error_code="NO_ERROR", evresssoc=50)
    return {
        "SessionSetupReq": D.SessionSetupReqType(evccid=b"\x01" * 6),
        "ServiceDiscoveryReq": D.ServiceDiscoveryReqType(),
        "ServicePaymentSelectionReq": D.ServicePaymentSelectionReqType(
            selected_payment_option="ExternalPayment",
            selected_service_list=D.SelectedServiceListType(
                selected_service=[D.SelectedServiceType(service_id=1)])),
        "ContractAuthenticationReq": D.ContractAuthenticationReqType(),
        "ChargeParameterDiscoveryReq": D.ChargeParameterDiscoveryReqType(
            ev_requested_energy_transfer_type="DC_extended",
            dc_ev_charge_parameter=D.DC_EVChargeParameterType(
                dc_ev_status=st_, ev_maximum_current_limit=_pv(D, 100, "A"),
                ev_maximum_voltage_limit=_pv(D, 450, "V"))),
        "CableCheckReq": D.CableCheckReqType(dc_ev_status=st_),
        "PreChargeReq": D.PreChargeReqType(dc_ev_status=st_, ev_target_voltage=_pv(D, 400, "V"),
                                           ev_target_current=_pv(D, 2, "A")),
        "PowerDeliveryReq": D.PowerDeliveryReqType(ready_to_charge_state=True),
        "CurrentDemandReq": D.CurrentDemandReqType(
            dc_ev_status=st_, ev_target_current=_pv(D, 100, "A"),
            ev_target_voltage=_pv(D, 400, "V"), charging_complete=False),
        "WeldingDetectionReq": D.WeldingDetectionReqType(dc_ev_status=st_),
        "SessionStopReq": D.SessionStopType(),
    }


def iso2_requests():
    st_ = I.DC_EVStatusType(ev_ready=True, ev_error_code="NO_ERROR", evresssoc=50)
    return {
        "SessionSetupReq": I.SessionSetupReqType(evccid=b"\x01" * 6),
        "ServiceDiscoveryReq": I.ServiceDiscoveryReqType(),
        "ServiceDetailReq": I.ServiceDetailReqType(service_id=1),
        "PaymentServiceSelectionReq": I.PaymentServiceSelectionReqType(
            selected_payment_option="ExternalPayment",
            selected_service_list=I.SelectedServiceListType(
                selected_service=[I.SelectedServiceType(service_id=1)])),
        "AuthorizationReq": I.AuthorizationReqType(),
        "ChargeParameterDiscoveryReq": I.ChargeParameterDiscoveryReqType(
            requested_energy_transfer_mode="DC_extended",
            dc_ev_charge_parameter=I.DC_EVChargeParameterType(
                dc_ev_status=st_, ev_maximum_current_limit=_pv(I, 100, "A"),
                ev_maximum_voltage_limit=_pv(I, 450, "V"))),
        "CableCheckReq": I.CableCheckReqType(dc_ev_status=st_),
        "PreChargeReq": I.PreChargeReqType(dc_ev_status=st_, ev_target_voltage=_pv(I, 400, "V"),
                                           ev_target_current=_pv(I, 2, "A")),
        "PowerDeliveryReq": I.PowerDeliveryReqType(charge_progress="Start",
                                                   sa_schedule_tuple_id=1),
        "CurrentDemandReq": I.CurrentDemandReqType(
            dc_ev_status=st_, ev_target_current=_pv(I, 100, "A"),
            ev_target_voltage=_pv(I, 400, "V"), charging_complete=False),
        "ChargingStatusReq": I.ChargingStatusReqType(),
        "WeldingDetectionReq": I.WeldingDetectionReqType(dc_ev_status=st_),
        "SessionStopReq": I.SessionStopReqType(charging_session="Terminate"),
    }


CASES = {"din": (DinSession, DinAdapter(), din_requests()),
         "iso2": (Iso2Session, Iso2Adapter(), iso2_requests())}

step = st.tuples(st.sampled_from(sorted(iso2_requests().keys() | din_requests().keys())),
                 st.sampled_from(["own", "zero", "foreign"]),
                 st.floats(min_value=0.0, max_value=90.0),
                 st.booleans())


def run_sequence(protocol, steps, quirks):
    cls, adapter, requests = CASES[protocol]
    core = cls(evse_id="DE*PYS*E1*1" if protocol == "iso2" else "00", quirks=quirks)
    now = 0.0
    for name, sid_kind, dt, decide in steps:
        if name not in requests:
            continue
        now += dt
        timer_reply = core.handle_timer(now)
        if timer_reply is not None:
            assert timer_reply.close and core.terminated
            assert any(isinstance(a, EnterSafeState) for a in timer_reply.actions)
        if decide and core.authorization is None:
            core.authorization_decided(AuthorizationDecision(AuthorizationStatus.ACCEPTED))
        core.evse.isolation = Isolation.VALID
        finish_insulation_test(core)
        core.evse.cp_state = "C"
        sid = {"own": core.session_id, "zero": bytes(8), "foreign": b"\x42" * 8}[sid_kind]
        was_terminated = core.terminated
        reply = core.receive(name, requests[name], now, sid)
        if was_terminated:
            assert reply.close and reply.response is None
            continue
        if reply.response is not None:
            adapter.encode(reply.response_name, reply.response, core.session_id)
        if reply.close:
            assert core.terminated
            assert any(isinstance(a, EnterSafeState) for a in reply.actions)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["din", "iso2"]), st.lists(step, max_size=25),
       st.sampled_from([frozenset(), frozenset({"session_stop_anytime", "no_zero_limits"})]))
def test_any_request_sequence_is_answered_safely(protocol, steps, quirks):
    run_sequence(protocol, steps, quirks)


def test_the_nominal_dc_order_reaches_the_charge_loop():
    """The fuzz alphabet is meaningful: in order, both cores get to CurrentDemand."""
    for protocol, names in (("din", ["SessionSetupReq", "ServiceDiscoveryReq",
                                      "ServicePaymentSelectionReq", "ContractAuthenticationReq",
                                      "ChargeParameterDiscoveryReq", "CableCheckReq",
                                      "PreChargeReq", "PowerDeliveryReq", "CurrentDemandReq"]),
                            ("iso2", ["SessionSetupReq", "ServiceDiscoveryReq",
                                      "PaymentServiceSelectionReq", "AuthorizationReq",
                                      "ChargeParameterDiscoveryReq", "CableCheckReq",
                                      "PreChargeReq", "PowerDeliveryReq", "CurrentDemandReq"])):
        cls, adapter, requests = CASES[protocol]
        core = cls(evse_id="DE*PYS*E1*1" if protocol == "iso2" else "00")
        core.authorization_decided(AuthorizationDecision(AuthorizationStatus.ACCEPTED))
        core.evse.isolation = Isolation.VALID
        core.evse.cp_state = "C"
        for i, name in enumerate(names):
            if name == "CableCheckReq":   # first answer Ongoing: the test has only started
                reply = core.receive(name, requests[name], float(i), core.session_id)
                assert reply.response.evse_processing == "Ongoing"
                finish_insulation_test(core)
            reply = core.receive(name, requests[name], float(i), core.session_id)
            assert not reply.close, (protocol, name, reply.response)
        assert core.state == "CurrentDemand"
