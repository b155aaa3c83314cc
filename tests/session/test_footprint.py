"""Footprint (issue 13): the SECC daemon fits in 40 MB of RSS after READY with DIN, ISO 15118-2
and ISO 15118-20 loaded, the OCPP bridge in 45 MB.

Measured from /proc of real processes, as on a charger: ``sim.daemon_process`` builds the
daemon exactly as ``secc run`` does (simulated board, bus client, TLS for -2 and -20) and the
bridge runs as ``python -m ocpp_bridge`` against the test CSMS. RSS is read at READY and again
after one session of each protocol (the daemon must not grow past the goal by serving cars),
the bridge's after it has booted and carried those sessions' transactions.

The board has no Plug & Charge and a meter that signs in its own hardware (as a real board):
with either feature on, ``cryptography`` (~12 MB) is loaded on purpose
(``tests/session/test_ready.py``). docs/realtime.md ("Footprint") has the breakdown.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

DAEMON_RSS_GOAL_KB = 40 * 1024
BRIDGE_RSS_GOAL_KB = 45 * 1024

BOARD = """
[board]
name = "footprint-test"
kind = "sim"
evse_id = "DE*PYS*E00001*1"
output = "dc"
max_current_a = 200
[plc]
interface = "{iface}"
start_at_sdp = true
[v2g]
protocols = ["iso20", "iso2", "din"]
tls = "optional"
certificate_dir = "{certs}"
[sim]
signed_meter = false
[logging]
level = "WARNING"
"""


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def maps_cryptography(pid: int) -> bool:
    """Whether the process has ``cryptography``'s binding (its own OpenSSL) mapped."""
    return "cryptography/hazmat/bindings" in Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.netns
def test_daemon_and_bridge_rss_stay_within_the_goals(veth_link, tmp_path, test_pki):
    from sim.charger import ChargerBackend
    from sim.daemon_process import DaemonProcess
    from sim.evcc.battery import Battery
    from sim.evcc.core import EvccConfig
    from sim.evcc.runner import EvSessionConfig, run_ev_session

    test_pki.write_secc_files(tmp_path)
    stop_backend = threading.Event()
    backend_up = threading.Event()
    found: dict[str, object] = {}

    async def backend_main():
        stack = await ChargerBackend(tmp_path).start()
        found["bus"] = stack.board_bus_section()
        found["bridge_pid"] = stack.bridge.pid
        found["backend"] = stack
        backend_up.set()
        try:
            while not stop_backend.is_set():
                await asyncio.sleep(0.05)
        finally:
            await stack.stop()

    backend = veth_link.run_coroutine("secc", backend_main)
    daemon = None
    measured: dict[str, int] = {}
    try:
        assert backend_up.wait(60), "the OCPP bridge never booted"
        board = tmp_path / "board.toml"
        board.write_text(BOARD.format(iface=veth_link.ifnames["secc"], certs=tmp_path)
                         + str(found["bus"]))
        daemon = DaemonProcess(veth_link.namespaces["secc"], board, tmp_path / "control.sock",
                               log_path=tmp_path / "daemon.log")
        ready = daemon.wait_ready()
        assert ready["warm_up"]["protocols"] == ["ISO15118_20_DC", "ISO15118_2", "DIN70121"]
        measured["daemon_at_ready"] = rss_kb(daemon.pid)
        for protocol, tls in (("din", False), ("iso2", True), ("iso20", True)):
            daemon.send(pilot="B")
            config = EvSessionConfig(
                interface=veth_link.ifnames["ev"], protocol=protocol, mode="dc", tls=tls,
                v2g_root=tmp_path / "v2g_root.pem", on_signals=daemon.on_signals,
                battery=Battery(soc=30, target_soc=80, max_iterations=3),
                evcc=EvccConfig(loop_interval=0.05, repeat_interval=0.05))
            ev = veth_link.run_coroutine("ev", lambda c=config: run_ev_session(c)).result(60)
            daemon.send(pilot="A")
            assert ev.ok, f"{protocol} tls={tls}: {ev.failure}"
        summaries = daemon.summaries(expected=3)
        assert [s["final_state"] for s in summaries] == ["Terminated"] * 3
        measured["daemon_after_sessions"] = rss_kb(daemon.pid)
        measured["bridge"] = rss_kb(int(found["bridge_pid"]))
        # neither needs it here: no PnC, the meter signs in hardware, OCPP security profile 1
        # and no certificate command (with one, it loads: the feature's cost, not the base's)
        crypto = {"daemon": maps_cryptography(daemon.pid),
                  "bridge": maps_cryptography(int(found["bridge_pid"]))}
    finally:
        if daemon is not None:
            daemon.stop()
        stop_backend.set()
        backend.result(30)
    print("RSS kB:", measured)
    assert crypto == {"daemon": False, "bridge": False}, crypto
    assert measured["daemon_at_ready"] <= DAEMON_RSS_GOAL_KB, measured
    assert measured["daemon_after_sessions"] <= DAEMON_RSS_GOAL_KB, measured
    assert measured["bridge"] <= BRIDGE_RSS_GOAL_KB, measured


def test_the_command_line_adds_no_heavy_library_to_secc_run():
    """``secc run`` builds the whole ``secc`` parser (every subcommand module) before the
    daemon starts: those modules must not import what only their own command uses (construct
    for ``secc slac``: 2.3 MB; cryptography for ``secc certs``) — the footprint test above
    starts the daemon without the command line."""
    import subprocess
    import sys

    code = ("import sys, secc.cli; secc.cli.build_parser(); "
            "print(' '.join(sorted(n for n in ('construct', 'cryptography', 'scapy', "
            "'pyroute2', 'lxml', 'jsonschema') if n in sys.modules)))")
    heavy = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout.split()
    assert heavy == [], f"the secc command line loads {heavy} for every command"
