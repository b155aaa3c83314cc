"""CertificateInstallation/Update in the ISO-2 SECC session, run by the real session driver
over a real V2GTP connection (loopback TCP): the request goes out as RequestCertificate, the
controller asks the bus (here a stand-in for the bridge that answers as the bridge would), the
driver hands the answer back, and the car gets the CSMS's CertificateInstallationRes — or the
right FAILED code when the CSMS lacks the capability, refuses, stays silent or sends garbage."""

from __future__ import annotations

import asyncio
import base64
import time

import pytest

import exi_schemas
from exi_schemas.generated import iso2 as M
from secc.authorization import AllowListAuthorizer
from secc.bus.client import BusRequestError
from secc.iso2 import Iso2Adapter, Iso2Session
from secc.pnc import key_transport, xmldsig
from secc.pnc.installation import (
    ISO2_SCHEMA_VERSION,
    build_installation_response,
    response_exi,
)
from secc.session.controller import BoardController
from secc.session.driver import SessionRunner, SessionSummary
from secc.v2g.core import TERMINATED
from secc.v2g.evse import PublishEvent
from secc.v2gtp import ConnectionClosed, PayloadType, V2GTPConnection

EVCCID = bytes.fromhex("0A0B0C0D0E0F")


class BridgeStandIn:
    """Answers get_15118_ev_certificate like the bridge: a reply dict, a BusRequestError, or
    nothing at all (``answer=None``)."""

    def __init__(self, answer) -> None:
        self.answer = answer
        self.requests: list[dict] = []

    async def request(self, name, payload, timeout=None):
        self.requests.append({"name": name, **payload})
        if isinstance(self.answer, Exception):
            raise self.answer
        if self.answer is None:   # the CSMS never answers
            await asyncio.Event().wait()
        return self.answer


class Charger:
    """EvseController without hardware; ``certificate`` is the product's (bus) method."""

    authorizer = AllowListAuthorizer(accept_all=True)
    certificate = BoardController.certificate

    def __init__(self, bus) -> None:
        self.bus = bus
        self.actions: list = []

    async def refresh(self, snapshot) -> None:
        return None

    async def perform(self, action) -> None:
        if not isinstance(action, PublishEvent):
            self.actions.append(action)


class Car:
    """The EV end of the connection: sends requests, returns response bodies."""

    def __init__(self, conn: V2GTPConnection) -> None:
        self.conn = conn
        self.session_id = bytes(8)
        self.fields = {name: field for field, name in Iso2Adapter.REQUEST_FIELDS}

    async def send(self, name, body, signature=None):
        message = M.V2G_Message(
            header=M.MessageHeaderType(session_id=self.session_id, signature=signature),
            body=M.BodyType(**{self.fields[name]: body}))
        await self.conn.send(PayloadType.EXI, exi_schemas.encode(message))
        reply = exi_schemas.decode((await self.conn.receive(6.0)).payload, "iso2")
        self.session_id = reply.header.session_id
        res = reply.body
        return next(getattr(res, k) for k in res.__slots__ if getattr(res, k) is not None)

    async def until_payment_details(self):
        await self.send("SessionSetupReq", M.SessionSetupReqType(evccid=EVCCID))
        await self.send("ServiceDiscoveryReq", M.ServiceDiscoveryReqType())
        res = await self.send("PaymentServiceSelectionReq", M.PaymentServiceSelectionReqType(
            selected_payment_option="Contract", selected_service_list=M.SelectedServiceListType(
                selected_service=[M.SelectedServiceType(service_id=1)])))
        assert res.response_code == "OK"


def installation_req(test_pki):
    req = M.CertificateInstallationReqType(
        id="ID1", oem_provisioning_cert=test_pki.vehicle_leaf.cert_der,
        list_of_root_certificate_i_ds=M.ListOfRootCertificateIDsType(root_certificate_id=[
            M.X509IssuerSerialType(x509_issuer_name=test_pki.v2g_root.cert.issuer.rfc4514_string(),
                                   x509_serial_number=test_pki.v2g_root.cert.serial_number)]))
    return req, xmldsig.sign([req], test_pki.vehicle_leaf.key)


async def run_session(bus, scenario):
    """Serve one session on loopback TCP with the real driver; run ``scenario(car)``."""
    charger = Charger(bus)
    core = Iso2Session(evse_id="DE*PYS*E0001*1", tls=True,
                       now=asyncio.get_running_loop().time())
    done = asyncio.get_running_loop().create_future()

    async def serve(reader, writer):
        conn = V2GTPConnection(reader, writer)
        runner = SessionRunner(conn, Iso2Adapter(), core, charger, SessionSummary())
        await runner.run()
        await conn.close()
        done.set_result(None)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    car = Car(V2GTPConnection(reader, writer))
    try:
        result = await scenario(car)
    finally:
        await car.conn.close()
        await asyncio.wait_for(done, 10)
        server.close()
    return result, core, charger


@pytest.fixture(scope="module")
def issued(test_pki):
    contract = test_pki.issue_contract("DEPYSC5550001X")
    cps, subs = test_pki.cps_chain()
    body, signature = build_installation_response(
        contract_der=contract.leaf.cert_der, contract_sub_ders=contract.sub_ca_ders,
        contract_key=contract.leaf.key, emaid=contract.emaid,
        recipient=test_pki.vehicle_leaf.key.public_key(), cps_der=cps.cert_der,
        cps_sub_ders=[c.cert_der for c in subs], cps_key=cps.key)
    return contract, response_exi(body, signature, session_id=bytes.fromhex("1122334455667788"))


async def test_installation_forwards_the_signed_request_and_delivers_the_csms_response(
        test_pki, issued):
    contract, exi_response = issued
    bus = BridgeStandIn({"status": "Accepted", "exi_response": exi_response})

    async def scenario(car):
        await car.until_payment_details()
        req, signature = installation_req(test_pki)
        res = await car.send("CertificateInstallationReq", req, signature)
        # then Plug & Charge goes on with the new contract
        details = await car.send("PaymentDetailsReq", M.PaymentDetailsReqType(
            e_maid=res.e_maid.value, contract_signature_cert_chain=M.CertificateChainType(
                certificate=res.contract_signature_cert_chain.certificate,
                sub_certificates=res.contract_signature_cert_chain.sub_certificates)))
        return car.session_id, res, details

    (session_id, res, details), core, _ = await run_session(bus, scenario)
    assert res.response_code == "OK" and res.e_maid.value == "DEPYSC5550001X"
    key = key_transport.decrypt_contract_key(
        res.d_hpublickey.value, res.contract_signature_encrypted_private_key.value,
        test_pki.vehicle_leaf.key)
    assert key_transport.matches(key, contract.leaf.key.public_key())
    assert details.response_code == "OK" and core.emaid == "DEPYSC5550001X"
    (sent,) = bus.requests
    assert sent["name"] == "get_15118_ev_certificate" and sent["action"] == "Install"
    assert sent["iso15118_schema_version"] == ISO2_SCHEMA_VERSION
    assert sent["session_id"] == session_id.hex()
    forwarded = exi_schemas.decode(base64.b64decode(sent["exi_request"]), "iso2")
    req = forwarded.body.certificate_installation_req
    assert req.oem_provisioning_cert == test_pki.vehicle_leaf.cert_der
    xmldsig.verify(forwarded.header.signature, {req.id: req},
                   test_pki.vehicle_leaf.key.public_key())


@pytest.mark.parametrize("answer, code", [
    (BusRequestError("NotSupportedByCsms", "CSMS answered NotImplemented",
                     "Get15118EVCertificate"), "FAILED_NoCertificateAvailable"),
    ({"status": "Failed", "exi_response": "", "reason": "no contract for this car"},
     "FAILED_NoCertificateAvailable"),
    ({"status": "Accepted", "exi_response": base64.b64encode(b"\x80\x98" * 64).decode()},
     "FAILED"),
    ({"status": "Accepted", "exi_response": "%%% not base64 %%%"}, "FAILED"),
], ids=["not-implemented", "csms-failed", "garbage-exi", "not-base64"])
async def test_csms_without_certificate_gets_the_car_a_failed_code_and_a_safe_end(
        test_pki, answer, code, caplog):
    bus = BridgeStandIn(answer)

    async def scenario(car):
        await car.until_payment_details()
        res = await car.send("CertificateInstallationReq", *installation_req(test_pki))
        with pytest.raises(ConnectionClosed):
            await car.conn.receive(2.0)
        return res

    res, core, charger = await run_session(bus, scenario)
    assert res.response_code == code
    assert core.state == TERMINATED
    assert any(type(a).__name__ == "EnterSafeState" for a in charger.actions)
    if isinstance(answer, BusRequestError):   # the log line names the missing capability
        assert "missing capability: Get15118EVCertificate" in caplog.text


async def test_silent_csms_answered_before_the_cars_5_s_timeout(test_pki):
    bus = BridgeStandIn(None)

    async def scenario(car):
        await car.until_payment_details()
        started = time.monotonic()
        res = await car.send("CertificateInstallationReq", *installation_req(test_pki))
        return res, time.monotonic() - started

    (res, elapsed), core, _ = await run_session(bus, scenario)
    assert res.response_code == "FAILED_NoCertificateAvailable"
    assert 4.0 < elapsed < 5.0


async def test_without_a_bus_the_car_learns_no_certificate_is_available(test_pki):
    async def scenario(car):
        await car.until_payment_details()
        return await car.send("CertificateInstallationReq", *installation_req(test_pki))

    res, _, _ = await run_session(None, scenario)
    assert res.response_code == "FAILED_NoCertificateAvailable"


async def test_update_asks_the_csms_with_action_update_and_rejects_an_installation_res(
        test_pki, issued):
    contract, exi_response = issued
    bus = BridgeStandIn({"status": "Accepted", "exi_response": exi_response})

    async def scenario(car):
        await car.until_payment_details()
        req = M.CertificateUpdateReqType(
            id="ID1", e_maid=contract.emaid,
            contract_signature_cert_chain=M.CertificateChainType(
                id="cc", certificate=contract.leaf.cert_der,
                sub_certificates=M.SubCertificatesType(certificate=contract.sub_ca_ders)),
            list_of_root_certificate_i_ds=M.ListOfRootCertificateIDsType(root_certificate_id=[
                M.X509IssuerSerialType(x509_issuer_name="CN=V2G Root CA",
                                       x509_serial_number=1)]))
        return await car.send("CertificateUpdateReq", req, xmldsig.sign([req], contract.leaf.key))

    res, _, _ = await run_session(bus, scenario)
    assert bus.requests[0]["action"] == "Update"
    assert res.response_code == "FAILED"   # an InstallationRes is no answer to an Update


class ProvisioningBridge:
    """The bridge's answer as the test CSMS's eMSP/CPS makes it (Install or Update)."""

    def __init__(self, provisioning) -> None:
        self.provisioning = provisioning

    async def request(self, name, payload, timeout=None):
        answer = self.provisioning.answer({"action": payload["action"],
                                           "exiRequest": payload["exi_request"]})
        return {"status": answer["status"], "exi_response": answer["exiResponse"]}


async def test_update_delivers_a_new_contract_encrypted_for_the_old_contract_key(test_pki):
    from sim.csms import ContractProvisioning

    old = test_pki.issue_contract("DEPYSC0000009X")
    provisioning = ContractProvisioning(test_pki, emaid_prefix="DEPYSU")

    async def scenario(car):
        await car.until_payment_details()
        req = M.CertificateUpdateReqType(
            id="ID1", e_maid=old.emaid, contract_signature_cert_chain=M.CertificateChainType(
                id="cc", certificate=old.leaf.cert_der,
                sub_certificates=M.SubCertificatesType(certificate=old.sub_ca_ders)),
            list_of_root_certificate_i_ds=M.ListOfRootCertificateIDsType(root_certificate_id=[
                M.X509IssuerSerialType(x509_issuer_name="CN=V2G Root CA",
                                       x509_serial_number=1)]))
        return await car.send("CertificateUpdateReq", req, xmldsig.sign([req], old.leaf.key))

    res, core, _ = await run_session(ProvisioningBridge(provisioning), scenario)
    assert res.response_code == "OK" and res.e_maid.value == "DEPYSU0000001X"
    key = key_transport.decrypt_contract_key(
        res.d_hpublickey.value, res.contract_signature_encrypted_private_key.value,
        old.leaf.key)
    assert key_transport.matches(key, provisioning.issued[0].leaf.key.public_key())


async def test_a_failed_code_from_the_cps_reaches_the_car_and_ends_the_session(test_pki):
    from secc.iso2.session import FAILED_RESPONSES

    refused = FAILED_RESPONSES["CertificateInstallationReq"](None, "FAILED_ContractCanceled")
    bus = BridgeStandIn({"status": "Accepted", "exi_response": response_exi(refused, None)})

    async def scenario(car):
        await car.until_payment_details()
        return await car.send("CertificateInstallationReq", *installation_req(test_pki))

    res, core, _ = await run_session(bus, scenario)
    assert res.response_code == "FAILED_ContractCanceled" and core.state == TERMINATED
