"""SIGTERM to the SECC daemon *process* in the middle of charging, the charger as on a CCU:
``secc run`` (its own process, serial MCU board on a pty served by the simulated MCU) in the
SECC's network namespace with mosquitto, the OCPP bridge process and the test CSMS; the
simulated car in the other namespace. systemd's stop is SIGTERM: the daemon asks the car to
stop, the MCU sees the contactors opened at zero current, the transaction ends at the CSMS
(stoppedReason Local) and the process exits 0."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hal.mcu_sim import PtyMcu, SimulatedMcu
from hal.pilot import PilotState
from sim.charger import ChargerBackend
from sim.ev_transport import run_secc_and_ev, wait_for_event
from sim.evcc.battery import Battery
from sim.evcc.core import EvccConfig
from sim.evcc.runner import EvSessionConfig, run_ev_session
from sim.testing.waits import wait_until
from tests.service.notify_socket import NotifySocket

pytestmark = pytest.mark.netns
REPO = Path(__file__).resolve().parents[2]

BOARD = """
[board]
name = "ccu"
kind = "serial"
evse_id = "DE*PYS*E00001*1"
max_current_a = 200
max_voltage_v = 920
[serial]
port = "{port}"
[plc]
interface = "{iface}"
start_at_sdp = true
[v2g]
protocols = ["iso2"]
tls = "optional"
certificate_dir = "{certs}"
"""


def test_sigterm_to_the_secc_process_mid_charge(veth_link, tmp_path, test_pki):
    test_pki.write_secc_files(tmp_path)
    seen: dict = {}

    async def secc_main(ready, ev_done):
        stack = await ChargerBackend(tmp_path).start()
        mcu = SimulatedMcu()
        runner, port, slave_fd = PtyMcu.open_pty(mcu)
        await runner.start()
        plant = mcu.plant
        opened_at: list[float] = []
        command_contactors = plant.command_contactors

        def recording(closed: bool) -> None:   # the current the moment the MCU opens them
            if not closed and plant.contactors_feedback:
                opened_at.append(plant.output_current_a)
            command_contactors(closed)

        plant.command_contactors = recording
        board = tmp_path / "ccu.toml"
        board.write_text(BOARD.format(port=port, iface=veth_link.ifnames["secc"],
                                      certs=tmp_path) + stack.board_bus_section())
        notify = NotifySocket(tmp_path / "notify")
        env = {**os.environ, "NOTIFY_SOCKET": str(notify.path), "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen([sys.executable, "-m", "secc", "--log-level", "WARNING", "run",
                                 "--board", str(board)], env=env)   # in this netns
        try:
            await asyncio.to_thread(notify.wait_for, lambda f: "READY" in f, 60)
            plant.pilot_raw = PilotState.B
            ready.set_result((plant, asyncio.get_running_loop()))

            def charging() -> bool:
                return any(e.get("transactionInfo", {}).get("chargingState") == "Charging"
                           for e in stack.csms.messages("TransactionEvent"))
            await wait_until(charging, 60, "charging at the CSMS")
            await wait_until(lambda: plant.output_current_a > 5, 20, "current flowing")
            seen["current_before"] = plant.output_current_a
            proc.send_signal(signal.SIGTERM)                     # systemctl stop
            seen["exit"] = await asyncio.to_thread(proc.wait, 30)
            await wait_until(lambda: any(t.startswith("Ended")
                                         for t in stack.transaction_summary()), 20,
                             "TransactionEvent(Ended) at the CSMS")
            seen["events"] = stack.csms.messages("TransactionEvent")
            seen["opened_at"] = list(opened_at)
            seen["contactors_after"] = plant.contactors_feedback
            seen["stopping"] = [f for f in notify.all() if "STOPPING" in f]
            await wait_for_event(ev_done)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            notify.close()
            await runner.stop()
            os.close(runner.fd)
            os.close(slave_fd)
            await stack.stop()

    async def ev_main(info):
        plant, loop = info

        def apply(signals) -> None:
            plant.ev_battery_voltage_v = signals.battery_voltage
            plant.pilot_raw = PilotState(signals.pilot)
            plant.ev_contactors_closed = signals.contactors_closed

        return await run_ev_session(EvSessionConfig(
            on_signals=lambda s: loop.call_soon_threadsafe(apply, s) and None,
            interface=veth_link.ifnames["ev"], protocol="iso2", mode="dc",
            battery=Battery(soc=30, target_soc=95),
            evcc=EvccConfig(loop_interval=0.05, repeat_interval=0.05)))

    _, ev = run_secc_and_ev(veth_link, secc_main, ev_main, timeout=120)
    assert seen["current_before"] > 5
    assert seen["exit"] == 0
    assert seen["stopping"] and seen["opened_at"]
    assert max(abs(c) for c in seen["opened_at"]) <= 1.0     # zero current when they opened
    assert seen["contactors_after"] is False
    assert ev.sessions[-1].stop_reason                       # the car was told to stop
    events = seen["events"]
    ended = events[-1]
    assert ended["eventType"] == "Ended"
    assert ended["transactionInfo"]["stoppedReason"] == "Local"
    assert [e["seqNo"] for e in events] == list(range(len(events)))
