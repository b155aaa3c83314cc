"""Nothing is lost when the CSMS, the network or the broker go away mid-transaction; bad
frames and bad bus payloads are refused without harming the bridge."""

from __future__ import annotations

import asyncio
import json

import aiomqtt
from bridge_harness import (
    BUS_PASSWORD,
    BUS_USER,
    STATION,
    BusSpy,
    bridge_config,
    online_bridge,
    running_bridge,
    secc_config,
    wait_until,
)

from secc.bus.client import SeccBusClient, reading, sample, utc_now
from secc.common.mqtt import _properties
from sim.testing.broker import MosquittoBroker
from sim.csms import TestCsms


def energy(value: float) -> list[dict]:
    return [reading(utc_now(), [sample("Energy.Active.Import.Register", value, unit="Wh")])]


def delivered(csms: TestCsms) -> list[dict]:
    """TransactionEvents as the CSMS saw them, a resent duplicate (same transaction, seqNo)
    counted once."""
    seen, out = set(), []
    for event in csms.messages("TransactionEvent"):
        key = (event["transactionInfo"]["transactionId"], event["seqNo"])
        if key not in seen:
            seen.add(key)
            out.append(event)
    return out


def energy_values(events: list[dict]) -> list[float]:
    return [e["meterValue"][0]["sampledValue"][0]["value"] for e in events if "meterValue" in e]


async def test_events_made_while_csms_down_arrive_in_order_marked_offline(
        tmp_path, bus_broker, csms):
    async with running_bridge(bridge_config(tmp_path, bus_broker, csms)) as bridge:
        async with SeccBusClient(secc_config(tmp_path, bus_broker)) as secc:
            await online_bridge(bridge, csms)
            await wait_until(lambda: secc.csms_available, 5, "SECC sees the CSMS")
            await secc.send_transaction_event("Started", "off1", "CablePluggedIn",
                                              readings=energy(0))
            await csms.wait_for("TransactionEvent", 1)
            await wait_until(lambda: bridge.queue.pending() == 0, 5, "Started confirmed")
            await csms.stop()
            await wait_until(lambda: not bridge.online, 5, "bridge offline")
            for i in range(1, 4):
                await secc.send_meter_values(energy(float(i)), session_id="off1")
            await secc.send_transaction_event("Ended", "off1", "EVDeparted",
                                              stopped_reason="EVDisconnected", readings=energy(4))
            await secc.flush(5)                 # acked by the bridge while the CSMS is down
            assert bridge.queue.pending() == 4
            await csms.start()                  # CSMS back on the same port
            await wait_until(lambda: len(delivered(csms)) == 5, 15, "all events")
    events = delivered(csms)
    assert [e["seqNo"] for e in events] == [0, 1, 2, 3, 4]
    assert energy_values(events) == [0, 1, 2, 3, 4]
    assert [bool(e.get("offline")) for e in events] == [False, True, True, True, True]
    assert events[-1]["eventType"] == "Ended"


async def test_csms_timeouts_are_retried_without_loss(tmp_path, bus_broker, csms):
    csms.behave("TransactionEvent", "timeout")
    config = bridge_config(tmp_path, bus_broker, csms, response_timeout=0.5)
    async with running_bridge(config) as bridge:
        async with SeccBusClient(secc_config(tmp_path, bus_broker)) as secc:
            await online_bridge(bridge, csms)
            for i in range(3):
                await secc.send_transaction_event("Updated" if i else "Started", "to1",
                                                  "MeterValuePeriodic", readings=energy(i))
            await csms.wait_for("TransactionEvent", 2)   # first one sent, retried, no answer
            csms.behave("TransactionEvent", "accept")
            await wait_until(lambda: len(delivered(csms)) == 3 and bridge.queue.pending() == 0,
                             15, "delivery after timeouts")
    assert energy_values(delivered(csms)) == [0, 1, 2]
    raw = csms.messages("TransactionEvent")
    assert raw[0]["seqNo"] == raw[1]["seqNo"] == 0     # the head was resent, not skipped


async def test_network_loss_during_a_stream_loses_nothing(tmp_path, bus_broker, csms):
    async with running_bridge(bridge_config(tmp_path, bus_broker, csms)) as bridge:
        async with SeccBusClient(secc_config(tmp_path, bus_broker)) as secc:
            await online_bridge(bridge, csms)
            await secc.send_transaction_event("Started", "net1", "Authorized",
                                              readings=energy(0))
            for i in range(1, 30):
                await secc.send_meter_values(energy(float(i)), session_id="net1")
                if i in (8, 19):
                    await csms.disconnect()
                await asyncio.sleep(0.01)  # the meter's pace, so outages land mid-stream
            await secc.flush(10)
            await wait_until(lambda: len(delivered(csms)) == 30, 20, "all events")
    assert energy_values(delivered(csms)) == list(range(30))
    assert [e["seqNo"] for e in delivered(csms)] == list(range(30))
    assert bridge.csms_connections >= 2


async def test_broker_restart_mid_session_loses_nothing(tmp_path, csms):
    broker = MosquittoBroker(username=BUS_USER, password=BUS_PASSWORD).start()
    port = broker.port
    try:
        async with running_bridge(bridge_config(tmp_path, broker, csms)) as bridge:
            async with SeccBusClient(secc_config(tmp_path, broker)) as secc:
                await online_bridge(bridge, csms)
                await secc.send_transaction_event("Started", "br1", "Authorized",
                                                  readings=energy(0))
                await secc.flush(5)
                broker.stop()
                for i in range(1, 5):   # the SECC keeps charging while the bus is down
                    await secc.send_meter_values(energy(float(i)), session_id="br1")
                assert secc.outbox_pending == 4
                broker = MosquittoBroker(port=port, username=BUS_USER,
                                         password=BUS_PASSWORD).start()
                await secc.flush(15)
                await wait_until(lambda: len(delivered(csms)) == 5, 10, "all events")
    finally:
        broker.stop()
    assert energy_values(delivered(csms)) == [0, 1, 2, 3, 4]


async def test_refused_message_is_parked_not_dropped_and_queue_moves_on(tmp_path, bus_broker,
                                                                         csms):
    csms.behave("TransactionEvent", "not_supported")
    async with running_bridge(bridge_config(tmp_path, bus_broker, csms)) as bridge:
        async with SeccBusClient(secc_config(tmp_path, bus_broker)) as secc:
            async with BusSpy(bus_broker, "pysecc/v1/evse/1/events/error") as spy:
                await online_bridge(bridge, csms)
                await secc.send_transaction_event("Started", "dl1", "Authorized")
                await wait_until(lambda: bridge.queue.dead(), 10, "dead letter")
                csms.behave("TransactionEvent", "accept")
                await secc.send_transaction_event("Ended", "dl1", "EVDeparted")
                await wait_until(lambda: bridge.queue.pending() == 0 and
                                 len(csms.messages("TransactionEvent")) == 4, 10, "next message")
                await wait_until(lambda: spy.messages, 5, "error event")
                assert len(bridge.queue.dead()) == 1
    assert spy.messages[0]["code"] == "QueueDeadLetter"
    assert csms.messages("TransactionEvent")[-1]["eventType"] == "Ended"


async def test_boot_pending_then_accepted(tmp_path, bus_broker, csms):
    csms.behave("BootNotification", payload={"currentTime": utc_now(), "interval": 1,
                                             "status": "Pending"})
    async with running_bridge(bridge_config(tmp_path, bus_broker, csms)) as bridge:
        # wait for the Pending *answer*: switching the behaviour as soon as the request
        # arrives raced with the CSMS answering it (the first boot was sometimes Accepted)
        await wait_until(lambda: bridge.registration == "Pending", 5, "pending")
        assert not bridge.online
        csms.behave("BootNotification", "accept")
        await wait_until(lambda: bridge.online, 5, "accepted")
    assert len(csms.messages("BootNotification")) >= 2


async def test_heartbeat_follows_the_interval_from_boot(tmp_path, bus_broker, csms):
    csms.behave("BootNotification", payload={"currentTime": utc_now(), "interval": 1,
                                             "status": "Accepted"})
    async with running_bridge(bridge_config(tmp_path, bus_broker, csms)):
        await csms.wait_for("Heartbeat", 2, timeout=4)


async def test_malformed_ocpp_frames_are_answered_or_ignored_cleanly(tmp_path, bus_broker,
                                                                     csms):
    async with running_bridge(bridge_config(tmp_path, bus_broker, csms)) as bridge:
        await online_bridge(bridge, csms)
        station = await csms.wait_connected(STATION)
        for frame in ['[2,"bad-1","Heartbeat"]', "this is not json", "[]", '{"a":1}',
                      '[2,"bad-2","GetVariables",{"nope":1}]', '[2,"bad-3","FooBar",{}]',
                      '[9,"bad-4","Heartbeat",{}]', '[3,"unknown-id",{}]']:
            await station._connection.send(frame)
        errors = []
        async with asyncio.timeout(5):
            while len(errors) < 4:
                errors.append(await station._response_queue.get())
        answer = await csms.call(STATION, "GetVariables", {"getVariableData": [{
            "component": {"name": "ISO15118Ctrlr"}, "variable": {"name": "PnCEnabled"}}]})
    by_id = {e.unique_id: e.error_code for e in errors}
    assert set(by_id) == {"bad-1", "bad-2", "bad-3", "bad-4"}
    assert by_id["bad-3"] == "NotImplemented"   # OCPP-J 2.0.1 4.3: action not known
    assert by_id["bad-4"] == "MessageTypeNotSupported"
    assert answer["getVariableResult"][0]["attributeStatus"] == "Accepted"   # still alive


async def test_malformed_bus_payloads_are_refused_with_bus_error(tmp_path, bus_broker, csms):
    async with running_bridge(bridge_config(tmp_path, bus_broker, csms)) as bridge:
        await online_bridge(bridge, csms)
        async with aiomqtt.Client(bus_broker.host, bus_broker.port, username=BUS_USER,
                                  password=BUS_PASSWORD,
                                  protocol=aiomqtt.ProtocolVersion.V5) as client:
            reply_topic = "pysecc/v1/evse/1/reply/tester"
            await client.subscribe(reply_topic, qos=1)
            cases = [("pysecc/v1/evse/1/request/authorize", b"{garbage"),
                     ("pysecc/v1/evse/1/request/authorize", json.dumps(
                         {"session_id": "x", "id_token": "", "id_token_type": "eMAID"})),
                     ("pysecc/v1/evse/1/transaction_event", json.dumps(
                         {"message_id": "abcdefgh12", "event_type": "Started"})),
                     ("pysecc/v1/evse/99/request/authorize", json.dumps(
                         {"session_id": "x", "id_token": "T", "id_token_type": "Central"}))]
            for index, (topic, payload) in enumerate(cases):
                await client.publish(topic, payload, qos=1, properties=_properties(
                    reply_topic, str(index).encode()))
            replies = {}
            async with asyncio.timeout(5):
                async for message in client.messages:
                    replies[message.properties.CorrelationData] = json.loads(message.payload)
                    if len(replies) == len(cases):
                        break
        assert bridge.queue.pending() == 0 and not csms.messages("TransactionEvent")
    assert all(r["error"]["code"] == "InvalidPayload" for r in replies.values())
    assert "id_token" in replies[b"1"]["error"]["message"]
    assert "unknown EVSE" in replies[b"3"]["error"]["message"]


async def test_offline_eim_authorization_from_cache_only_when_allowed(tmp_path, bus_broker, csms):
    from secc.authorization import AuthorizationRequest, AuthorizationStatus
    from secc.bus.authorizer import BusAuthorizer

    async with running_bridge(bridge_config(tmp_path, bus_broker, csms)) as bridge:
        async with SeccBusClient(secc_config(tmp_path, bus_broker)) as secc:
            await online_bridge(bridge, csms)
            await secc.wait_connected()
            authorizer = BusAuthorizer(secc, timeout=3)
            known = AuthorizationRequest("1", "oa1", "04KNOWN", "ISO14443")
            assert (await authorizer.authorize(known)).accepted
            await csms.stop()
            await wait_until(lambda: not bridge.online, 5, "offline")
            refused = await authorizer.authorize(known)    # LocalAuthorizeOffline is false
            bridge.device_model.set_variable("AuthCtrlr", "LocalAuthorizeOffline", "true")
            cached = await authorizer.authorize(known)
            stranger = await authorizer.authorize(
                AuthorizationRequest("1", "oa2", "04STRANGER", "ISO14443"))
    assert refused.status is AuthorizationStatus.TIMEOUT
    assert cached.accepted and "authorization cache" in cached.reason
    assert stranger.status is AuthorizationStatus.TIMEOUT


async def test_offline_contract_validation_against_installed_mo_root(tmp_path, bus_broker, csms,
                                                                     test_pki):
    from cryptography.hazmat.primitives import serialization

    from secc.authorization import AuthorizationRequest, AuthorizationStatus
    from secc.bus.authorizer import BusAuthorizer
    from sim.testing.pki import Defect

    def pem(*certs) -> str:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs).decode()

    expired = test_pki.issue_leaf(test_pki.mo_sub2, test_pki.emaid, "pysecc eMSP",
                                  defect=Defect.EXPIRED)
    subs = [test_pki.mo_sub2.cert, test_pki.mo_sub1.cert]
    async with running_bridge(bridge_config(tmp_path, bus_broker, csms)) as bridge:
        async with SeccBusClient(secc_config(tmp_path, bus_broker)) as secc:
            await online_bridge(bridge, csms)
            await secc.wait_connected()
            await csms.call(STATION, "InstallCertificate", {
                "certificateType": "MORootCertificate",
                "certificate": test_pki.mo_root.cert_pem.decode()})
            await csms.stop()
            await wait_until(lambda: not bridge.online, 5, "offline")
            authorizer = BusAuthorizer(secc, timeout=3)
            good = await authorizer.authorize(AuthorizationRequest(
                "1", "oc1", test_pki.emaid, "eMAID",
                contract_chain_pem=pem(test_pki.contract_leaf.cert, *subs)))
            bad = await authorizer.authorize(AuthorizationRequest(
                "1", "oc2", test_pki.emaid, "eMAID", contract_chain_pem=pem(expired.cert, *subs)))
    assert good.accepted and "validated locally" in good.reason
    assert bad.status is AuthorizationStatus.CERTIFICATE_REJECTED
    assert "CertificateExpired" in bad.reason


async def test_csms_refusing_boot_with_callerror_does_not_kill_the_bridge(tmp_path, bus_broker,
                                                                          csms):
    csms.behave("BootNotification", "not_implemented")
    async with running_bridge(bridge_config(tmp_path, bus_broker, csms)) as bridge:
        await csms.wait_for("BootNotification", 2)       # refused, reconnected, retried
        assert not bridge.online
        csms.behave("BootNotification", payload={"currentTime": utc_now(), "interval": 300,
                                                 "status": "Accepted"})
        await wait_until(lambda: bridge.online, 10, "accepted after refusals")
