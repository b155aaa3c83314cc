"""ISO 15118-20 CertificateInstallation through the codec: the SECC offers the service with
Plug & Charge, forwards the car's signed request to the CSMS (RequestCertificate ->
Get15118EVCertificate with the -20 schema) and hands the CPS's CertificateInstallationRes to the
car with the CPS signature intact; a refusal, no CSMS or garbage is
WARNING_NoCertificateAvailable (the -20 code of secc/v2g/failures.py) or FAILED, with a log
line and the safe state."""

from __future__ import annotations

import base64
import logging

import pytest

import exi_schemas
from exi_schemas.generated import iso20 as cm
from secc.pnc import installation, xmldsig
from secc.pnc.installation import CertificateAnswer
from secc.v2g.core import TERMINATED
from secc.v2g.evse import EnterSafeState, RequestCertificate
from sim.testing.pki import TestPKI

from .conftest import WALL, make_secc

SID = bytes(8)


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
def pki20() -> TestPKI:
    return TestPKI.iso20()


def header(signature=None, session_id=SID):
    return cm.MessageHeaderType(session_id=session_id, time_stamp=int(WALL),
                                signature=signature)


def send(adapter, core, name, message, now=0.0):
    """Encode the request as the car would, decode it as the SECC does, answer."""
    data = exi_schemas.encode(message, element=name)
    request = adapter.decode(0x8002, data)
    reply = core.receive(request.name, request.body, now, request.session_id)
    return reply, decode_reply(adapter, core, reply)


def decode_reply(adapter, core, reply):
    if reply.response is None:
        return None
    payload_type, payload = adapter.encode(reply.response_name, reply.response, core.session_id)
    return exi_schemas.decode_element(payload, "iso20")[1]


def until_authorization(pki20, tls=True):
    adapter, core = make_secc("dc", tls=tls, mo_roots=[pki20.mo_root.cert])
    _, res = send(adapter, core, "SessionSetupReq",
                  cm.SessionSetupReqType(header=header(), evccid="WPYSECC0000000001"))
    sid = res.header.session_id
    _, setup = send(adapter, core, "AuthorizationSetupReq",
                    cm.AuthorizationSetupReqType(header=header(session_id=sid)))
    return adapter, core, sid, setup


def installation_request(pki20, sid):
    chain = cm.SignedCertificateChainType(
        id="id1", certificate=pki20.vehicle_leaf.cert_der,
        sub_certificates=cm.SubCertificatesType(certificate=[pki20.oem_sub.cert_der]))
    request = cm.CertificateInstallationReqType(
        header=header(session_id=sid), oem_provisioning_certificate_chain=chain,
        list_of_root_certificate_i_ds=cm.ListOfRootCertificateIDsType(
            root_certificate_id=[cm.X509IssuerSerialType(
                x509_issuer_name=pki20.v2g_root.cert.subject.rfc4514_string(),
                x509_serial_number=pki20.v2g_root.cert.serial_number)]),
        maximum_contract_certificate_chains=1)
    algorithms = {"digest_method": xmldsig.SHA512, "signature_method": xmldsig.ECDSA_SHA512}
    request.header.signature = xmldsig.sign([chain], pki20.vehicle_leaf.key, **algorithms)
    return request


def cps_response(pki20):
    """What a CPS sends back: a contract in SignedInstallationData, signed by the CPS."""
    contract = pki20.issue_contract()
    cps, cps_subs = pki20.cps_chain()
    signed = cm.SignedInstallationDataType(
        id="id1", contract_certificate_chain=cm.ContractCertificateChainType(
            certificate=contract.leaf.cert_der,
            sub_certificates=cm.SubCertificatesType(certificate=contract.sub_ca_ders)),
        ecdh_curve="SECP521", dh_public_key=b"\x04" + bytes(132),
        secp521_encrypted_private_key=bytes(range(94)))
    signature = xmldsig.sign([signed], cps.key, digest_method=xmldsig.SHA512,
                             signature_method=xmldsig.ECDSA_SHA512)
    res = cm.CertificateInstallationResType(
        header=header(signature, session_id=bytes.fromhex("0badc0de0badc0de")),
        response_code="OK", evse_processing="Finished",
        cps_certificate_chain=cm.CertificateChainType(
            certificate=cps.cert_der,
            sub_certificates=cm.SubCertificatesType(certificate=[c.cert_der for c in cps_subs])),
        signed_installation_data=signed, remaining_contract_certificate_chains=0)
    exi = base64.b64encode(exi_schemas.encode(res, element="CertificateInstallationRes"))
    return contract, cps, exi.decode()


def test_service_offered_with_pnc_only(pki20):
    *_, setup = until_authorization(pki20, tls=True)
    assert setup.certificate_installation_service is True
    *_, setup = until_authorization(pki20, tls=False)
    assert setup.certificate_installation_service is False


def test_request_goes_to_the_csms_and_the_cps_answer_reaches_the_car_signed(pki20, caplog):
    adapter, core, sid, _ = until_authorization(pki20)
    request = installation_request(pki20, sid)
    reply, res = send(adapter, core, "CertificateInstallationReq", request)
    assert res is None and not reply.close  # nothing for the car until the CSMS answered
    (ask,) = [a for a in reply.actions if isinstance(a, RequestCertificate)]
    assert ask.schema_version == "urn:iso:std:iso:15118:-20:CommonMessages"
    assert ask.action == "Install" and ask.session_id == sid.hex()
    name, forwarded = exi_schemas.decode_element(base64.b64decode(ask.exi_request), "iso20")
    assert name == "CertificateInstallationReq"
    xmldsig.verify(forwarded.header.signature,  # the eMSP can check the OEM signature
                   {"id1": forwarded.oem_provisioning_certificate_chain},
                   pki20.vehicle_leaf.cert.public_key())

    contract, cps, exi = cps_response(pki20)
    with caplog.at_level(logging.INFO, logger="pysecc"):
        reply = core.certificate_answered(CertificateAnswer("Accepted", exi), 0.5)
    res = decode_reply(adapter, core, reply)
    assert res.response_code == "OK" and not reply.close
    assert res.header.session_id == sid  # our session, the CPS's signature
    xmldsig.verify(res.header.signature, {"id1": res.signed_installation_data},
                   cps.cert.public_key())
    assert res.signed_installation_data.contract_certificate_chain.certificate == \
        contract.leaf.cert_der
    assert core.state == "WaitAuthorization" or "Authorization" in str(core.state)
    assert any("forwarded to the EV" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("answer", "code", "why"), [
    (None, "WARNING_NoCertificateAvailable", "cannot reach a CSMS"),
    (CertificateAnswer("Unavailable", reason="Get15118EVCertificate: no answer within 4.5 s"),
     "WARNING_NoCertificateAvailable", "no answer"),
    (CertificateAnswer("Failed", reason="eMSP refused"), "WARNING_NoCertificateAvailable",
     "eMSP refused"),
    (CertificateAnswer("Accepted", base64.b64encode(b"\x80\x00\x01").decode()), "FAILED",
     "not ISO 15118-20 EXI"),
], ids=["no-csms", "csms-timeout", "emsp-refused", "garbage"])
def test_no_certificate_ends_in_the_safe_state_with_its_code(pki20, caplog, answer, code, why):
    adapter, core, sid, _ = until_authorization(pki20)
    send(adapter, core, "CertificateInstallationReq", installation_request(pki20, sid))
    with caplog.at_level(logging.WARNING, logger="pysecc"):
        reply = core.certificate_answered(answer, 0.5)
    res = decode_reply(adapter, core, reply)
    assert res.response_code == code
    assert reply.close and core.state == TERMINATED
    assert any(isinstance(a, EnterSafeState) for a in reply.actions)
    assert any(why in str(getattr(r, "detail", "")) + r.getMessage() for r in caplog.records)


def test_parse_refuses_an_ok_response_without_the_cps_signature(pki20):
    _, _, exi = cps_response(pki20)
    _, res = exi_schemas.decode_element(base64.b64decode(exi), "iso20")
    res.header.signature = None
    unsigned = base64.b64encode(exi_schemas.encode(res, element="CertificateInstallationRes"))
    with pytest.raises(installation.InstallationResponseError, match="CPS signature"):
        installation.parse_response_exi_iso20(unsigned.decode())
