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
from sim.testing.broker import MosquittoBroker
from sim.testing.waits import wait_until
from sim.csms import TestCsms

REPO = Path(__file__).resolve().parents[1]
STATION_ID = "PYSECC-SIM-1"
STATION_PASSWORD = "sim-station-password"
BUS_USER, BUS_PASSWORD = "secc", "sim-bus-password"            # the SECC's bus account
BRIDGE_USER, BRIDGE_PASSWORD = "ocpp-bridge", "sim-bridge-password"


def start_bridge_process(config: BridgeConfig, path: Path, log_level: str = "WARNING",
                         **popen: Any) -> subprocess.Popen:
    """Write ``config`` to ``path`` (TOML) and start the OCPP bridge on it as its own process,
    as on a charger (``python -m ocpp_bridge --config ...``)."""
    path.write_text(to_toml(config))
    return subprocess.Popen([sys.executable, "-m", "ocpp_bridge", "--config", str(path),
                             "--log-level", log_level], cwd=REPO, **popen)


@dataclass
class ChargerBackend:
    """Broker + test CSMS + OCPP bridge process for one simulated charger."""

    work: Path
    broker: MosquittoBroker | None = None
    csms: TestCsms | None = None
    bridge: subprocess.Popen | None = None
    log_level: str = "WARNING"
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    async def start(self) -> ChargerBackend:
        self.broker = self._stack.enter_context(MosquittoBroker(
            username=BUS_USER, password=BUS_PASSWORD,
            bridge_user=(BRIDGE_USER, BRIDGE_PASSWORD)))  # with ACLs
        self.csms = await TestCsms(passwords={STATION_ID: STATION_PASSWORD}).start()
        config = BridgeConfig(
            csms=CsmsConfig(url=self.csms.url, station_id=STATION_ID, password=STATION_PASSWORD),
            bus=BusConfig(self.broker.host, self.broker.port, BRIDGE_USER, BRIDGE_PASSWORD,
                          "ocpp-bridge"),
            storage=StorageConfig(self.work / "bridge-queue.db", self.work / "bridge-certs"),
            station=StationConfig(evse_ids=(1,), vendor="pysecc", model="simulated"))
        self.bridge = start_bridge_process(config, self.work / "bridge.toml", self.log_level)
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


# --- one plug-in against the whole charger (tests, benchmarks) ------------------------------
SIM_BOARD = """
[board]
name = "sim-charger"
kind = "sim"
evse_id = "DE*PYS*E00001*1"
output = "{output}"
max_current_a = {max_current}
[plc]
interface = "{iface}"
start_at_sdp = true
[v2g]
protocols = ["iso20", "iso2", "din"]
tls = "optional"
plug_and_charge = {pnc}
certificate_dir = "{certs}"
"""


@dataclass
class ChargerRun:
    """What the CSMS saw and how the SECC's sessions ended."""

    received: list[str]                         # OCPP actions, in order
    messages: dict[str, list[dict[str, Any]]]   # action -> payloads
    transactions: list[str]                     # ``Started#0(EVDetected)`` ...
    summaries: list[Any]                        # secc.session.SessionSummary per connection
    extra: dict[str, Any] = field(default_factory=dict)


def pnc_car(link, work: Path, protocol: str, contract: Any, loops: int = 3,
            vehicle_tls: tuple[Path, Path] | None = None) -> Any:
    """``ev_config`` of a Plug & Charge car (DC over TLS, contract ``contract``, a credential
    of ``sim.testing.pki``) for ``run_charger_session``: ``loops`` charge loops, 30 -> 80 %.
    ``vehicle_tls``: -20's vehicle certificate chain and key (mutual TLS)."""
    from sim.evcc.battery import Battery
    from sim.evcc.core import EvccConfig, PncContract
    from sim.evcc.runner import EvSessionConfig, sim_board_signals

    def car(board, loop):
        return EvSessionConfig(
            on_signals=sim_board_signals(board, loop), interface=link.ifnames["ev"],
            protocol=protocol, mode="dc", tls=True, v2g_root=work / "v2g_root.pem",
            vehicle_tls=vehicle_tls, contract=PncContract.from_credential(contract),
            battery=Battery(soc=30, target_soc=80, max_iterations=loops),
            evcc=EvccConfig(loop_interval=0.05, repeat_interval=0.05,
                            seconds_per_iteration=20.0))

    return car


def run_charger_session(link, work: Path, ev_config: Any, *, output: str = "dc",
                        pnc: bool = False, prepare_csms: Any = None, during: Any = None,
                        timeout: float = 90.0) -> tuple[ChargerRun, Any]:
    """Plug a simulated car into the whole charger (SECC daemon with a simulated board in the
    secc namespace, the bus, the bridge process and the test CSMS there too, as on a CCU).

    ``ev_config(board, loop)`` returns the car's ``EvSessionConfig`` (``board``/``loop`` for
    ``sim_board_signals``); ``prepare_csms(csms)`` adjusts the test CSMS before the car
    comes; ``during(stack, extra)`` runs beside the session (e.g. a remote stop; the SECC
    daemon is ``extra["daemon"]`` meanwhile) and may store results in ``extra``. ``work`` holds the SECC certificates and the databases."""
    from secc.boards import board_from_config
    from secc.config import loads_board_config
    from secc.daemon import SeccDaemon, bus_from_config, server_tls_context
    from sim.ev_transport import run_secc_and_ev, wait_for_event
    from sim.evcc.runner import run_ev_session

    board_text = SIM_BOARD.format(output=output, max_current=32 if output == "ac" else 200,
                                  iface=link.ifnames["secc"], certs=work,
                                  pnc="true" if pnc else "false")
    extra: dict[str, Any] = {}

    async def secc_main(ready, ev_done):
        stack = await ChargerBackend(work).start()
        try:
            if prepare_csms is not None:
                prepare_csms(stack.csms)
            config = loads_board_config(board_text + stack.board_bus_section())
            bus, authorizer = bus_from_config(config)
            board = board_from_config(config)
            daemon = SeccDaemon(config, board, link.ifnames["secc"], authorizer=authorizer,
                                bus=bus, tls_context=server_tls_context(config))
            await daemon.start()
            try:
                board.ev_set_pilot("B")
                ready.set_result((board, asyncio.get_running_loop()))
                extra["daemon"] = daemon
                if during is not None:
                    extra["daemon"] = daemon     # for ``during``; taken out again below
                    try:
                        await during(stack, extra)
                    finally:
                        extra.pop("daemon", None)
                await wait_for_event(ev_done)
                await bus.flush(20)
                with contextlib.suppress(TimeoutError):   # the run then shows what is missing
                    await wait_until(lambda: any(e.startswith("Ended")
                                                 for e in stack.transaction_summary()), 10)
                received = stack.received()
                return ChargerRun(received, {a: stack.csms.messages(a) for a in set(received)},
                                  stack.transaction_summary(), list(daemon.summaries), extra)
            finally:
                await daemon.stop()
        finally:
            await stack.stop()

    async def ev_main(board_and_loop):
        return await run_ev_session(ev_config(*board_and_loop))

    return run_secc_and_ev(link, secc_main, ev_main, timeout=timeout)
