"""Bad Plug & Charge input, one table: what the car (or the CSMS behind the bridge) gets wrong,
the ISO 15118-2 ResponseCode the SECC must answer, the log line a field engineer reads, and the
safe state after it.

Every case runs through the real codec and adapter (the request EXI-encoded with its header
signature, decoded by ``Iso2Adapter``, answered by ``Iso2Session``, the response encoded and
decoded again). The CSMS's part is the ``AuthorizationDecision`` the bus authorizer makes of its
answer (``secc.bus.authorizer``: revoked/rejected certificate status, NotImplemented ->
Unknown, no answer -> Timeout; the bridge side of those is ``tests/ocpp_bridge``).

For each case: the response code; a ``request failed`` / ``request answered with failure`` log
line naming the request, the code and why; the session Terminated with ``EnterSafeState`` and
the connection closed; and no ``Authorized`` event (the contactors can never close).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from exi_schemas.generated import iso2 as M
from secc.authorization import AuthorizationDecision, AuthorizationStatus
from secc.iso2 import Iso2Adapter, Iso2Session
from secc.pnc import xmldsig
from secc.v2g.core import TERMINATED
from secc.v2g.evse import EnterSafeState, PublishEvent, RequestAuthorization
from sim.testing.pki import Credential, Defect, TestPKI, _build, _name
from tests.pnc.test_iso2_pnc_session import (
    SigningDriver,
    payment_details,
    signed_authorization,
    until_payment_details,
)

ONGOING_TIMEOUT = 60.0  # V2G_SECC_Ongoing_Timeout default


@dataclass
class Case:
    """``run(pki, contract, driver) -> (request name, response)`` plays the bad session up to
    the refusal; ``code`` is what the SECC must answer; ``why`` a word of the log line."""

    key: str
    run: Callable
    code: str
    why: str
    mo_root: bool = True       # the MO root is installed in the certificate directory


def _authorize(d, contract, key=None, challenge=None, id_="auth1", now=0.0):
    _, pd = d.send("PaymentDetailsReq", payment_details(contract))
    req, sig = signed_authorization(challenge or pd.gen_challenge, key or contract.leaf.key,
                                    id_)
    return pd, d.send("AuthorizationReq", req, now=now, signature=sig)


def _csms_says(decision: AuthorizationDecision, now=0.5, contract_of: Callable | None = None):
    def run(pki, contract, d):
        if contract_of is not None:
            contract = contract_of(pki, contract)
        (reply, res) = _authorize(d, contract)[1]
        assert res.response_code == "OK" and res.evse_processing == "Ongoing"
        assert any(isinstance(a, RequestAuthorization) for a in reply.actions)
        d.session.authorization_decided(decision)
        return "AuthorizationReq", d.send("AuthorizationReq", M.AuthorizationReqType(), now=now)
    return run


def _details_with(contract_of: Callable):
    def run(pki, contract, d):
        bad = contract_of(pki, contract)
        return "PaymentDetailsReq", d.send("PaymentDetailsReq", payment_details(bad))
    return run


def _with_sub_ca(defect: Defect):
    """A contract whose lower MO sub-CA has ``defect``."""
    def make(pki: TestPKI, contract):
        sub1 = contract.sub_cas[1]
        sub2 = pki.issue_ca(sub1, "MO Sub-CA 2", "pysecc eMSP", path_length=0, defect=defect)
        leaf = pki.issue_leaf(sub2, pki.emaid, "pysecc eMSP", domain="MO",
                              usage={"digital_signature": True, "key_agreement": True})
        return dataclasses.replace(contract, leaf=leaf, sub_cas=[sub2, sub1])
    return make


def _leaf(defect: Defect):
    return lambda pki, contract: pki.issue_contract(defect=defect)


def _unknown_root(pki: TestPKI, contract):
    """The same eMAID under another eMSP's MO root, which this charger has not installed."""
    root = pki.make_root("Other eMSP Root CA", "other eMSP", "MO")
    sub1 = pki.issue_ca(root, "Other Sub-CA 1", "other eMSP", path_length=1)
    sub2 = pki.issue_ca(sub1, "Other Sub-CA 2", "other eMSP", path_length=0)
    leaf = pki.issue_leaf(sub2, pki.emaid, "other eMSP", domain="MO")
    return dataclasses.replace(contract, leaf=leaf, sub_cas=[sub2, sub1])


def _forged_root(pki, contract):
    """A chain whose top names our MO root, but signed by another key (a forged root)."""
    return TestPKI().issue_contract(pki.emaid)


def _oversized(pki: TestPKI, contract):
    """Four sub-CAs: what the schema allows, [V2G2-656] allows 2."""
    issuer, subs = pki.mo_root, []
    for n in range(4):
        issuer = pki.issue_ca(issuer, f"MO Sub-CA {n}", "pysecc eMSP", path_length=4 - n)
        subs.insert(0, issuer)
    leaf = pki.issue_leaf(issuer, pki.emaid, "pysecc eMSP", domain="MO")
    return dataclasses.replace(contract, leaf=leaf, sub_cas=subs)


def _malformed(pki, contract):
    return _raw_leaf(contract, b"\x30\x82\x01\x00" + bytes(range(64)))


def _raw_leaf(contract, der: bytes):
    class Raw:
        cert_der = der
        key = contract.leaf.key
    return dataclasses.replace(contract, leaf=Raw())


def _malformed_details(pki, contract, d):
    bad = _malformed(pki, contract)
    return "PaymentDetailsReq", d.send("PaymentDetailsReq", payment_details(
        bad, emaid=pki.emaid))


def _emaid_mismatch(pki, contract, d):
    req = payment_details(contract, emaid="DEPYSC9999999X")
    return "PaymentDetailsReq", d.send("PaymentDetailsReq", req)


def _wrong_curve(pki, contract):
    """A contract key on another curve than P-256: ISO-2 signs with secp256r1 only."""
    key = ec.generate_private_key(ec.SECP384R1())
    sub2 = contract.sub_cas[0]
    cert = _build(_name(pki.emaid, "pysecc eMSP", "MO"), key.public_key(), sub2.cert.subject,
                  sub2.key, ca=False, path_length=None, now=pki.now, days=30, defect=None,
                  signature_hash=hashes.SHA256())
    return dataclasses.replace(contract, leaf=Credential(cert, key))


def _broken_signature(pki, contract, d):
    _, pd = d.send("PaymentDetailsReq", payment_details(contract))
    req, sig = signed_authorization(pd.gen_challenge, contract.leaf.key)
    value = bytearray(sig.signature_value.value)
    value[10] ^= 0x40
    sig.signature_value.value = bytes(value)
    return "AuthorizationReq", d.send("AuthorizationReq", req, signature=sig)


def _signature_over_other_element(pki, contract, d):
    """A valid contract signature, but its Reference names another element (a
    MeteringReceiptReq made earlier), not this AuthorizationReq."""
    _, pd = d.send("PaymentDetailsReq", payment_details(contract))
    req = M.AuthorizationReqType(id="auth1", gen_challenge=pd.gen_challenge)
    other = M.MeteringReceiptReqType(id="mr1", session_id=bytes(8),
                                     meter_info=M.MeterInfoType(meter_id="M1"))
    return "AuthorizationReq", d.send("AuthorizationReq", req,
                                      signature=xmldsig.sign([other], contract.leaf.key))


def _signature_over_other_challenge(pki, contract, d):
    """Signed over an AuthorizationReq with another GenChallenge (a replayed signature)."""
    _, pd = d.send("PaymentDetailsReq", payment_details(contract))
    req = M.AuthorizationReqType(id="auth1", gen_challenge=pd.gen_challenge)
    old = M.AuthorizationReqType(id="auth1", gen_challenge=bytes(16))
    return "AuthorizationReq", d.send("AuthorizationReq", req,
                                      signature=xmldsig.sign([old], contract.leaf.key))


def _unsigned(pki, contract, d):
    _, pd = d.send("PaymentDetailsReq", payment_details(contract))
    return "AuthorizationReq", d.send("AuthorizationReq", M.AuthorizationReqType(
        id="auth1", gen_challenge=pd.gen_challenge))


def _repeat_other_challenge(pki, contract, d):
    pd, (_, first) = _authorize(d, contract)
    assert first.evse_processing == "Ongoing"
    other = bytes(b ^ 0x33 for b in pd.gen_challenge)
    req, sig = signed_authorization(other, contract.leaf.key, "auth2")
    return "AuthorizationReq", d.send("AuthorizationReq", req, now=1.0, signature=sig)


def _csms_silent(pki, contract, d):
    """No decision from the CSMS (bus or CSMS down, no timeout reply either): the EV's
    repeats get Ongoing until V2G_SECC_Ongoing_Timeout, then FAILED."""
    (_, first) = _authorize(d, contract)[1]
    assert first.evse_processing == "Ongoing"
    _, res = d.send("AuthorizationReq", M.AuthorizationReqType(), now=ONGOING_TIMEOUT / 2)
    assert res.evse_processing == "Ongoing"
    return "AuthorizationReq", d.send("AuthorizationReq", M.AuthorizationReqType(),
                                      now=ONGOING_TIMEOUT + 1)


def _metering_receipt_bad_signature(pki, contract, d):
    """After a good PnC authorization, a MeteringReceiptReq signed by another key."""
    d.session.authorization_decided(AuthorizationDecision(AuthorizationStatus.ACCEPTED))
    (_, auth) = _authorize(d, contract)[1]
    assert auth.evse_processing == "Finished"
    d.session.state = "CurrentDemand"  # the charge loop itself is not what this case tests
    receipt = M.MeteringReceiptReqType(id="mr1", session_id=d.session.session_id,
                                       sa_schedule_tuple_id=1,
                                       meter_info=M.MeterInfoType(meter_id="PYSECC-METER"))
    stranger = ec.generate_private_key(ec.SECP256R1())
    return "MeteringReceiptReq", d.send("MeteringReceiptReq", receipt,
                                        signature=xmldsig.sign([receipt], stranger))


def _cert_rejected(status: str, contract_of: Callable | None = None):
    return _csms_says(AuthorizationDecision(AuthorizationStatus.CERTIFICATE_REJECTED,
                                            f"contract certificate {status}."),
                      contract_of=contract_of)


CASES = [
    Case("expired-contract", _details_with(_leaf(Defect.EXPIRED)),
         "FAILED_CertificateExpired", "expired"),
    Case("not-yet-valid-contract", _details_with(_leaf(Defect.NOT_YET_VALID)),
         "FAILED_CertChainError", "not_yet_valid"),
    Case("expired-sub-ca", _details_with(_with_sub_ca(Defect.EXPIRED)),
         "FAILED_CertificateExpired", "expired"),
    Case("not-yet-valid-sub-ca", _details_with(_with_sub_ca(Defect.NOT_YET_VALID)),
         "FAILED_CertChainError", "not_yet_valid"),
    Case("sub-ca-signed-by-stranger", _details_with(_with_sub_ca(Defect.WRONG_ISSUER)),
         "FAILED_CertChainError", "signature"),
    Case("revoked-contract (CSMS)", _cert_rejected("CertificateRevoked"),
         "FAILED_CertificateRevoked", "CertificateRevoked"),
    Case("revoked-sub-ca (CSMS: OCSP of the sub-CA)",
         _cert_rejected("CertificateRevoked (MO Sub-CA 2)"),
         "FAILED_CertificateRevoked", "Sub-CA 2"),
    # an MO root the charger lacks: not refused locally but sent to the CSMS for central
    # validation (OCPP 2.0.1 C07, docs/pnc.md); the CSMS's CertChainError is then the answer
    Case("unknown-mo-root (none installed)", _cert_rejected("CertChainError"),
         "FAILED_CertChainError", "CertChainError", mo_root=False),
    Case("unknown-mo-root (other roots installed)",
         _cert_rejected("CertChainError", contract_of=_unknown_root),
         "FAILED_CertChainError", "CertChainError"),
    Case("forged-mo-root (our root's name, another key)", _details_with(_forged_root),
         "FAILED_CertChainError", "signature"),
    Case("wrong-key-usage", _details_with(_leaf(Defect.WRONG_KEY_USAGE)),
         "FAILED_CertChainError", "lacks digitalSignature"),
    Case("wrong-curve", _details_with(_wrong_curve),
         "FAILED_CertChainError", "secp256r1"),
    Case("malformed-certificate", _malformed_details,
         "FAILED_CertChainError", "not a valid X.509"),
    Case("oversized-chain", _details_with(_oversized),
         "FAILED_CertChainError", "sub-CA"),
    Case("emaid-mismatch", _emaid_mismatch, "FAILED_CertChainError", "eMAID"),
    Case("broken-signature", _broken_signature, "FAILED_SignatureError", "BadSignature"),
    Case("signature-over-wrong-element", _signature_over_other_element,
         "FAILED_SignatureError", "MissingReference"),
    Case("signature-over-old-challenge", _signature_over_other_challenge,
         "FAILED_SignatureError", "BadDigest"),
    Case("unsigned-authorization", _unsigned, "FAILED_SignatureError", "no Signature"),
    Case("repeat-with-other-challenge", _repeat_other_challenge,
         "FAILED_ChallengeInvalid", "GenChallenge is not ours"),
    Case("csms-timeout (bus answers Timeout)",
         _csms_says(AuthorizationDecision(AuthorizationStatus.TIMEOUT,
                                          "no answer from the CSMS within 10 s")),
         "FAILED", "Timeout"),
    Case("csms-silent (no decision before the Ongoing timeout)", _csms_silent,
         "FAILED", "no decision in time"),
    Case("csms-not-implemented (Authorize with certificate data)",
         _csms_says(AuthorizationDecision(
             AuthorizationStatus.UNKNOWN, "CSMS lacks this capability: Plug&Charge contract "
                                          "validation (Authorize NotImplemented)")),
         "FAILED", "NotImplemented"),
    Case("csms-rejects-contract", _csms_says(AuthorizationDecision(
        AuthorizationStatus.INVALID, "CSMS said Invalid")), "FAILED", "Invalid"),
    Case("metering-receipt-bad-signature", _metering_receipt_bad_signature,
         "FAILED_MeteringSignatureNotValid", "BadSignature"),
]


@pytest.fixture(autouse=True)
def _pysecc_records_reach_caplog(caplog):
    """caplog sees the pysecc loggers even after an in-process ``secc`` command (or the demo)
    turned their propagation off; each record once."""
    logger = logging.getLogger("pysecc")
    saved = logger.propagate
    logger.propagate = False
    logger.addHandler(caplog.handler)
    yield
    logger.removeHandler(caplog.handler)
    logger.propagate = saved


@pytest.fixture(scope="module")
def pki():
    return TestPKI()


@pytest.fixture(scope="module")
def good_contract(pki):
    return pki.issue_contract()


def test_at_least_fifteen_distinct_bad_cases():
    assert len({c.key for c in CASES}) == len(CASES) >= 15


@pytest.mark.parametrize("case", CASES, ids=[c.key for c in CASES])
def test_bad_pnc_input_gets_its_code_a_log_line_and_the_safe_state(case, pki, good_contract,
                                                                  caplog):
    session = Iso2Session(evse_id="DE*PYS*E0001*1", tls=True,
                          mo_roots=[pki.mo_root.cert] if case.mo_root else [],
                          receipt_required=True)
    d = SigningDriver(session, Iso2Adapter())
    until_payment_details(d)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pysecc"):
        name, (reply, res) = case.run(pki, good_contract, d)
    assert res.response_code == case.code, res
    assert reply.close and session.state == TERMINATED
    assert any(isinstance(a, EnterSafeState) for a in reply.actions)
    assert not any(isinstance(a, PublishEvent) and a.kind == "Authorized"
                   for a in reply.actions)
    lines = [r for r in caplog.records if r.name.startswith("pysecc")
             and getattr(r, "response_code", None) == case.code
             and getattr(r, "request", None) == name]
    assert lines, [r.getMessage() for r in caplog.records]
    detail = " ".join(str(getattr(r, "detail", "")) for r in lines)
    assert case.why.lower() in detail.lower(), detail
    # nothing more is answered: a later request finds the session over
    after, _ = d.send("SessionStopReq", M.SessionStopReqType(charging_session="Terminate"),
                      now=ONGOING_TIMEOUT + 5)
    assert after.response is None or session.state == TERMINATED


def test_the_same_session_with_good_input_is_authorized(pki, good_contract):
    """The control for the table: nothing in the set-up itself makes a case fail."""
    d = SigningDriver(Iso2Session(evse_id="DE*PYS*E0001*1", tls=True,
                                  mo_roots=[pki.mo_root.cert]), Iso2Adapter())
    until_payment_details(d)
    (_, first) = _authorize(d, good_contract)[1]
    assert first.evse_processing == "Ongoing"
    d.session.authorization_decided(AuthorizationDecision(AuthorizationStatus.ACCEPTED))
    reply, res = d.send("AuthorizationReq", M.AuthorizationReqType(), now=0.5)
    assert (res.response_code, res.evse_processing) == ("OK", "Finished")
    assert any(isinstance(a, PublishEvent) and a.kind == "Authorized" for a in reply.actions)
    assert d.session.state == "ChargeParameterDiscovery"
    assert dt.datetime.now(dt.timezone.utc) < good_contract.leaf.cert.not_valid_after_utc
