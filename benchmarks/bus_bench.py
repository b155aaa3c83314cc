"""Bus benchmarks on localhost, real components (mosquitto, bridge process, test CSMS):

* request round trip SECC -> bus -> bridge -> OCPP/ws -> CSMS -> back (Authorize), p50/p99;
* sustained TransactionEvent throughput through both persistent queues (SECC outbox and the
  bridge's SQLite queue, synchronous=FULL), measured until the CSMS has received them all.

Run: ``.venv/bin/python benchmarks/bus_bench.py`` (``make bench`` runs it).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ocpp_bridge.config import (  # noqa: E402
    BridgeConfig,
    BusConfig,
    CsmsConfig,
    StationConfig,
    StorageConfig,
)
from secc.authorization import AuthorizationRequest  # noqa: E402
from secc.bus.authorizer import BusAuthorizer  # noqa: E402
from secc.bus.client import SeccBusClient, SeccBusConfig, reading, sample, utc_now  # noqa: E402
from secc.common.mqtt import BrokerConfig  # noqa: E402
from sim.testing.broker import MosquittoBroker  # noqa: E402
from sim.charger import start_bridge_process  # noqa: E402
from sim.csms import TestCsms  # noqa: E402

ROUND_TRIPS = 300
EVENTS = 500


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main() -> None:
    await run(MosquittoBroker(username="bench", password="bench-pw"),
              "mosquitto with set_tcp_nodelay true (recommended, secc/bus/broker.py)", EVENTS)
    await run(MosquittoBroker(username="bench", password="bench-pw", tcp_nodelay=False),
              "mosquitto defaults (Nagle on), for comparison", 100)


async def run(broker_cm, title: str, events: int) -> None:
    print(f"== {title}")
    work = Path(tempfile.mkdtemp(prefix="pysecc-bus-bench-"))
    with broker_cm as broker:
        csms = await TestCsms(passwords={"CS1": "bench-password"}).start()
        config = BridgeConfig(
            csms=CsmsConfig(url=csms.url, station_id="CS1", password="bench-password",
                            retry_initial=0.1, retry_max=1.0),
            bus=BusConfig(broker.host, broker.port, "bench", "bench-pw", "bridge-bench"),
            storage=StorageConfig(work / "queue.db", work / "certs"),
            station=StationConfig(evse_ids=(1,)))
        bridge = start_bridge_process(config, work / "bridge.toml")
        try:
            await csms.wait_for("BootNotification", timeout=20)
            secc = SeccBusClient(SeccBusConfig(
                BrokerConfig(broker.host, broker.port, "bench", "bench-pw"), evse_id=1,
                outbox_path=work / "outbox.db"))
            async with secc:
                await secc.wait_connected()
                authorizer = BusAuthorizer(secc)
                request = AuthorizationRequest("1", "bench", "04A1B2C3", "ISO14443")
                for _ in range(20):  # warm-up
                    await authorizer.authorize(request)
                rtts = []
                for _ in range(ROUND_TRIPS):
                    start = time.perf_counter()
                    decision = await authorizer.authorize(request)
                    rtts.append((time.perf_counter() - start) * 1000)
                    assert decision.accepted, decision
                print(f"bus round trip (Authorize SECC->bridge->CSMS->SECC), n={ROUND_TRIPS}: "
                      f"p50 {statistics.median(rtts):.2f} ms, p99 {percentile(rtts, 0.99):.2f} ms, "
                      f"max {max(rtts):.2f} ms")

                before = len(csms.messages("TransactionEvent"))
                start = time.perf_counter()
                for i in range(events):
                    kind = "Started" if i == 0 else "Ended" if i == events - 1 else "Updated"
                    await secc.send_transaction_event(kind, "bench-tx", "MeterValuePeriodic",
                                                      readings=[reading(utc_now(), [sample(
                                                          "Energy.Active.Import.Register",
                                                          float(i), unit="Wh")])])
                committed = time.perf_counter() - start
                await secc.flush(300)
                acked = time.perf_counter() - start
                while len(csms.messages("TransactionEvent")) - before < events:
                    await asyncio.sleep(0.005)
                delivered = time.perf_counter() - start
                print(f"TransactionEvent throughput, n={events}: SECC outbox commits "
                      f"{events / committed:.0f}/s; bridge-acked (persisted) "
                      f"{events / acked:.0f}/s; delivered to CSMS {events / delivered:.0f}/s "
                      f"({delivered:.2f} s total)")
        finally:
            bridge.terminate()
            bridge.wait(10)
            await csms.stop()


if __name__ == "__main__":
    asyncio.run(main())
