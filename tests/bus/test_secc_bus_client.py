"""The SECC client against a real mosquitto with credentials: retained state, last will,
persistent outbox across restarts, reconnects after a broker restart, and BusAuthorizer."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap

import aiomqtt
from bus_test_credentials import BUS_PASSWORD, BUS_USER

from secc.authorization import AuthorizationRequest, AuthorizationStatus
from secc import contract
from secc.bus.authorizer import BusAuthorizer
from secc.bus.client import SeccBusClient, SeccBusConfig
from secc.common.mqtt import BrokerConfig, _properties
from sim.testing.broker import MosquittoBroker
from sim.testing.waits import wait_until


def config(tmp_path, broker, *, password=BUS_PASSWORD, evse_id=1) -> SeccBusConfig:
    return SeccBusConfig(
        broker=BrokerConfig(broker.host, broker.port, BUS_USER, password,
                            backoff_initial=0.05, backoff_max=0.3),
        evse_id=evse_id, outbox_path=tmp_path / "outbox.db", ack_timeout=0.5,
        request_timeout=1.0, retry_initial=0.05, retry_max=0.3)


async def retained(broker, topic: str, timeout: float = 3.0) -> dict | None:
    async with aiomqtt.Client(broker.host, broker.port, username=BUS_USER,
                              password=BUS_PASSWORD,
                              protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.subscribe(topic, qos=1)
        try:
            async with asyncio.timeout(timeout):
                async for message in client.messages:
                    return json.loads(message.payload)
        except TimeoutError:
            return None


async def wait_retained(broker, topic: str, predicate, timeout: float = 8.0) -> dict:
    """The first message on ``topic`` (retained or live) that satisfies ``predicate``."""
    async with aiomqtt.Client(broker.host, broker.port, username=BUS_USER,
                              password=BUS_PASSWORD,
                              protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.subscribe(topic, qos=1)
        async with asyncio.timeout(timeout):
            async for message in client.messages:
                payload = json.loads(message.payload)
                if predicate(payload):
                    return payload
    raise AssertionError(f"no matching message on {topic}")


class FakeBridgeAcker:
    """A minimal bridge stand-in that acks persisted messages and records them; with
    ``ack=False`` it only records (a bridge that never answers)."""

    def __init__(self, broker, ack: bool = True) -> None:
        self.broker = broker
        self.ack = ack
        self.seen: list[dict] = []
        self.subscribed = asyncio.Event()
        self.received = asyncio.Event()

    async def run(self) -> None:
        async with aiomqtt.Client(self.broker.host, self.broker.port, username=BUS_USER,
                                  password=BUS_PASSWORD,
                                  protocol=aiomqtt.ProtocolVersion.V5) as client:
            await client.subscribe("pysecc/v1/evse/+/transaction_event", qos=1)
            self.subscribed.set()
            async for message in client.messages:
                payload = json.loads(message.payload)
                self.seen.append(payload)
                self.received.set()
                if not self.ack:
                    continue
                props = message.properties
                await client.publish(props.ResponseTopic, json.dumps(
                    {"message_id": payload["message_id"], "queued": True}), qos=1,
                    properties=_properties(None, props.CorrelationData))


async def test_state_is_retained_and_online_flag_set(tmp_path, auth_broker):
    async with SeccBusClient(config(tmp_path, auth_broker, evse_id=3)) as secc:
        await secc.wait_connected()
        await secc.publish_state("Charging", session_id="abcd", protocol="ISO15118-2")
        state = await retained(auth_broker, "pysecc/v1/evse/3/state")
        online = await retained(auth_broker, "pysecc/v1/evse/3/online")
    assert state["state"] == "Charging" and state["session_id"] == "abcd"
    assert online["online"] is True
    assert (await retained(auth_broker, "pysecc/v1/evse/3/online"))["online"] is False


def test_last_will_reports_offline_when_the_secc_process_dies(tmp_path, auth_broker):
    script = textwrap.dedent(f"""
        import asyncio, sys
        from pathlib import Path
        from secc.bus.client import SeccBusClient, SeccBusConfig
        from secc.common.mqtt import BrokerConfig, _properties
        async def main():
            cfg = SeccBusConfig(BrokerConfig("{auth_broker.host}", {auth_broker.port},
                                "{BUS_USER}", "{BUS_PASSWORD}", keepalive=2), evse_id=4,
                                outbox_path=Path("{tmp_path}/o.db"))
            client = SeccBusClient(cfg)
            await client.start()
            await client.wait_connected()
            print("up", flush=True)
            await asyncio.Event().wait()   # until killed
        asyncio.run(main())
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"up"
        online = asyncio.run(wait_retained(auth_broker, "pysecc/v1/evse/4/online",
                                           lambda p: p["online"] is True))
        assert online["online"] is True
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        # the broker publishes the last will within 1.5 x keepalive (2 s)
        will = asyncio.run(wait_retained(auth_broker, "pysecc/v1/evse/4/online",
                                         lambda p: p["online"] is False))
        assert will["online"] is False, "last will {online:false} was not published"
    finally:
        proc.kill()
        proc.wait()


async def test_outbox_keeps_unacked_events_across_client_restart(tmp_path, auth_broker):
    cfg = config(tmp_path, auth_broker, evse_id=5)
    silent = FakeBridgeAcker(auth_broker, ack=False)
    task = asyncio.create_task(silent.run())
    try:
        await asyncio.wait_for(silent.subscribed.wait(), 5)
        async with SeccBusClient(cfg) as secc:
            await secc.wait_connected()
            ids = [await secc.send_transaction_event("Started", "s5", "CablePluggedIn"),
                   await secc.send_transaction_event("Ended", "s5", "EVDeparted")]
            await asyncio.wait_for(silent.received.wait(), 5)   # sent, never acked ...
            assert secc.outbox_pending == 2     # ... so nothing is deleted
    finally:
        task.cancel()
    acker = FakeBridgeAcker(auth_broker)
    task = asyncio.create_task(acker.run())
    try:
        await asyncio.wait_for(acker.subscribed.wait(), 5)
        async with SeccBusClient(cfg) as secc:
            await secc.flush(5)
    finally:
        task.cancel()
    got = [m["message_id"] for m in acker.seen]
    assert [i for i in got if i in ids][:1] == ids[:1]
    assert set(ids) <= set(got)
    assert got.index(ids[0]) < got.index(ids[1])


async def test_client_reconnects_and_resends_after_broker_restart(tmp_path):
    broker = MosquittoBroker(username=BUS_USER, password=BUS_PASSWORD).start()
    port = broker.port
    try:
        async with SeccBusClient(config(tmp_path, broker, evse_id=6)) as secc:
            await secc.wait_connected()
            await secc.publish_state("Occupied", session_id="s6")
            broker.stop()
            await wait_until(lambda: not secc.endpoint.connected, 5, "the client to lose the bus")
            assert not secc.endpoint.connected
            message_id = await secc.send_transaction_event("Started", "s6", "Authorized")
            broker = MosquittoBroker(port=port, username=BUS_USER, password=BUS_PASSWORD).start()
            acker = FakeBridgeAcker(broker)
            task = asyncio.create_task(acker.run())
            await secc.wait_connected(10)
            await secc.flush(10)
            task.cancel()
            assert secc.endpoint.connections >= 2
            assert message_id in [m["message_id"] for m in acker.seen]
            state = await retained(broker, "pysecc/v1/evse/6/state")
            assert state["state"] == "Occupied"  # republished after the reconnect
    finally:
        broker.stop()


async def test_wrong_bus_password_never_connects_and_authorizer_times_out(tmp_path, auth_broker,
                                                                          caplog):
    async with SeccBusClient(config(tmp_path, auth_broker, password="wrong")) as secc:
        await wait_until(lambda: caplog.text.count("bus connection lost or refused") >= 2, 10,
                         "two refused connection attempts")
        assert not secc.endpoint.connected
        decision = await BusAuthorizer(secc, timeout=0.5).authorize(
            AuthorizationRequest("1", "s7", "TOKEN1", "ISO14443"))
    assert decision.status is AuthorizationStatus.TIMEOUT
    assert "bridge did not answer" in decision.reason


async def test_authorizer_times_out_when_no_bridge_listens(tmp_path, auth_broker):
    async with SeccBusClient(config(tmp_path, auth_broker, evse_id=8)) as secc:
        await secc.wait_connected()
        decision = await BusAuthorizer(secc, timeout=0.3).authorize(
            AuthorizationRequest("8", "s8", "TOKEN1", "ISO14443"))
    assert decision.status is AuthorizationStatus.TIMEOUT


async def test_client_refuses_to_send_an_invalid_payload(tmp_path, auth_broker):
    async with SeccBusClient(config(tmp_path, auth_broker, evse_id=9)) as secc:
        try:
            await secc.send_transaction_event("Paused", "s9", "Authorized")
        except contract.BusPayloadError as exc:
            assert "event_type" in str(exc)
        else:
            raise AssertionError("invalid event accepted")
        assert secc.outbox_pending == 0
