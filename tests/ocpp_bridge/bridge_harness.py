"""Real components wired together for bridge tests: mosquitto, the test CSMS, the bridge, and
the SECC bus client. Short retry/timeouts keep the suite fast."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from pathlib import Path

from ocpp_bridge.app import Bridge
from ocpp_bridge.config import BridgeConfig, BusConfig, CsmsConfig, StationConfig, StorageConfig
from secc.bus.client import SeccBusClient, SeccBusConfig
from secc.common.mqtt import BrokerConfig
from sim.testing.broker import MosquittoBroker
from sim.csms import TestCsms
from sim.testing.waits import wait_until

STATION = "CS1"
PASSWORD = "test-password-0123"
BUS_USER, BUS_PASSWORD = "pysecc", "bus-secret"


def bridge_config(tmp: Path, broker: MosquittoBroker, csms: TestCsms, **csms_overrides
                  ) -> BridgeConfig:
    csms_cfg = CsmsConfig(url=csms.url, station_id=STATION, security_profile=1,
                          password=PASSWORD, response_timeout=2.0, retry_initial=0.1,
                          retry_max=0.5, message_attempts=3)
    csms_cfg = replace(csms_cfg, **csms_overrides)
    return BridgeConfig(
        csms=csms_cfg,
        bus=BusConfig(host=broker.host, port=broker.port, username=BUS_USER,
                      password=BUS_PASSWORD, client_id="bridge-test"),
        storage=StorageConfig(queue=tmp / "bridge" / "queue.db",
                              certificates=tmp / "bridge" / "certs"),
        station=StationConfig(evse_ids=(1, 2), vendor="pysecc", model="test",
                              command_timeout=2.0))


def secc_config(tmp: Path, broker: MosquittoBroker, evse_id: int = 1) -> SeccBusConfig:
    return SeccBusConfig(
        broker=BrokerConfig(broker.host, broker.port, BUS_USER, BUS_PASSWORD,
                            backoff_initial=0.05, backoff_max=0.5),
        evse_id=evse_id, outbox_path=tmp / f"secc-outbox-{evse_id}.db", ack_timeout=1.0,
        request_timeout=5.0, retry_initial=0.05, retry_max=0.5)


@contextlib.asynccontextmanager
async def running_bridge(config: BridgeConfig):
    bridge = Bridge(config)
    task = asyncio.create_task(bridge.run())
    try:
        yield bridge
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        await bridge.bus.close()
        bridge.close()


async def online_bridge(bridge: Bridge, csms: TestCsms) -> None:
    await wait_until(lambda: bridge.online and bridge.bus.connected, 10, "bridge online")


__all__ = ["SeccBusClient", "bridge_config", "secc_config", "running_bridge", "wait_until"]


class BusSpy:
    """Records what appears on bus topics (e.g. the bridge's events/error)."""

    def __init__(self, broker: MosquittoBroker, topic: str) -> None:
        self.broker, self.topic = broker, topic
        self.messages: list[dict] = []
        self._ready = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        import json

        import aiomqtt

        async with aiomqtt.Client(self.broker.host, self.broker.port, username=BUS_USER,
                                  password=BUS_PASSWORD,
                                  protocol=aiomqtt.ProtocolVersion.V5) as client:
            await client.subscribe(self.topic, qos=1)
            self._ready.set()
            async for message in client.messages:
                self.messages.append(json.loads(message.payload))

    async def __aenter__(self) -> BusSpy:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._ready.wait(), 5)
        return self

    async def __aexit__(self, *exc) -> None:
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task
