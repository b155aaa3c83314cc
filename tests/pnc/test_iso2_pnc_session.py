"""ISO 15118-2 Plug & Charge in the SECC session, through the real codec and adapter:
Contract offered only over TLS, PaymentDetails -> GenChallenge, a signed AuthorizationReq,
the eMSP's decision via the authorization request (eMAID, PEM chain, OCSP data)."""

from __future__ import annotations

import exi_schemas
import pytest

from exi_schemas.generated import iso2 as M
from secc.authorization import AuthorizationDecision, AuthorizationStatus
from secc.iso2 import Iso2Adapter, Iso2Session
from secc.pnc import xmldsig
from sim.testing.pki import Defect
from secc.v2g.core import TERMINATED
from secc.v2g.evse import RequestAuthorization
from tests.v2g_harness import Driver

EVCCID = bytes.fromhex("0A0B0C0D0E0F")


class SigningDriver(Driver):
    """The harness, plus a header Signature on the request when given."""

    def send(self, name, body, now=0.0, session_id=None, signature=None):
        if signature is None:
            return super().send(name, body, now, session_id)
        msg = M.V2G_Message(header=M.MessageHeaderType(session_id=self.session.session_id,
                                                       signature=signature),
                            body=M.BodyType(**{self.req_field[name]: body}))
        request = self.adapter.decode(0x8001, exi_schemas.encode(msg))
        reply = self.session.receive(request.name, request.body, now, request.session_id)
        if reply.response is None:   # a certificate request went to the CSMS
            return reply, None
        _, data = self.adapter.encode(reply.response_name, reply.response,
                                      self.session.session_id)
        res = exi_schemas.decode(data, "iso2").body
        return reply, next(getattr(res, k) for k in res.__slots__ if getattr(res, k) is not None)


@pytest.fixture(scope="module")
def contract(test_pki):
    return test_pki.issue_contract()


def make(tls=True, **kw):
    return SigningDriver(Iso2Session(evse_id="DE*PYS*E0001*1", tls=tls, **kw), Iso2Adapter())


def selection(option="Contract"):
    return M.PaymentServiceSelectionReqType(
        selected_payment_option=option, selected_service_list=M.SelectedServiceListType(
            selected_service=[M.SelectedServiceType(service_id=1)]))


def payment_details(contract, emaid=None, leaf=None):
    return M.PaymentDetailsReqType(
        e_maid=emaid or contract.emaid,
        contract_signature_cert_chain=M.CertificateChainType(
            id="cc1", certificate=leaf if leaf is not None else contract.leaf.cert_der,
            sub_certificates=M.SubCertificatesType(certificate=contract.sub_ca_ders)))


def until_payment_details(d):
    d.send("SessionSetupReq", M.SessionSetupReqType(evccid=EVCCID), session_id=bytes(8))
    _, sd = d.send("ServiceDiscoveryReq", M.ServiceDiscoveryReqType())
    assert sd.payment_option_list.payment_option[0] == "Contract"
    _, res = d.send("PaymentServiceSelectionReq", selection())
    assert res.response_code == "OK"
    assert d.session.state == "PaymentDetails"


def signed_authorization(challenge, key, id_="auth1"):
    req = M.AuthorizationReqType(id=id_, gen_challenge=challenge)
    return req, xmldsig.sign([req], key)


def test_contract_not_offered_without_tls_and_refused_if_chosen():
    d = make(tls=False)
    d.send("SessionSetupReq", M.SessionSetupReqType(evccid=EVCCID), session_id=bytes(8))
    _, sd = d.send("ServiceDiscoveryReq", M.ServiceDiscoveryReqType())
    assert sd.payment_option_list.payment_option == ["ExternalPayment"]
    _, res = d.send("PaymentServiceSelectionReq", selection())
    assert res.response_code == "FAILED_PaymentSelectionInvalid"


def test_pnc_accepted_sends_emaid_chain_and_ocsp_data_then_charges(contract, test_pki):
    d = make(mo_roots=[test_pki.mo_root.cert])
    until_payment_details(d)
    _, pd = d.send("PaymentDetailsReq", payment_details(contract))
    assert pd.response_code == "OK" and len(pd.gen_challenge) == 16
    req, sig = signed_authorization(pd.gen_challenge, contract.leaf.key)
    reply, auth = d.send("AuthorizationReq", req, signature=sig)
    assert auth.response_code == "OK" and auth.evse_processing == "Ongoing"
    (ask,) = [a for a in reply.actions if isinstance(a, RequestAuthorization)]
    request = ask.request
    assert (request.id_token, request.id_token_type) == (test_pki.emaid, "eMAID")
    assert request.contract_chain_pem.count("BEGIN CERTIFICATE") == 3
    assert len(request.ocsp_request_data) == 3
    assert request.ocsp_request_data[0]["serialNumber"] == \
        format(contract.leaf.cert.serial_number, "x")
    d.session.authorization_decided(AuthorizationDecision(AuthorizationStatus.ACCEPTED))
    _, auth = d.send("AuthorizationReq", req, now=0.5, signature=sig)  # the EV's repeat
    assert auth.evse_processing == "Finished"
    assert d.session.state == "ChargeParameterDiscovery"


def test_pnc_rejected_by_the_emsp_fails_and_ends(contract):
    d = make()
    until_payment_details(d)
    _, pd = d.send("PaymentDetailsReq", payment_details(contract))
    req, sig = signed_authorization(pd.gen_challenge, contract.leaf.key)
    reply, _ = d.send("AuthorizationReq", req, signature=sig)
    ask = next(a for a in reply.actions if isinstance(a, RequestAuthorization))
    assert ask.request.ocsp_request_data == []  # no MO root installed: the chain goes instead
    d.session.authorization_decided(AuthorizationDecision(AuthorizationStatus.INVALID, "no"))
    reply, auth = d.send("AuthorizationReq", req, now=0.5, signature=sig)
    assert auth.response_code == "FAILED" and reply.close
    assert d.session.state == TERMINATED


def test_revoked_contract_certificate_gets_FAILED_CertificateRevoked(contract):
    d = make()
    until_payment_details(d)
    _, pd = d.send("PaymentDetailsReq", payment_details(contract))
    req, sig = signed_authorization(pd.gen_challenge, contract.leaf.key)
    d.send("AuthorizationReq", req, signature=sig)
    d.session.authorization_decided(AuthorizationDecision(
        AuthorizationStatus.CERTIFICATE_REJECTED, "contract certificate CertificateRevoked."))
    _, auth = d.send("AuthorizationReq", req, now=0.5, signature=sig)
    assert auth.response_code == "FAILED_CertificateRevoked"


def test_wrong_challenge_gets_FAILED_ChallengeInvalid(contract):
    d = make()
    until_payment_details(d)
    _, pd = d.send("PaymentDetailsReq", payment_details(contract))
    wrong = bytes(b ^ 0xFF for b in pd.gen_challenge)
    req, sig = signed_authorization(wrong, contract.leaf.key)
    reply, auth = d.send("AuthorizationReq", req, signature=sig)
    assert auth.response_code == "FAILED_ChallengeInvalid" and reply.close
    assert not any(isinstance(a, RequestAuthorization) for a in reply.actions)


def test_signature_by_another_key_gets_FAILED_SignatureError(contract, test_pki):
    d = make()
    until_payment_details(d)
    _, pd = d.send("PaymentDetailsReq", payment_details(contract))
    req, sig = signed_authorization(pd.gen_challenge, test_pki.vehicle_leaf.key)
    _, auth = d.send("AuthorizationReq", req, signature=sig)
    assert auth.response_code == "FAILED_SignatureError"


def test_unsigned_authorization_in_pnc_gets_FAILED_SignatureError(contract):
    d = make()
    until_payment_details(d)
    _, pd = d.send("PaymentDetailsReq", payment_details(contract))
    _, auth = d.send("AuthorizationReq", M.AuthorizationReqType(id="a1",
                                                                gen_challenge=pd.gen_challenge))
    assert auth.response_code == "FAILED_SignatureError"


def test_garbage_contract_certificate_gets_FAILED_CertChainError(contract):
    d = make()
    until_payment_details(d)
    reply, pd = d.send("PaymentDetailsReq", payment_details(contract, leaf=b"\x30\x03garbage"))
    assert pd.response_code == "FAILED_CertChainError" and reply.close


def test_expired_contract_certificate_gets_FAILED_CertificateExpired(test_pki):
    expired = test_pki.issue_contract(defect=Defect.EXPIRED)
    d = make()
    until_payment_details(d)
    _, pd = d.send("PaymentDetailsReq", payment_details(expired))
    assert pd.response_code == "FAILED_CertificateExpired"


def test_emaid_other_than_the_certificates_is_refused(contract):
    d = make()
    until_payment_details(d)
    _, pd = d.send("PaymentDetailsReq", payment_details(contract, emaid="DEPYSC0000000X"))
    assert pd.response_code == "FAILED_CertChainError"


def test_certificate_installation_without_a_csms_answers_FAILED_NoCertificateAvailable(
        test_pki):
    d = make()
    until_payment_details(d)
    req = installation_req(test_pki)
    reply, res = d.send("CertificateInstallationReq", req,
                        signature=xmldsig.sign([req], test_pki.vehicle_leaf.key))
    assert res is None and [type(a).__name__ for a in reply.actions] == ["RequestCertificate"]
    answer = d.session.certificate_answered(None, 0.0)   # the charger cannot ask a CSMS
    assert answer.response.response_code == "FAILED_NoCertificateAvailable"
    assert d.session.state == TERMINATED


def installation_req(test_pki, cert=None):
    return M.CertificateInstallationReqType(
        id="ci1", oem_provisioning_cert=cert or test_pki.vehicle_leaf.cert_der,
        list_of_root_certificate_i_ds=M.ListOfRootCertificateIDsType(root_certificate_id=[
            M.X509IssuerSerialType(x509_issuer_name="CN=V2G Root CA", x509_serial_number=1)]))


@pytest.mark.parametrize("defect, code", [
    ("unsigned", "FAILED_SignatureError"),
    ("other key", "FAILED_SignatureError"),
    ("expired OEM certificate", "FAILED_CertificateExpired"),
    ("garbage OEM certificate", "FAILED_CertChainError"),
])
def test_certificate_installation_checked_before_it_goes_to_the_csms(test_pki, defect, code):
    d = make()
    until_payment_details(d)
    key = test_pki.vehicle_leaf.key
    cert = None
    if defect == "expired OEM certificate":
        expired = test_pki.issue_leaf(test_pki.oem_sub, test_pki.vin, "pysecc OEM",
                                      domain="OEM", defect=Defect.EXPIRED)
        cert, key = expired.cert_der, expired.key
    elif defect == "garbage OEM certificate":
        cert = b"\x30\x03abc"
    elif defect == "other key":
        key = test_pki.contract_leaf.key
    req = installation_req(test_pki, cert)
    signature = None if defect == "unsigned" else xmldsig.sign([req], key)
    reply, res = d.send("CertificateInstallationReq", req, signature=signature)
    assert res.response_code == code and reply.close
    assert not any(type(a).__name__ == "RequestCertificate" for a in reply.actions)


def test_eim_authorization_unchanged_over_tls():
    d = make()
    d.send("SessionSetupReq", M.SessionSetupReqType(evccid=EVCCID), session_id=bytes(8))
    d.send("ServiceDiscoveryReq", M.ServiceDiscoveryReqType())
    d.send("PaymentServiceSelectionReq", selection("ExternalPayment"))
    assert d.session.state == "Authorization"
    reply, auth = d.send("AuthorizationReq", M.AuthorizationReqType())
    ask = next(a for a in reply.actions if isinstance(a, RequestAuthorization))
    assert ask.request.id_token_type == "MacAddress" and auth.evse_processing == "Ongoing"


def test_payment_details_out_of_sequence_after_eim_selection(contract):
    d = make()
    d.send("SessionSetupReq", M.SessionSetupReqType(evccid=EVCCID), session_id=bytes(8))
    d.send("ServiceDiscoveryReq", M.ServiceDiscoveryReqType())
    d.send("PaymentServiceSelectionReq", selection("ExternalPayment"))
    _, pd = d.send("PaymentDetailsReq", payment_details(contract))
    assert pd.response_code == "FAILED_SequenceError"


def test_board_can_switch_plug_and_charge_off_over_tls(contract):
    d = make(offer_contract=False)
    d.send("SessionSetupReq", M.SessionSetupReqType(evccid=EVCCID), session_id=bytes(8))
    _, sd = d.send("ServiceDiscoveryReq", M.ServiceDiscoveryReqType())
    assert sd.payment_option_list.payment_option == ["ExternalPayment"]
    _, res = d.send("PaymentServiceSelectionReq", selection())
    assert res.response_code == "FAILED_PaymentSelectionInvalid"


def test_hyphenated_emaid_goes_to_the_emsp_without_hyphens(contract, test_pki):
    d = make()
    until_payment_details(d)
    emaid = test_pki.emaid
    hyphenated = f"{emaid[:2]}-{emaid[2:5]}-{emaid[5:]}"
    _, pd = d.send("PaymentDetailsReq", payment_details(contract, emaid=hyphenated))
    assert pd.response_code == "OK"
    req, sig = signed_authorization(pd.gen_challenge, contract.leaf.key)
    reply, _ = d.send("AuthorizationReq", req, signature=sig)
    ask = next(a for a in reply.actions if isinstance(a, RequestAuthorization))
    assert ask.request.id_token == emaid


def test_each_session_gets_its_own_random_challenge(contract):
    challenges = set()
    for _ in range(3):
        d = make()
        until_payment_details(d)
        challenges.add(d.send("PaymentDetailsReq", payment_details(contract))[1].gen_challenge)
    assert len(challenges) == 3


# --- [V2G2-684]: the repeats after AuthorizationRes(Ongoing) carry no Id/GenChallenge/Signature


def _ongoing(d, contract):
    until_payment_details(d)
    _, pd = d.send("PaymentDetailsReq", payment_details(contract))
    req, sig = signed_authorization(pd.gen_challenge, contract.leaf.key)
    reply, auth = d.send("AuthorizationReq", req, signature=sig)
    assert (auth.response_code, auth.evse_processing) == ("OK", "Ongoing")
    return pd.gen_challenge, reply


def test_bare_repeat_while_ongoing_is_accepted_and_the_emsp_asked_once(contract):
    d = make()
    _, first = _ongoing(d, contract)
    asks = [a for a in first.actions if isinstance(a, RequestAuthorization)]
    for n in range(3):  # the EV polls with bare requests, as Josev and real cars do
        reply, auth = d.send("AuthorizationReq", M.AuthorizationReqType(), now=0.5 + n)
        assert (auth.response_code, auth.evse_processing) == ("OK", "Ongoing")
        asks += [a for a in reply.actions if isinstance(a, RequestAuthorization)]
    assert len(asks) == 1 and d.session.state == "Authorization"
    d.session.authorization_decided(AuthorizationDecision(AuthorizationStatus.ACCEPTED))
    _, auth = d.send("AuthorizationReq", M.AuthorizationReqType(), now=4.0)
    assert (auth.response_code, auth.evse_processing) == ("OK", "Finished")
    assert d.session.state == "ChargeParameterDiscovery"


def test_bare_first_authorization_in_pnc_gets_FAILED_ChallengeInvalid(contract):
    d = make()
    until_payment_details(d)
    d.send("PaymentDetailsReq", payment_details(contract))
    reply, auth = d.send("AuthorizationReq", M.AuthorizationReqType())
    assert auth.response_code == "FAILED_ChallengeInvalid" and reply.close
    assert not any(isinstance(a, RequestAuthorization) for a in reply.actions)
    assert d.session.state == TERMINATED


def test_repeat_with_a_different_challenge_gets_FAILED_ChallengeInvalid(contract):
    d = make()
    challenge, _ = _ongoing(d, contract)
    other = bytes(b ^ 0x5A for b in challenge)
    req, sig = signed_authorization(other, contract.leaf.key, id_="auth2")
    reply, auth = d.send("AuthorizationReq", req, now=0.5, signature=sig)
    assert auth.response_code == "FAILED_ChallengeInvalid" and reply.close
    assert d.session.state == TERMINATED
    # the session is over: a decision arriving now authorizes nothing
    d.session.authorization_decided(AuthorizationDecision(AuthorizationStatus.ACCEPTED))
    assert d.session.state == TERMINATED


def test_signed_repeat_is_checked_again(contract, test_pki):
    d = make()
    challenge, _ = _ongoing(d, contract)
    req, _ = signed_authorization(challenge, contract.leaf.key)
    forged = xmldsig.sign([req], test_pki.issue_contract().leaf.key)  # another contract's key
    _, auth = d.send("AuthorizationReq", req, now=0.5, signature=forged)
    assert auth.response_code == "FAILED_SignatureError"
    assert d.session.state == TERMINATED


# --- CertificateUpdateReq: checked like PaymentDetails before it goes to the CSMS -------------


@pytest.mark.parametrize("defect, code", [
    (None, None),                                   # forwarded: RequestCertificate, no answer
    ("unsigned", "FAILED_SignatureError"),
    ("other key", "FAILED_SignatureError"),
    ("foreign chain", "FAILED_CertChainError"),
    ("sub-CAs inverted", "FAILED_CertChainError"),
    ("eMAID not the certificate's", "FAILED"),
    ("expired", "FAILED_CertificateExpired"),
])
def test_certificate_update_checked_before_it_goes_to_the_csms(test_pki, contract, defect, code):
    from sim.testing.pki import TestPKI

    d = make(mo_roots=[test_pki.mo_root.cert])
    until_payment_details(d)
    used, key, emaid = contract, contract.leaf.key, contract.emaid
    if defect == "foreign chain":
        used = TestPKI().issue_contract()
        key = used.leaf.key
    elif defect == "expired":
        used = test_pki.issue_contract(defect=Defect.EXPIRED)
        key = used.leaf.key
    elif defect == "other key":
        key = test_pki.vehicle_leaf.key
    elif defect == "eMAID not the certificate's":
        emaid = "DEPYSC7654321X"
    subs = used.sub_ca_ders[::-1] if defect == "sub-CAs inverted" else used.sub_ca_ders
    req = M.CertificateUpdateReqType(
        id="cu1", contract_signature_cert_chain=M.CertificateChainType(
            certificate=used.leaf.cert_der, sub_certificates=M.SubCertificatesType(
                certificate=subs)),
        e_maid=emaid, list_of_root_certificate_i_ds=M.ListOfRootCertificateIDsType(
            root_certificate_id=[M.X509IssuerSerialType(x509_issuer_name="CN=V2G Root CA",
                                                        x509_serial_number=1)]))
    signature = None if defect == "unsigned" else xmldsig.sign([req], key)
    reply, res = d.send("CertificateUpdateReq", req, signature=signature)
    forwarded = any(type(a).__name__ == "RequestCertificate" for a in reply.actions)
    if code is None:
        assert res is None and forwarded
    else:
        assert res.response_code == code and reply.close and not forwarded
