"""``python -m sim.bridge_demo``: the bus and the bridge end to end, for ``make demo``.

Starts mosquitto (recommended bus settings), the test CSMS on a free port, the bridge as its
own process (security profile 1), then plays a short EIM session from the SECC side over the
bus and prints what the CSMS received. ``run_bus_demo()`` is what ``sim.demo`` calls.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from ocpp_bridge.config import (
    BridgeConfig,
    BusConfig,
    CsmsConfig,
    StationConfig,
    StorageConfig,
)
from secc.authorization import AuthorizationRequest
from secc.bus.authorizer import BusAuthorizer
from sim.testing.broker import MosquittoBroker
from secc.bus.client import SeccBusClient, SeccBusConfig, reading, sample, utc_now
from secc.common.mqtt import BrokerConfig
from sim.charger import start_bridge_process
from sim.csms import TestCsms



async def _session(broker: MosquittoBroker, work: Path) -> int:
    csms = await TestCsms(passwords={"DEMO-CS1": "demo-password-123"}).start()
    config = BridgeConfig(
        csms=CsmsConfig(url=csms.url, station_id="DEMO-CS1", password="demo-password-123"),
        bus=BusConfig(broker.host, broker.port, "pysecc", "demo-bus", "ocpp-bridge"),
        storage=StorageConfig(work / "queue.db", work / "certs"),
        station=StationConfig(evse_ids=(1,), vendor="pysecc", model="demo"))
    bridge = start_bridge_process(config, work / "bridge.toml")
    print(f"   test CSMS at {csms.url}/DEMO-CS1; bridge config {work / 'bridge.toml'}")
    try:
        await csms.wait_for("BootNotification", timeout=20)
        bus = SeccBusClient(SeccBusConfig(
            BrokerConfig(broker.host, broker.port, "pysecc", "demo-bus"), evse_id=1,
            outbox_path=work / "outbox.db"))
        async with bus:
            await bus.wait_connected()
            sid = "d3m0c0ffee000001"
            await bus.publish_state("Occupied", session_id=sid, protocol="ISO15118-2")
            await bus.send_transaction_event("Started", sid, "CablePluggedIn",
                                             charging_state="EVConnected")
            started = time.perf_counter()
            decision = await BusAuthorizer(bus).authorize(
                AuthorizationRequest("1", sid, "04A1B2C3D4", "ISO14443"))
            print(f"   Authorize over the bus: {decision.status.value} "
                  f"({(time.perf_counter() - started) * 1000:.1f} ms)")
            for wh in (0.0, 1500.0, 3000.0):
                await bus.send_meter_values([reading(utc_now(), [
                    sample("Energy.Active.Import.Register", wh, unit="Wh")])], session_id=sid)
            await bus.send_transaction_event("Ended", sid, "StopAuthorized",
                                             end_reason="ev_unplugged")
            await bus.publish_state("Available")
            await bus.flush(20)
            await csms.wait_for("TransactionEvent", 5, timeout=20)
        events = csms.messages("TransactionEvent")
        print("   CSMS received: " + ", ".join(csms.actions()))
        print("   TransactionEvents: " + ", ".join(
            f"{e['eventType']}#{e['seqNo']}" for e in events))
        return 0 if decision.accepted and len(events) == 5 else 1
    finally:
        bridge.terminate()
        bridge.wait(10)
        await csms.stop()


def run_bus_demo() -> int:
    with tempfile.TemporaryDirectory(prefix="pysecc-bus-demo-") as tmp:
        with MosquittoBroker(username="pysecc", password="demo-bus") as broker:
            return asyncio.run(_session(broker, Path(tmp)))


if __name__ == "__main__":
    print("== OCPP bridge: SECC bus -> bridge process -> test CSMS")
    sys.exit(run_bus_demo())
