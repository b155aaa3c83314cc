"""OCPP Core commands end to end on localhost: test CSMS -> bridge process -> mosquitto ->
the SECC's command handling (``secc.session.evse_commands``) on a simulated board.

* Reset(OnIdle) of the whole station, idle EVSE: until the SECC has reset (safe state, pilot
  and state restored: READY again), and until the CSMS has the BootNotification(RemoteReset)
  and the EVSE's StatusNotification after it;
* ChangeAvailability(Inoperative / Operative) with a car plugged in: until the pilot has
  changed (X1 / 5 % PWM) and until the CSMS has the StatusNotification (Unavailable /
  Occupied).

Run: ``.venv/bin/python benchmarks/ocpp_core_bench.py`` (``make bench`` runs it).
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hal.pilot import PilotSignalKind  # noqa: E402
from hal.sim import SimBoard  # noqa: E402
from ocpp_bridge.config import (  # noqa: E402
    BridgeConfig,
    BusConfig,
    CsmsConfig,
    StationConfig,
    StorageConfig,
    to_toml,
)
from secc.bus.client import SeccBusClient, SeccBusConfig  # noqa: E402
from secc.bus.transactions import TransactionReporter  # noqa: E402
from secc.common.mqtt import BrokerConfig  # noqa: E402
from secc.session.evse_commands import EvseCommands  # noqa: E402
from sim.csms import TestCsms  # noqa: E402
from sim.testing.broker import MosquittoBroker  # noqa: E402

RESETS = 10
AVAILABILITY_CHANGES = 20
STATION = "CS1"


def summary(name: str, values_ms: list[float]) -> str:
    ordered = sorted(values_ms)
    return (f"{name}: p50 {statistics.median(ordered):.1f} ms, "
            f"max {ordered[-1]:.1f} ms (n={len(ordered)})")


async def until(predicate, timeout: float = 20.0) -> float:
    """Seconds until ``predicate()``; polled every millisecond (measurement only)."""
    start = time.perf_counter()
    while not predicate():
        if time.perf_counter() - start > timeout:
            raise TimeoutError("benchmark step timed out")
        await asyncio.sleep(0.001)
    return time.perf_counter() - start


async def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="pysecc-core-bench-"))
    with MosquittoBroker(username="bench", password="bench-pw") as broker:
        csms = await TestCsms(passwords={STATION: "bench-password"}).start()
        config = BridgeConfig(
            csms=CsmsConfig(url=csms.url, station_id=STATION, password="bench-password",
                            retry_initial=0.05, retry_max=1.0),
            bus=BusConfig(broker.host, broker.port, "bench", "bench-pw", "bridge-bench"),
            storage=StorageConfig(work / "queue.db", work / "certs"),
            station=StationConfig(evse_ids=(1,)))
        (work / "bridge.toml").write_text(to_toml(config))
        bridge = subprocess.Popen([sys.executable, "-m", "ocpp_bridge", "--config",
                                   str(work / "bridge.toml"), "--log-level", "WARNING"],
                                  cwd=REPO)
        board = SimBoard(realtime=True)
        await board.start()
        try:
            await csms.wait_for("BootNotification", timeout=20)
            secc = SeccBusClient(SeccBusConfig(
                BrokerConfig(broker.host, broker.port, "bench", "bench-pw"), evse_id=1,
                outbox_path=work / "outbox.db"))
            async with secc:
                await secc.wait_connected()
                commands = EvseCommands(board, secc, hlc_duty_percent=5.0,
                                        session_active=lambda: False,
                                        stop_session=lambda cause: None,
                                        reporter=TransactionReporter(secc, board, 60))
                commands.register()
                await commands.publish_state()
                await until(lambda: STATION in csms.stations and csms.messages(
                    "StatusNotification"))
                await reset_bench(csms, commands)
                await availability_bench(csms, board, commands)
        finally:
            bridge.terminate()
            await asyncio.to_thread(bridge.wait, 10)
            await board.close()
            await csms.stop()


async def reset_bench(csms: TestCsms, commands: EvseCommands) -> None:
    secc_ready, csms_ready = [], []
    for _ in range(RESETS):
        await until(lambda: STATION in csms.stations)
        resets, received = commands.resets, len(csms.received)
        start = time.perf_counter()
        answer = await csms.call(STATION, "Reset", {"type": "OnIdle"})
        assert answer["status"] == "Accepted", answer

        def booted_and_reported() -> bool:
            tail = csms.received[received:]
            boot = next((i for i, r in enumerate(tail) if r.action == "BootNotification"
                         and r.payload["reason"] == "RemoteReset"), None)
            return boot is not None and any(r.action == "StatusNotification"
                                            for r in tail[boot:])
        await until(lambda: commands.resets > resets)
        secc_ready.append((time.perf_counter() - start) * 1000)
        await until(booted_and_reported)
        csms_ready.append((time.perf_counter() - start) * 1000)
    print(summary("Reset(OnIdle) -> SECC reset done, READY again", secc_ready))
    print(summary("Reset(OnIdle) -> CSMS has BootNotification(RemoteReset) + "
                  "StatusNotification", csms_ready))


async def availability_bench(csms: TestCsms, board: SimBoard, commands: EvseCommands) -> None:
    board.ev_set_pilot("B")
    await until(lambda: board.pilot_state.value == "B")
    await commands.publish_state()
    pilot_ms, status_ms = [], []
    for n in range(AVAILABILITY_CHANGES):
        inoperative = n % 2 == 0
        wanted_pilot = PilotSignalKind.X1 if inoperative else PilotSignalKind.PWM
        wanted_status = "Unavailable" if inoperative else "Occupied"
        received = len(csms.received)
        start = time.perf_counter()
        call = asyncio.ensure_future(csms.call(STATION, "ChangeAvailability", {
            "operationalStatus": "Inoperative" if inoperative else "Operative",
            "evse": {"id": 1}}))
        await until(lambda: board.plant.pilot_signal.kind is wanted_pilot)
        pilot_ms.append((time.perf_counter() - start) * 1000)
        await until(lambda: any(r.action == "StatusNotification"
                                and r.payload["connectorStatus"] == wanted_status
                                for r in csms.received[received:]))
        status_ms.append((time.perf_counter() - start) * 1000)
        assert (await call)["status"] == "Accepted"
    print(summary("ChangeAvailability -> pilot changed (X1 / 5 % PWM)", pilot_ms))
    print(summary("ChangeAvailability -> CSMS has StatusNotification", status_ms))


if __name__ == "__main__":
    asyncio.run(main())
