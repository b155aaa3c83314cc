"""ISO-2 metering receipts at the core (conformance rows CurrentDemand/ChargingStatus_002,
MeteringReceipt_004): a board's ``contract_receipts`` asks Contract sessions only, and a
receipt must sign the MeterInfo the SECC sent, not another reading."""

from __future__ import annotations

import dataclasses

import pytest

import exi_schemas
from exi_schemas.generated import iso2 as M
from secc.iso2 import Iso2Adapter, Iso2Session
from secc.pnc import xmldsig
from secc.v2gtp import PayloadType
from tests.pnc.test_ev_pnc import car, run_until


@pytest.fixture(scope="module")
def contract(test_pki):
    return test_pki.issue_contract()


def ac(**kw):
    return Iso2Session(tls=True, energy_transfer_modes=("AC_three_phase_core",), **kw)


def signed_receipt(session, meter_info, key):
    receipt = M.MeteringReceiptReqType(id="MR1", session_id=session.session_id,
                                       sa_schedule_tuple_id=1, meter_info=meter_info)
    msg = M.V2G_Message(header=M.MessageHeaderType(session_id=session.session_id,
                                                   signature=xmldsig.sign([receipt], key)),
                        body=M.BodyType(metering_receipt_req=receipt))
    request = Iso2Adapter().decode(PayloadType.EXI, exi_schemas.encode(msg))
    return session.receive(request.name, request.body, 9.0, request.session_id)


def loop_response(session):
    reply = session.receive("ChargingStatusReq", M.ChargingStatusReqType(), 8.0,
                            session.session_id)
    return reply.response


def test_contract_receipts_ask_a_contract_session(contract):
    session = ac(contract_receipts=True)
    run_until(car(contract, mode="ac"), session, stop_at="ChargingStatus")
    assert session.payment_option == "Contract" and session.state == "ChargingStatus"
    res = loop_response(session)
    assert res.receipt_required is True and res.meter_info.meter_id


def test_contract_receipts_never_ask_an_eim_session(contract):
    session = Iso2Session(tls=False, energy_transfer_modes=("AC_three_phase_core",),
                          contract_receipts=True)
    run_until(car(contract, mode="ac"), session, stop_at="ChargingStatus")
    assert session.payment_option == "ExternalPayment" and session.state == "ChargingStatus"
    assert loop_response(session).receipt_required is False


def test_without_the_setting_a_contract_session_is_not_asked(contract):
    session = ac()
    run_until(car(contract, mode="ac"), session, stop_at="ChargingStatus")
    assert loop_response(session).receipt_required is False


@pytest.mark.parametrize("change, code", [
    ({}, "OK"),
    ({"meter_reading": 1}, "FAILED_MeteringSignatureNotValid"),
    ({"meter_id": "OTHER-METER"}, "FAILED_MeteringSignatureNotValid"),
])
def test_receipt_must_sign_the_meter_info_we_sent(contract, change, code):
    session = ac(contract_receipts=True)
    run_until(car(contract, mode="ac"), session, stop_at="ChargingStatus")
    session.evse.meter_wh = 4321
    sent = loop_response(session).meter_info
    assert sent.meter_reading == 4321
    info = dataclasses.replace(sent, **{k: (sent.meter_reading + v if k == "meter_reading"
                                            else v) for k, v in change.items()})
    reply = signed_receipt(session, info, contract.leaf.key)   # the right key, a valid signature
    assert reply.response.response_code == code
    assert reply.close is (code != "OK")
