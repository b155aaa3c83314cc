"""ISO 15118-2 core with ``payment_options=("Contract",)`` (a Contract-only charger, R4
PaymentServiceSelection_010): ServiceDiscoveryRes offers Contract alone; ExternalPayment is
FAILED_PaymentSelectionInvalid and the session ends. The default offers both over TLS."""

from __future__ import annotations

from exi_schemas.generated import iso2 as M
from tests.iso2.test_iso2_session import EVCCID, make

SERVICES = M.SelectedServiceListType(selected_service=[M.SelectedServiceType(service_id=1)])


def discovered(**kw):
    d = make(**kw)
    d.send("SessionSetupReq", M.SessionSetupReqType(evccid=EVCCID), 0.0, session_id=bytes(8))
    _, res = d.send("ServiceDiscoveryReq", M.ServiceDiscoveryReqType(), 0.0)
    return d, res.payment_option_list.payment_option


def select(d, option):
    return d.send("PaymentServiceSelectionReq", M.PaymentServiceSelectionReqType(
        selected_payment_option=option, selected_service_list=SERVICES), 0.1)


def test_contract_only_offers_contract_alone_and_refuses_external_payment():
    d, offered = discovered(tls=True, payment_options=("Contract",))
    assert offered == ["Contract"]
    reply, res = select(d, "ExternalPayment")
    assert res.response_code == "FAILED_PaymentSelectionInvalid"
    assert reply.close


def test_contract_only_accepts_contract():
    d, _ = discovered(tls=True, payment_options=("Contract",))
    assert select(d, "Contract")[1].response_code == "OK"


def test_default_offers_both_over_tls_and_external_payment_is_accepted():
    d, offered = discovered(tls=True)
    assert offered == ["Contract", "ExternalPayment"]
    assert select(d, "ExternalPayment")[1].response_code == "OK"


def test_eim_only_board_refuses_contract_even_over_tls():
    d, offered = discovered(tls=True, payment_options=("ExternalPayment",))
    assert offered == ["ExternalPayment"]
    assert select(d, "Contract")[1].response_code == "FAILED_PaymentSelectionInvalid"
