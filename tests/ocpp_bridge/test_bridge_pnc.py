"""Plug & Charge, certificates, smart charging, device model and remote control against the
test CSMS over real sockets, with the SECC on the real bus."""

from __future__ import annotations

import contextlib

import pytest

from secc.certstore import RootKind
from bridge_harness import (
    STATION,
    BusSpy,
    bridge_config,
    online_bridge,
    running_bridge,
    secc_config,
    wait_until,
)
from cryptography.hazmat.primitives import serialization

from secc.authorization import AuthorizationRequest, AuthorizationStatus
from secc.bus.authorizer import BusAuthorizer
from secc.bus.client import BusRequestError, SeccBusClient

OCSP = {"hashAlgorithm": "SHA256", "issuerNameHash": "ab" * 32, "issuerKeyHash": "cd" * 32,
        "serialNumber": "1f2e", "responderURL": "http://ocsp.example/"}


def pem_chain(test_pki) -> str:
    leaf, subs = test_pki.contract_chain()
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in [leaf, *subs]).decode()


@contextlib.asynccontextmanager
async def system(tmp_path, bus_broker, csms, **overrides):
    async with running_bridge(bridge_config(tmp_path, bus_broker, csms, **overrides)) as bridge:
        async with SeccBusClient(secc_config(tmp_path, bus_broker)) as secc:
            secc.certificate_commands = _secc_certificate_commands(secc, tmp_path)
            await online_bridge(bridge, csms)
            await secc.wait_connected()
            yield bridge, secc


def _secc_certificate_commands(secc, tmp_path):
    """The SECC's certificate commands on a store of its own (what the daemon wires)."""
    from secc.cert_commands import CertificateCommands

    changed = []

    async def on_changed(kind):
        changed.append(kind)
    commands = CertificateCommands(tmp_path / "secc-certs", on_changed)
    commands.changed = changed
    secc.on_command("create_csr", commands.create_csr)
    secc.on_command("install_certificate", commands.install_certificate)
    return commands


async def test_pnc_authorize_with_ocsp_data_sends_hash_data(tmp_path, bus_broker, csms):
    async with system(tmp_path, bus_broker, csms) as (_, secc):
        decision = await BusAuthorizer(secc).authorize(AuthorizationRequest(
            "1", "s1", "DE-PYS-C12345678-X", "eMAID", ocsp_request_data=[OCSP]))
    assert decision.status is AuthorizationStatus.ACCEPTED
    sent = csms.messages("Authorize")[0]
    assert sent["idToken"] == {"idToken": "DEPYSC12345678X", "type": "eMAID"}
    assert sent["iso15118CertificateHashData"] == [OCSP]


async def test_pnc_authorize_without_ocsp_url_falls_back_to_the_chain(
        tmp_path, bus_broker, csms, test_pki):
    async with system(tmp_path, bus_broker, csms) as (_, secc):
        status = await csms.call(STATION, "InstallCertificate", {
            "certificateType": "MORootCertificate",
            "certificate": test_pki.mo_root.cert_pem.decode()})
        assert status["status"] == "Accepted"
        decision = await BusAuthorizer(secc).authorize(AuthorizationRequest(
            "1", "s2", test_pki.emaid, "eMAID", contract_chain_pem=pem_chain(test_pki)))
    assert decision.accepted
    assert csms.messages("Authorize")[0]["certificate"].startswith("-----BEGIN CERTIFICATE")


async def test_missing_mo_root_is_diagnosed_with_the_fix(tmp_path, bus_broker, csms, test_pki,
                                                         pysecc_logs):
    async with system(tmp_path, bus_broker, csms) as (_, secc):
        async with BusSpy(bus_broker, "pysecc/v1/evse/1/events/error") as spy:
            await BusAuthorizer(secc).authorize(AuthorizationRequest(
                "1", "s3", test_pki.emaid, "eMAID", contract_chain_pem=pem_chain(test_pki)))
            await wait_until(lambda: spy.messages, 5, "error event")
    assert spy.messages[0]["code"] == "MissingRootCertificate"
    assert "MO Root CA" in spy.messages[0]["message"]
    assert any("InstallCertificate" in r.getMessage() and "MO Root CA" in r.getMessage()
               for r in pysecc_logs.records)


async def test_csms_without_pnc_authorize_gives_clear_error(tmp_path, bus_broker, csms,
                                                            pysecc_logs):
    csms.behave("Authorize", "not_implemented")
    async with system(tmp_path, bus_broker, csms) as (_, secc):
        async with BusSpy(bus_broker, "pysecc/v1/evse/1/events/error") as spy:
            decision = await BusAuthorizer(secc).authorize(AuthorizationRequest(
                "1", "s4", "DEPYSC12345678X", "eMAID", ocsp_request_data=[OCSP]))
            await wait_until(lambda: spy.messages, 5, "error event")
    assert decision.status is AuthorizationStatus.UNKNOWN
    assert "Plug&Charge contract validation" in decision.reason
    assert spy.messages[0]["code"] == "NotSupportedByCsms"
    assert any("CSMS capability missing" in r.getMessage() for r in pysecc_logs.records)


async def test_authorize_rejected_contract_certificate(tmp_path, bus_broker, csms):
    csms.behave("Authorize", "reject")
    async with system(tmp_path, bus_broker, csms) as (_, secc):
        decision = await BusAuthorizer(secc).authorize(AuthorizationRequest(
            "1", "s5", "DEPYSC12345678X", "eMAID", ocsp_request_data=[OCSP]))
    assert decision.status is AuthorizationStatus.CERTIFICATE_REJECTED
    assert "CertificateRevoked" in decision.reason


async def test_get_15118_ev_certificate_accepts_17000_char_exi_response(tmp_path, bus_broker,
                                                                        csms):
    big = "QUFB" * 4250  # 17000 characters, beyond the package's bundled 7500 limit
    csms.behave("Get15118EVCertificate", payload={"status": "Accepted", "exiResponse": big})
    async with system(tmp_path, bus_broker, csms) as (_, secc):
        reply = await secc.request("get_15118_ev_certificate", {
            "session_id": "s6", "iso15118_schema_version": "urn:iso:15118:2:2013:MsgDef",
            "action": "Install", "exi_request": "gJgAAAA="})
    assert reply == {"status": "Accepted", "exi_response": big}
    assert csms.messages("Get15118EVCertificate")[0]["exiRequest"] == "gJgAAAA="


async def test_get_15118_ev_certificate_over_17000_is_refused(tmp_path, bus_broker, csms,
                                                               pysecc_logs):
    csms.behave("Get15118EVCertificate",
                payload={"status": "Accepted", "exiResponse": "A" * 17001})
    async with system(tmp_path, bus_broker, csms) as (_, secc):
        with pytest.raises(BusRequestError) as info:
            await secc.request("get_15118_ev_certificate", {
                "session_id": "s7", "iso15118_schema_version": "x", "action": "Install",
                "exi_request": "gJg="})
    # the bridge refused the answer, the CSMS did not refuse anything: say so
    assert info.value.code == "InvalidCsmsAnswer"
    assert "bridge rejected" in str(info.value)
    assert "17001 characters, more than the 17000 allowed" in str(info.value)
    longest = max(len(r.getMessage()) + len(str(r.__dict__)) for r in pysecc_logs.records)
    assert longest < 4000, "an over-long exiResponse must not be logged whole"


async def test_csms_without_certificate_installation_is_diagnosed(tmp_path, bus_broker, csms,
                                                                  pysecc_logs):
    csms.behave("Get15118EVCertificate", "not_supported")
    async with system(tmp_path, bus_broker, csms) as (_, secc):
        async with BusSpy(bus_broker, "pysecc/v1/evse/1/events/error") as spy:
            with pytest.raises(BusRequestError) as info:
                await secc.request("get_15118_ev_certificate", {
                    "session_id": "s8", "iso15118_schema_version": "x", "action": "Install",
                    "exi_request": "gJg="})
            await wait_until(lambda: spy.messages, 5, "error event")
    assert info.value.code == "NotSupportedByCsms"
    assert "Get15118EVCertificate" in info.value.capability
    assert spy.messages[0]["capability"] == info.value.capability
    assert any("CSMS capability missing: ISO 15118 certificate installation" in r.getMessage()
               for r in pysecc_logs.records)


async def test_get_certificate_status_returns_ocsp_result(tmp_path, bus_broker, csms):
    async with system(tmp_path, bus_broker, csms) as (_, secc):
        reply = await secc.request("get_certificate_status", {"ocsp_request_data": {
            "hash_algorithm": "SHA256", "issuer_name_hash": "ab", "issuer_key_hash": "cd",
            "serial_number": "01", "responder_url": "http://ocsp.example/"}})
    assert reply["status"] == "Accepted" and reply["ocsp_result"]
    assert csms.messages("GetCertificateStatus")[0]["ocspRequestData"]["responderURL"] == \
        "http://ocsp.example/"


async def test_install_list_delete_root_certificates(tmp_path, bus_broker, csms, test_pki):
    async with system(tmp_path, bus_broker, csms):
        for kind, cred in (("V2GRootCertificate", test_pki.v2g_root),
                           ("MORootCertificate", test_pki.mo_root)):
            answer = await csms.call(STATION, "InstallCertificate", {
                "certificateType": kind, "certificate": cred.cert_pem.decode()})
            assert answer["status"] == "Accepted"
        bad = await csms.call(STATION, "InstallCertificate", {
            "certificateType": "MORootCertificate", "certificate": "-----BEGIN nonsense"})
        leaf = await csms.call(STATION, "InstallCertificate", {
            "certificateType": "MORootCertificate",
            "certificate": test_pki.contract_leaf.cert_pem.decode()})
        listed = await csms.call(STATION, "GetInstalledCertificateIds",
                                 {"certificateType": ["V2GRootCertificate", "MORootCertificate"]})
        mo = [c for c in listed["certificateHashDataChain"]
              if c["certificateType"] == "MORootCertificate"][0]
        deleted = await csms.call(STATION, "DeleteCertificate",
                                  {"certificateHashData": mo["certificateHashData"]})
        again = await csms.call(STATION, "DeleteCertificate",
                                {"certificateHashData": mo["certificateHashData"]})
        after = await csms.call(STATION, "GetInstalledCertificateIds",
                                {"certificateType": ["MORootCertificate"]})
    assert bad["status"] == "Rejected" and leaf["status"] == "Rejected"
    assert {c["certificateType"] for c in listed["certificateHashDataChain"]} == {
        "V2GRootCertificate", "MORootCertificate"}
    assert mo["certificateHashData"]["serialNumber"] == format(test_pki.mo_root.cert.serial_number,
                                                               "x")
    assert deleted["status"] == "Accepted" and again["status"] == "NotFound"
    assert after["status"] == "NotFound"


async def test_trigger_sign_v2g_certificate_roundtrip(tmp_path, bus_broker, csms, test_pki):
    """The SECC makes key and CSR (create_csr), the CSMS signs under the V2G PKI, the bridge
    hands the chain to the SECC (install_certificate), which installs it for its key."""
    csms.v2g_signer = test_pki.sign_secc_csr
    async with system(tmp_path, bus_broker, csms) as (bridge, secc):
        secc.certificate_commands.store.import_root(RootKind.V2G, test_pki.v2g_root.cert_pem)
        answer = await csms.call(STATION, "TriggerMessage", {"requestedMessage":
                                                             "SignV2GCertificate"})
        await csms.wait_for("SignCertificate")
        chain_file = bridge.config.storage.certificates / "V2GCertificate" / "chain.pem"
        await wait_until(chain_file.exists, 5, "V2G chain installed")
        await wait_until(lambda: secc.certificate_commands.changed, 5, "SECC chain installed")
        ids = await csms.call(STATION, "GetInstalledCertificateIds",
                              {"certificateType": ["V2GCertificateChain"]})
        unknown = await csms.call(STATION, "TriggerMessage", {"requestedMessage":
                                                              "SignCombinedCertificate"})
    assert answer == {"status": "Accepted"}
    assert "CERTIFICATE REQUEST" in csms.messages("SignCertificate")[0]["csr"]
    assert csms.messages("SignCertificate")[0]["certificateType"] == "V2GCertificate"
    assert ids["certificateHashDataChain"][0]["certificateType"] == "V2GCertificateChain"
    assert unknown == {"status": "NotImplemented"}
    store = secc.certificate_commands.store
    assert store.verify() == [] and not (store.path / "pending_key.pem").exists()
    assert not (bridge.config.storage.certificates / "V2GCertificate" / "key.pem").exists()
    assert secc.certificate_commands.changed == ["V2GCertificateChain"]


async def test_certificate_signed_without_pending_csr_is_rejected(tmp_path, bus_broker, csms,
                                                                  test_pki):
    async with system(tmp_path, bus_broker, csms):
        answer = await csms.call(STATION, "CertificateSigned", {
            "certificateChain": test_pki.secc_leaf.cert_pem.decode(),
            "certificateType": "V2GCertificate"})
    assert answer == {"status": "Rejected"}


async def test_get_and_set_variables_of_iso15118ctrlr(tmp_path, bus_broker, csms):
    def item(component, variable, value=None):
        d = {"component": {"name": component}, "variable": {"name": variable}}
        if value is not None:
            d["attributeValue"] = value
        return d

    async with system(tmp_path, bus_broker, csms):
        set_answer = await csms.call(STATION, "SetVariables", {"setVariableData": [
            item("ISO15118Ctrlr", "PnCEnabled", "false"),
            item("ISO15118Ctrlr", "CentralContractValidationAllowed", "maybe"),
            item("SecurityCtrlr", "SecurityProfile", "3"),
            item("NoSuchCtrlr", "X", "1")]})
        get_answer = await csms.call(STATION, "GetVariables", {"getVariableData": [
            item("ISO15118Ctrlr", "PnCEnabled"), item("SecurityCtrlr", "BasicAuthPassword"),
            item("ISO15118Ctrlr", "Nope"), item("OCPPCommCtrlr", "HeartbeatInterval")]})
    statuses = [r["attributeStatus"] for r in set_answer["setVariableResult"]]
    assert statuses == ["Accepted", "Rejected", "Rejected", "UnknownComponent"]
    got = get_answer["getVariableResult"]
    assert got[0]["attributeValue"] == "false"
    assert got[1]["attributeStatus"] == "Rejected" and "attributeValue" not in got[1]
    assert got[2]["attributeStatus"] == "UnknownVariable"
    assert got[3]["attributeValue"] == "300"   # interval from the BootNotification answer


async def test_remote_start_and_stop_reach_the_secc(tmp_path, bus_broker, csms):
    commands = []

    async def on_start(command):
        commands.append(("start", command))
        return {"status": "Accepted", "session_id": "s10"}

    async def on_stop(command):
        commands.append(("stop", command))
        return {"status": "Accepted"}

    async with system(tmp_path, bus_broker, csms) as (bridge, secc):
        secc.on_command("request_start_transaction", on_start)
        secc.on_command("request_stop_transaction", on_stop)
        await secc.send_transaction_event("Started", "s10", "RemoteStart", remote_start_id=42)
        await secc.flush(5)
        started = await csms.call(STATION, "RequestStartTransaction", {
            "remoteStartId": 42, "idToken": {"idToken": "APP1", "type": "Central"}, "evseId": 1})
        stopped = await csms.call(STATION, "RequestStopTransaction",
                                  {"transactionId": started["transactionId"]})
        unknown = await csms.call(STATION, "RequestStopTransaction", {"transactionId": "nope"})
    assert started["status"] == "Accepted"
    assert started["transactionId"] == csms.messages("TransactionEvent")[0]["transactionInfo"][
        "transactionId"]
    assert commands[0] == ("start", {"remote_start_id": 42,
                                     "id_token": {"id_token": "APP1", "type": "Central"}})
    assert commands[1][1]["session_id"] == "s10"
    assert stopped == {"status": "Accepted"} and unknown == {"status": "Rejected"}


async def test_security_events_are_reported(tmp_path, bus_broker, csms):
    async with system(tmp_path, bus_broker, csms):
        await csms.call(STATION, "SetVariables", {"setVariableData": [{
            "component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"},
            "attributeValue": "a-new-password-123"}]})
        events = await csms.wait_for("SecurityEventNotification", 2)
    assert [e["type"] for e in events] == ["StartupOfTheDevice",
                                           "ReconfigurationOfSecurityParameters"]


async def test_csms_without_pnc_still_authorizes_eim(tmp_path, bus_broker, csms):
    csms.without_pnc()
    async with system(tmp_path, bus_broker, csms) as (_, secc):
        eim = await BusAuthorizer(secc).authorize(AuthorizationRequest(
            "1", "np1", "04A1B2", "ISO14443"))
        pnc = await BusAuthorizer(secc).authorize(AuthorizationRequest(
            "1", "np2", "DEPYSC12345678X", "eMAID", ocsp_request_data=[OCSP]))
        with pytest.raises(BusRequestError) as info:
            await secc.request("get_certificate_status", {"ocsp_request_data": {
                "hash_algorithm": "SHA256", "issuer_name_hash": "ab", "issuer_key_hash": "cd",
                "serial_number": "01", "responder_url": "http://ocsp.example/"}})
    assert eim.accepted
    assert pnc.status is AuthorizationStatus.UNKNOWN and "Plug&Charge" in pnc.reason
    assert info.value.code == "NotSupportedByCsms" and "OCSP" in info.value.capability


async def test_get_base_report_sends_the_device_model_in_notify_report(tmp_path, bus_broker,
                                                                       csms):
    async with system(tmp_path, bus_broker, csms):
        answer = await csms.call(STATION, "GetBaseReport", {"requestId": 5,
                                                            "reportBase": "FullInventory"})
        await wait_until(lambda: csms.messages("NotifyReport") and
                         not csms.messages("NotifyReport")[-1]["tbc"], 5, "last NotifyReport")
    reports = csms.messages("NotifyReport")
    assert answer == {"status": "Accepted"}
    assert [r["seqNo"] for r in reports] == list(range(len(reports)))
    data = [item for r in reports for item in r["reportData"]]
    found = {(d["component"]["name"], d["variable"]["name"]): d for d in data}
    pnc = found[("ISO15118Ctrlr", "PnCEnabled")]
    assert pnc["variableAttribute"][0] == {"type": "Actual", "mutability": "ReadWrite",
                                           "value": "true"}
    assert "value" not in found[("SecurityCtrlr", "BasicAuthPassword")]["variableAttribute"][0]


async def test_get_15118_ev_certificate_carries_the_iso20_schema_version(tmp_path, bus_broker,
                                                                        csms):
    """ISO 15118-20 CertificateInstallation: the SECC's -20 request reaches the CSMS with the
    -20 CommonMessages namespace as iso15118SchemaVersion, the answer comes back unchanged."""
    from secc.pnc.installation import ISO20_SCHEMA_VERSION

    answer = {"status": "Accepted", "exiResponse": "gKAAAA=="}
    csms.behave("Get15118EVCertificate", payload=answer)
    async with system(tmp_path, bus_broker, csms) as (_, secc):
        reply = await secc.request("get_15118_ev_certificate", {
            "session_id": "s20", "iso15118_schema_version": ISO20_SCHEMA_VERSION,
            "action": "Install", "exi_request": "gKAAAAA="})
    assert reply == {"status": "Accepted", "exi_response": "gKAAAA=="}
    sent = csms.messages("Get15118EVCertificate")[0]
    assert sent["iso15118SchemaVersion"] == "urn:iso:std:iso:15118:-20:CommonMessages"
