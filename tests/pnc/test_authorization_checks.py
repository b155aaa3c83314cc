"""Which code a bad PnC AuthorizationReq gets (conformance rows Authorization_007/_010/_011):
the signature is checked before the challenge, so a body changed after signing is
FAILED_SignatureError even when the change is to the GenChallenge, and only a body the
contract key did sign can be FAILED_ChallengeInvalid."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

import exi_schemas
from exi_schemas.generated import iso2 as M
from secc.iso2 import Iso2Adapter, Iso2Session
from secc.pnc import xmldsig
from secc.v2gtp import PayloadType
from tests.pnc.test_ev_pnc import car, run_until


@pytest.fixture(scope="module")
def contract(test_pki):
    return test_pki.issue_contract()


def send(session, req, signature):
    msg = M.V2G_Message(header=M.MessageHeaderType(session_id=session.session_id,
                                                   signature=signature),
                        body=M.BodyType(authorization_req=req))
    request = Iso2Adapter().decode(PayloadType.EXI, exi_schemas.encode(msg))
    return session.receive(request.name, request.body, 5.0, request.session_id)


def flipped(challenge: bytes) -> bytes:
    return bytes([challenge[0] ^ 0x01]) + challenge[1:]


@pytest.mark.parametrize("how, code", [
    ("good", "OK"),
    ("signed other challenge", "FAILED_ChallengeInvalid"),     # _007
    ("wrong key", "FAILED_SignatureError"),                    # _010
    ("challenge changed after signing", "FAILED_SignatureError"),   # _011
    ("Id changed after signing", "FAILED_SignatureError"),
])
def test_authorization_code_per_defect(contract, how, code):
    session = Iso2Session(tls=True)
    run_until(car(contract), session, stop_at="Authorization")
    assert session.state == "Authorization"
    ours = session.gen_challenge
    req = M.AuthorizationReqType(id="ID1", gen_challenge=ours)
    key = contract.leaf.key
    if how == "signed other challenge":
        req = dataclasses.replace(req, gen_challenge=flipped(ours))
    if how == "wrong key":
        key = ec.generate_private_key(ec.SECP256R1())
    signature = xmldsig.sign([req], key)
    if how == "challenge changed after signing":
        req = dataclasses.replace(req, gen_challenge=flipped(ours))
    if how == "Id changed after signing":
        req = dataclasses.replace(req, id="ID2")
    reply = send(session, req, signature)
    assert reply.response.response_code == code
    assert reply.close is (code != "OK")
