"""A whole simulated charger: the processes a CCU runs, started the way the product runs them.

Inside the SECC's network namespace (call from a coroutine running there, e.g. through
``VethLink.run_coroutine("secc", ...)``): a mosquitto broker on the box's own loopback, the
test CSMS (standing in for the operator's backend), the OCPP bridge as its own process
(``python -m ocpp_bridge``), and the SECC daemon with its bus client, simulated board and
simulated modem. Children started from that thread live in that namespace too.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocpp_bridge.config import BridgeConfig, BusConfig, CsmsConfig, StationConfig, StorageConfig
from ocpp_bridge.config import to_toml
from secc.bus.broker import LocalBroker
from sim.csms import TestCsms

REPO = Path(__file__).resolve().parents[1]
STATION_ID = "PYSECC-SIM-1"
STATION_PASSWORD = "sim-station-password"
BUS_USER, BUS_PASSWORD = "secc", "sim-bus-password"            # the SECC's bus account
BRIDGE_USER, BRIDGE_PASSWORD = "ocpp-bridge", "sim-bridge-password"


@dataclass
class ChargerBackend:
    """Broker + test CSMS + OCPP bridge process for one simulated charger."""

    work: Path
    broker: LocalBroker | None = None
    csms: TestCsms | None = None
    bridge: subprocess.Popen | None = None
    log_level: str = "WARNING"
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    async def start(self) -> ChargerBackend:
        self.broker = self._stack.enter_context(LocalBroker(
            BUS_USER, BUS_PASSWORD, bridge_user=(BRIDGE_USER, BRIDGE_PASSWORD)))  # with ACLs
        self.csms = await TestCsms(passwords={STATION_ID: STATION_PASSWORD}).start()
        config = BridgeConfig(
            csms=CsmsConfig(url=self.csms.url, station_id=STATION_ID, password=STATION_PASSWORD),
            bus=BusConfig(self.broker.host, self.broker.port, BRIDGE_USER, BRIDGE_PASSWORD,
                          "ocpp-bridge"),
            storage=StorageConfig(self.work / "bridge-queue.db", self.work / "bridge-certs"),
            station=StationConfig(evse_ids=(1,), vendor="pysecc", model="simulated"))
        path = self.work / "bridge.toml"
        path.write_text(to_toml(config))
        self.bridge = subprocess.Popen(
            [sys.executable, "-m", "ocpp_bridge", "--config", str(path), "--log-level",
             self.log_level], cwd=REPO)
        await self.csms.wait_for("BootNotification", timeout=20)
        return self

    def board_bus_section(self) -> str:
        """The ``[bus]`` table of a board config that talks to this backend."""
        return (f'[bus]\nenabled = true\nmqtt_host = "{self.broker.host}"\n'
                f'mqtt_port = {self.broker.port}\nusername = "{BUS_USER}"\n'
                f'password = "{BUS_PASSWORD}"\nstate_dir = "{self.work}"\nmeter_interval = 1\n')

    async def stop(self) -> None:
        if self.bridge is not None:
            self.bridge.terminate()
            try:
                await asyncio.to_thread(self.bridge.wait, 10)
            except subprocess.TimeoutExpired:
                self.bridge.kill()
        if self.csms is not None:
            await self.csms.stop()
        self._stack.close()

    def transaction_summary(self) -> list[str]:
        """``Started#0 Updated#1 ...`` as the CSMS received them."""
        assert self.csms is not None
        return [f"{e['eventType']}#{e['seqNo']}({e['triggerReason']})"
                for e in self.csms.messages("TransactionEvent")]

    def received(self) -> list[str]:
        assert self.csms is not None
        return self.csms.actions()


async def wait_until(predicate: Any, timeout: float, step: float = 0.05) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if predicate():
            return True
        await asyncio.sleep(step)
    return bool(predicate())
