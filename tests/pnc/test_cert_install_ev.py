"""The EV simulator's contract installation against the real ISO-2 SECC session and the test
CSMS's eMSP/CPS, all sans-I/O in one process: the car signs CertificateInstallationReq with its
OEM key, the CSMS checks it and issues a contract, the car checks the CPS chain and signature,
decrypts the contract key and authorizes with it — and refuses tampered or foreign answers."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from secc.iso2 import Iso2Adapter, Iso2Session
from secc.pnc.installation import CertificateAnswer
from secc.v2g.evse import RequestAuthorization, RequestCertificate
from sim.csms import ContractProvisioning
from sim.evcc.core import EvccConfig, Finished, ProvisioningCredential
from secc.pnc.signed import SignedResponse
from sim.evcc.iso2 import Iso2Evcc


def run(evcc, provisioning, *, with_signature=True, tamper=None, until="Authorization"):
    """Drive car and SECC until the car sends ``until`` (returned with the SECC's reply to
    it) or finishes. ``with_signature=False`` strips the CPS signature the SECC forwards."""
    session, adapter = Iso2Session(evse_id="DE*PYS*E0001*1", tls=True), Iso2Adapter()
    step = evcc.start(0.0)
    while not isinstance(step, Finished):
        request = adapter.decode(step.payload_type, step.payload)
        reply = session.receive(request.name, request.body, 0.0, request.session_id)
        for action in reply.actions:
            if isinstance(action, RequestCertificate):
                answer = provisioning.answer({"action": action.action,
                                              "exiRequest": action.exi_request})
                reply = session.certificate_answered(CertificateAnswer(
                    answer["status"], answer["exiResponse"]), 0.0)
        if step.step == until:
            return step, reply, session
        response = reply.response
        if isinstance(response, SignedResponse):  # the SECC forwards the CPS signature
            if tamper:
                tamper(response.body, response.signature)
            if not with_signature:
                response = response.body
        _, payload = adapter.encode(reply.response_name, response, session.session_id)
        step = evcc.receive(0x8001, payload, 0.0)
    return step, None, session


@pytest.fixture
def provisioning(test_pki):
    return ContractProvisioning(test_pki, emaid_prefix="DEPYSE")


def car(test_pki, **changes):
    credential = ProvisioningCredential.from_credential(test_pki.vehicle_leaf, test_pki.v2g_root)
    return Iso2Evcc(config=EvccConfig(provisioning=dataclasses.replace(credential, **changes)))


def test_car_installs_the_contract_and_signs_authorization_with_it(test_pki, provisioning):
    evcc = car(test_pki)
    step, reply, session = run(evcc, provisioning)
    assert step.step == "Authorization"
    assert evcc.record.steps_sent == ["SessionSetup", "ServiceDiscovery",
                                      "PaymentServiceSelection", "CertificateInstallation",
                                      "PaymentDetails", "Authorization"]
    (issued,) = provisioning.issued
    assert evcc.record.installed_emaid == issued.emaid == "DEPYSE0000001X"
    assert evcc.contract.certificate == issued.leaf.cert_der
    # the SECC verified the AuthorizationReq signature made with the decrypted key
    assert reply.response.response_code == "OK" and session.emaid == "DEPYSE0000001X"
    assert any(isinstance(a, RequestAuthorization) for a in reply.actions)


def _flip_signature(response, signature):
    value = bytearray(signature.signature_value.value)
    value[5] ^= 0x01
    signature.signature_value.value = bytes(value)


def _other_emaid(response, signature):
    response.e_maid.value = "DEPYSE9999999X"


@pytest.mark.parametrize("tamper", [_flip_signature, _other_emaid])
def test_car_refuses_a_response_the_cps_did_not_sign(test_pki, provisioning, tamper):
    evcc = car(test_pki)
    finished, _, _ = run(evcc, provisioning, tamper=tamper)
    assert isinstance(finished, Finished)
    assert "CPS" in str(finished.record.failure) and evcc.contract is None


def test_car_refuses_a_response_without_the_cps_signature(test_pki, provisioning):
    evcc = car(test_pki)
    finished, _, _ = run(evcc, provisioning, with_signature=False)
    assert isinstance(finished, Finished)
    assert "CPS signature" in str(finished.record.failure) and evcc.contract is None


def test_car_refuses_a_cps_outside_its_v2g_root(test_pki, provisioning):
    evcc = car(test_pki, v2g_root=test_pki.mo_root.cert_der)
    finished, _, _ = run(evcc, provisioning)
    assert "CPS" in str(finished.record.failure)


def test_request_not_signed_with_the_oem_key_gets_no_certificate(test_pki, provisioning):
    """The SECC checks the OEM provisioning signature itself: FAILED_SignatureError, and the
    request never reaches the CPS (conformance CertificateInstallation_005)."""
    evcc = car(test_pki, key=ec.generate_private_key(ec.SECP256R1()))
    finished, _, _ = run(evcc, provisioning)
    assert isinstance(finished, Finished) and provisioning.issued == []
    assert "FAILED_SignatureError" in str(finished.record.failure)
