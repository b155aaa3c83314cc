"""Issue 16: the defects an independent CSMS found, each against the test CSMS."""

from __future__ import annotations

import asyncio

import pytest
from bridge_harness import (
    BUS_PASSWORD,
    BUS_USER,
    PASSWORD,
    STATION,
    BusSpy,
    bridge_config,
    online_bridge,
    running_bridge,
    secc_config,
    wait_until,
)

from ocpp_bridge.ocpp_io import CsmsCallError
from secc.bus.client import BusRequestError, SeccBusClient, utc_now
from sim.csms import CsmsPki, TestCsms
from sim.testing.broker import MosquittoBroker


@pytest.fixture(scope="module")
def two_pkis(tmp_path_factory):
    """The CSMS's PKI now (A) and the one it moves to (B)."""
    return (CsmsPki(tmp_path_factory.mktemp("csms-pki-a")),
            CsmsPki(tmp_path_factory.mktemp("csms-pki-b"), root_name="CSMS Root CA G2"))


async def tls_csms(pki: CsmsPki, port: int = 0) -> TestCsms:
    return await TestCsms(passwords={STATION: PASSWORD}, tls=pki.server_tls(), pki=pki,
                          port=port).start()


async def test_installed_csms_root_is_trusted_for_tls_after_the_csms_moves_to_it(
        tmp_path, bus_broker, two_pkis):
    old, new = two_pkis
    csms = await tls_csms(old)
    port = csms.port
    config = bridge_config(tmp_path, bus_broker, csms, security_profile=2,
                           ca_file=old.files["root"])
    try:
        async with running_bridge(config) as bridge:
            await online_bridge(bridge, csms)
            answer = await csms.call(STATION, "InstallCertificate", {
                "certificateType": "CSMSRootCertificate",
                "certificate": new.files["root"].read_text()})
            assert answer["status"] == "Accepted"
            # the CSMS moves to a server certificate under the new root
            await csms.stop()
            csms = await tls_csms(new, port)
            await csms.wait_connected(STATION, timeout=15)
            await wait_until(lambda: bridge.online, 10, "online under the new root")
            assert not csms.tls_failures
            # the guard now protects the root TLS depends on
            ids = await csms.call(STATION, "GetInstalledCertificateIds",
                                  {"certificateType": ["CSMSRootCertificate"]})
            only = ids["certificateHashDataChain"][0]["certificateHashData"]
            deleted = await csms.call(STATION, "DeleteCertificate",
                                      {"certificateHashData": only})
            assert deleted["status"] == "Failed"
    finally:
        await csms.stop()


async def test_a_csms_under_an_unknown_root_is_refused(tmp_path, bus_broker, two_pkis):
    """The unsafe side of the test above: without InstallCertificate, no trust."""
    old, new = two_pkis
    csms = await tls_csms(new)
    config = bridge_config(tmp_path, bus_broker, csms, security_profile=2,
                           ca_file=old.files["root"])
    try:
        async with BusSpy(bus_broker, "pysecc/v1/evse/1/events/error") as spy:
            async with running_bridge(config) as bridge:
                await wait_until(lambda: spy.messages, 10, "TLS error")
                assert not bridge.online
    finally:
        await csms.stop()
    assert spy.messages[0]["code"] == "TlsHandshakeFailed"
    assert not any(e[0] == "connected" for e in csms.events)


async def test_invalid_csms_certificate_is_reported_once_a_connection_succeeds(
        tmp_path, bus_broker, two_pkis):
    good, stranger = two_pkis
    impostor = await tls_csms(stranger)
    port = impostor.port
    config = bridge_config(tmp_path, bus_broker, impostor, security_profile=2,
                           ca_file=good.files["root"])
    csms = None
    try:
        async with BusSpy(bus_broker, "pysecc/v1/evse/1/events/error") as spy:
            async with running_bridge(config) as bridge:
                await wait_until(lambda: len(spy.messages) >= 2, 10, "two refusals")
                await impostor.stop()
                csms = await tls_csms(good, port)
                events = await csms.wait_for("SecurityEventNotification", 2, timeout=15)
                await wait_until(lambda: bridge.queue.pending() == 0, 5, "queue drained")
    finally:
        await impostor.stop()
        if csms is not None:
            await csms.stop()
    kinds = [e["type"] for e in csms.messages("SecurityEventNotification")]
    assert kinds.count("InvalidCsmsCertificate") == 1, kinds   # once per failure streak
    event = next(e for e in events if e["type"] == "InvalidCsmsCertificate")
    assert "CERTIFICATE_VERIFY_FAILED" in event["techInfo"]


async def test_ocppj_error_codes_for_unknown_and_unsupported_actions(tmp_path, bus_broker,
                                                                     csms):
    async with running_bridge(bridge_config(tmp_path, bus_broker, csms)) as bridge:
        await online_bridge(bridge, csms)
        with pytest.raises(CsmsCallError) as known:   # an OCPP 2.0.1 action we do not offer
            await csms.call(STATION, "CostUpdated", {"totalCost": 1.5, "transactionId": "t1"})
        station = await csms.wait_connected(STATION)
        await station._send('[2,"x-1","MakeCoffee",{}]')
        answer = await asyncio.wait_for(station._response_queue.get(), 5)
    assert known.value.code == "NotSupported"
    assert answer.unique_id == "x-1" and answer.error_code == "NotImplemented"


async def test_available_waits_for_the_transactions_ended_event(tmp_path, bus_broker, csms):
    async with running_bridge(bridge_config(tmp_path, bus_broker, csms)) as bridge:
        async with SeccBusClient(secc_config(tmp_path, bus_broker)) as secc:
            await online_bridge(bridge, csms)
            await secc.wait_connected()
            for n in range(3):
                sid = f"st{n}"
                await secc.publish_state("Occupied", session_id=sid)
                await secc.send_transaction_event("Started", sid, "CablePluggedIn",
                                                  charging_state="EVConnected")
                await secc.send_transaction_event("Ended", sid, "EVDeparted",
                                                  stopped_reason="EVDisconnected")
                await secc.publish_state("Available")   # at once: Ended is still queued
                await wait_until(lambda n=n: sum(
                    1 for s in csms.messages("StatusNotification") if s["evseId"] == 1
                    and s["connectorStatus"] == "Available") >= n + 1, 10, "Available")
    order = [(r.action, r.payload.get("eventType") or r.payload.get("connectorStatus"))
             for r in csms.received if r.action in ("TransactionEvent", "StatusNotification")
             and (r.payload.get("evseId") or r.payload.get("evse", {}).get("id")) == 1]
    ended = [i for i, item in enumerate(order) if item == ("TransactionEvent", "Ended")]
    available = [i for i, item in enumerate(order)
                 if item == ("StatusNotification", "Available")]
    assert len(ended) == 3 and len(available) == 3
    assert all(a > e for a, e in zip(available, ended)), order


async def test_every_evse_gets_a_status_at_first_boot_without_secc_state(tmp_path, csms):
    with MosquittoBroker(username=BUS_USER, password=BUS_PASSWORD) as fresh_broker:
        async with running_bridge(bridge_config(tmp_path, fresh_broker, csms)) as bridge:
            await online_bridge(bridge, csms)
            statuses = await csms.wait_for("StatusNotification", 2)
    assert sorted((s["evseId"], s["connectorStatus"]) for s in statuses) == [
        (1, "Unavailable"), (2, "Unavailable")]


async def test_boot_pending_is_not_reported_as_offline(tmp_path, bus_broker, csms):
    csms.behave("BootNotification", "pending")
    async with running_bridge(bridge_config(tmp_path, bus_broker, csms)):
        async with SeccBusClient(secc_config(tmp_path, bus_broker)) as secc:
            await csms.wait_for("BootNotification")
            await secc.wait_connected()
            with pytest.raises(BusRequestError) as info:
                await secc.request("authorize", {"session_id": "p1", "id_token": "04AB",
                                                 "id_token_type": "ISO14443"}, 5)
    assert info.value.code == "CsmsPending"
    assert "Pending" in str(info.value)
    assert not csms.messages("Authorize")   # B02: nothing but BootNotification while Pending


async def test_heartbeat_failure_names_the_cause(tmp_path, bus_broker, csms, pysecc_logs):
    csms.behave("BootNotification", payload={"currentTime": utc_now(), "interval": 1,
                                             "status": "Accepted"})
    csms.behave("Heartbeat", "timeout")
    async with running_bridge(bridge_config(tmp_path, bus_broker, csms)):
        await wait_until(lambda: any(r.getMessage() == "Heartbeat failed"
                                     for r in pysecc_logs.records), 10, "heartbeat failure")
    record = next(r for r in pysecc_logs.records if r.getMessage() == "Heartbeat failed")
    assert record.error == "no answer within 2 s"
