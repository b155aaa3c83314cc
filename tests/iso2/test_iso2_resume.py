"""ISO 15118-2 resumed sessions are held to what was agreed before the pause ([V2G2-741]):
the payment option, and the SAScheduleTuple the car selected, for what is left of its period.
(The conformance suite drives the same over the wire: tests/conformance/resume.py.)"""

from __future__ import annotations

from exi_schemas.generated import iso2 as M
from secc.iso2 import PausedSessions
from tests.iso2.test_iso2_session import ACCEPT, EVCCID, ac_parameters, make

AC = ("AC_three_phase_core",)
SERVICES = M.SelectedServiceListType(selected_service=[M.SelectedServiceType(service_id=1)])


def select(d, option, now):
    return d.send("PaymentServiceSelectionReq", M.PaymentServiceSelectionReqType(
        selected_payment_option=option, selected_service_list=SERVICES), now)[1]


def authorize(d, now):
    d.send("AuthorizationReq", M.AuthorizationReqType(), now)
    d.session.authorization_decided(ACCEPT)
    d.send("AuthorizationReq", M.AuthorizationReqType(), now)


def schedule_seconds(cpd) -> tuple[int, int]:
    """(SAScheduleTupleID, the period its PMaxSchedule covers) of the one tuple offered."""
    (tuple_,) = cpd.sa_schedule_list.sa_schedule_tuple
    entries = tuple_.p_max_schedule.p_max_schedule_entry
    last = entries[-1].relative_time_interval
    return tuple_.sa_schedule_tuple_id, last.start + last.duration


def paused_ac_session(paused, tls=False, option="ExternalPayment"):
    """An AC session over ``tls`` offered its schedule at t=1, charged, paused at t=3.1."""
    d = make(AC, paused_sessions=paused, tls=tls)
    d.send("SessionSetupReq", M.SessionSetupReqType(evccid=EVCCID), 0.0, session_id=bytes(8))
    d.send("ServiceDiscoveryReq", M.ServiceDiscoveryReqType(), 0.0)
    assert select(d, option, 0.0).response_code == "OK"
    authorize(d, 0.5)
    cpd = ac_parameters(d, 1.0)
    assert schedule_seconds(cpd) == (1, 86400)
    for progress, now in (("Start", 2.0), ("Stop", 3.0)):
        d.send("PowerDeliveryReq", M.PowerDeliveryReqType(charge_progress=progress,
                                                          sa_schedule_tuple_id=1), now)
    _, res = d.send("SessionStopReq", M.SessionStopReqType(charging_session="Pause"), 3.1)
    assert res.response_code == "OK" and len(paused) == 1
    return d.session.session_id


def resume(paused, old_sid, now, tls=False):
    d = make(AC, paused_sessions=paused, tls=tls)
    _, res = d.send("SessionSetupReq", M.SessionSetupReqType(evccid=EVCCID), now,
                    session_id=old_sid)
    assert res.response_code == "OK_OldSessionJoined"
    return d


def test_resumed_session_offers_only_the_payment_option_selected_before_the_pause():
    paused = PausedSessions()
    old = paused_ac_session(paused, tls=True, option="ExternalPayment")
    fresh = make(AC, tls=True)
    fresh.send("SessionSetupReq", M.SessionSetupReqType(evccid=EVCCID), 0.0, session_id=bytes(8))
    _, res = fresh.send("ServiceDiscoveryReq", M.ServiceDiscoveryReqType(), 0.0)
    assert res.payment_option_list.payment_option == ["Contract", "ExternalPayment"]
    d = resume(paused, old, 100.0, tls=True)
    _, res = d.send("ServiceDiscoveryReq", M.ServiceDiscoveryReqType(), 100.0)
    assert res.response_code == "OK"
    assert res.payment_option_list.payment_option == ["ExternalPayment"]
    assert res.charge_service.supported_energy_transfer_mode.energy_transfer_mode == list(AC)
    res = select(d, "Contract", 100.1)
    assert res.response_code == "FAILED_PaymentSelectionInvalid"


def test_resumed_session_accepts_the_agreed_payment_option():
    paused = PausedSessions()
    old = paused_ac_session(paused, tls=True)
    d = resume(paused, old, 100.0, tls=True)
    d.send("ServiceDiscoveryReq", M.ServiceDiscoveryReqType(), 100.0)
    assert select(d, "ExternalPayment", 100.1).response_code == "OK"


def test_resumed_session_offers_the_selected_tuple_for_what_is_left_of_its_period():
    paused = PausedSessions()
    old = paused_ac_session(paused)   # tuple 1 offered at t=1 for 86400 s: ends at 86401
    d = resume(paused, old, 1001.0)
    d.send("ServiceDiscoveryReq", M.ServiceDiscoveryReqType(), 1001.0)
    select(d, "ExternalPayment", 1001.0)
    authorize(d, 1001.5)
    cpd = ac_parameters(d, 1002.0)
    assert cpd.response_code == "OK"
    assert schedule_seconds(cpd) == (1, 86401 - 1002)     # reduced by the time elapsed
    # a renegotiation in the resumed session gets a fresh offer
    d.send("PowerDeliveryReq", M.PowerDeliveryReqType(charge_progress="Start",
                                                      sa_schedule_tuple_id=1), 1003.0)
    d.send("PowerDeliveryReq", M.PowerDeliveryReqType(charge_progress="Renegotiate",
                                                      sa_schedule_tuple_id=1), 1004.0)
    assert schedule_seconds(ac_parameters(d, 1005.0)) == (1, 86400)


def test_a_new_session_after_a_pause_is_not_held_to_the_paused_one():
    paused = PausedSessions()
    paused_ac_session(paused, tls=True)
    d = make(AC, paused_sessions=paused, tls=True)
    _, res = d.send("SessionSetupReq", M.SessionSetupReqType(evccid=EVCCID), 50.0,
                    session_id=bytes(8))
    assert res.response_code == "OK_NewSessionEstablished"
    _, res = d.send("ServiceDiscoveryReq", M.ServiceDiscoveryReqType(), 50.0)
    assert res.payment_option_list.payment_option == ["Contract", "ExternalPayment"]
    select(d, "ExternalPayment", 50.0)
    authorize(d, 50.5)
    assert schedule_seconds(ac_parameters(d, 51.0)) == (1, 86400)


def test_a_schedule_whose_period_is_over_is_offered_afresh():
    paused = PausedSessions(lifetime=10 * 86400.0)
    old = paused_ac_session(paused)
    d = resume(paused, old, 90000.0)
    d.send("ServiceDiscoveryReq", M.ServiceDiscoveryReqType(), 90000.0)
    select(d, "ExternalPayment", 90000.0)
    authorize(d, 90000.5)
    assert schedule_seconds(ac_parameters(d, 90001.0)) == (1, 86400)
