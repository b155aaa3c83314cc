"""READY means ready (issue 13): the daemon loads and warms everything a session of its
protocols needs before it reports READY, so no session pays for an import; the loop-lag
monitor names what held the event loop.

The end-to-end test runs the daemon in its own process (``sim.daemon_process``: a car
simulator in the same process would import modules of its own and hide the daemon's), with
the bus, the OCPP bridge and the test CSMS, and plugs in one car of each protocol: DIN (TCP),
ISO 15118-2 (TLS 1.2), ISO 15118-20 DC (TLS 1.3), ISO 15118-2 Plug & Charge. Every session's
summary must name no module imported after READY.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import time
import types

import pytest

from secc.common.looplag import LoopLagMonitor
from secc.config import loads_board_config
from secc.daemon import session_settings
from secc.iso2 import PausedSessions
from secc.session.warmup import LateImportWatch, freeze_heap, thaw_heap, warm_up

BOARD = """
[board]
name = "ready-test"
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
plug_and_charge = true
certificate_dir = "{certs}"
[logging]
level = "WARNING"
"""


# --- the pieces -----------------------------------------------------------------------------
def test_warm_up_round_trips_every_message_of_the_configured_protocols(tmp_path, test_pki):
    test_pki.write_secc_files(tmp_path)
    config = loads_board_config(BOARD.format(iface="lo", certs=tmp_path))
    report = warm_up(session_settings(config, PausedSessions()))
    assert report.protocols == ("ISO15118_20_DC", "ISO15118_2", "DIN70121")
    assert report.schemas == ("appprotocol", "iso20", "iso20-dc", "iso2", "din")
    # 2 + 26 + 10 + 34 + 34 requests and responses, each encoded and decoded once
    assert report.messages == 106
    assert "exi_schemas.generated.iso20_wpt" not in report.schemas


def test_warm_up_of_a_din_only_board_leaves_iso_codecs_alone(tmp_path, test_pki):
    test_pki.write_secc_files(tmp_path)
    config = loads_board_config(BOARD.format(iface="lo", certs=tmp_path).replace(
        'protocols = ["iso20", "iso2", "din"]', 'protocols = ["din"]').replace(
        "plug_and_charge = true", "plug_and_charge = false"))
    report = warm_up(session_settings(config, PausedSessions()))
    assert report.schemas == ("appprotocol", "din")
    assert report.messages == 36


WARM_UP_IN_A_FRESH_PROCESS = """
import sys
import secc.daemon
from secc.config import loads_board_config
from secc.daemon import session_settings
from secc.iso2 import PausedSessions
from secc.session.warmup import warm_up
warm_up(session_settings(loads_board_config(sys.stdin.read()), PausedSessions()))
print(" ".join(sorted(m for m in sys.modules if m.startswith(("exi_schemas.generated.",
                                                              "secc.iso20.")))))
print(" ".join(sorted(m for m in sys.modules if "." not in m)))
"""


@pytest.mark.parametrize("output, loaded, not_loaded", [
    ("dc", ("exi_schemas.generated.iso20_dc", "secc.iso20.dc"),
     ("exi_schemas.generated.iso20_ac", "secc.iso20.ac")),
    ("ac", ("exi_schemas.generated.iso20_ac", "secc.iso20.ac"),
     ("exi_schemas.generated.iso20_dc", "secc.iso20.dc")),
])
def test_warm_up_loads_only_what_the_board_uses(tmp_path, output, loaded,
                                                                    not_loaded):
    import subprocess

    board = BOARD.format(iface="lo", certs=tmp_path).replace('output = "dc"',
                                                             f'output = "{output}"').replace(
        "plug_and_charge = true", "plug_and_charge = false").replace(
        "max_current_a = 200", "max_current_a = 32")
    lines = subprocess.run([sys.executable, "-c", WARM_UP_IN_A_FRESH_PROCESS], input=board,
                           capture_output=True, text=True, check=True).stdout.splitlines()
    found, packages = lines[0].split(), set(lines[1].split())
    assert set(loaded) <= set(found), found
    assert not set(not_loaded) & set(found), found
    assert "exi_schemas.generated.iso20_wpt" not in found
    # the bus contract's validators are compiled ahead of time: no schema library at run
    # time; SLAC's frame layouts only when SLAC runs (this board starts at SDP)
    assert not {"jsonschema", "fastjsonschema", "construct"} & packages, packages


CRYPTO_AT_READY_IN_A_FRESH_PROCESS = """
import sys
import secc.daemon
from secc.boards import board_from_config
from secc.config import loads_board_config
from secc.daemon import server_tls_context, session_settings
from secc.iso2 import PausedSessions
from secc.session.warmup import warm_up
from secc.tls.selection import TlsChainSelector
config = loads_board_config(sys.stdin.read())
board = board_from_config(config)
context = server_tls_context(config)
assert context is not None
TlsChainSelector(__import__("pathlib").Path(config.v2g.certificate_dir), None,
                 default=context).reload(rebuild_default=False)
warm_up(session_settings(config, PausedSessions()), board)
print("cryptography.hazmat.bindings._rust" in sys.modules)
"""


@pytest.mark.parametrize("pnc, signed_meter, loaded", [
    (False, False, False),     # TLS for -2 and -20, no PnC, a meter that signs in hardware
    (True, False, True),       # Plug & Charge: loaded (and warmed) before READY
    (False, True, True),       # the simulated meter signs in software
])
def test_cryptography_is_loaded_only_for_a_feature_that_uses_it(tmp_path, test_pki, pnc,
                                                                signed_meter, loaded):
    """``cryptography`` costs ~12 MB of RSS: a board without Plug & Charge and without a
    meter signing in software never imports it, not even for TLS (Python's ``ssl`` does
    TLS), and one with either has it loaded by the warm-up (the READY test shows no session
    imports it later)."""
    import subprocess

    test_pki.write_secc_files(tmp_path)
    board = (BOARD.format(iface="lo", certs=tmp_path)
             .replace("plug_and_charge = true", f"plug_and_charge = {str(pnc).lower()}")
             + f"[sim]\nsigned_meter = {str(signed_meter).lower()}\n")
    out = subprocess.run([sys.executable, "-c", CRYPTO_AT_READY_IN_A_FRESH_PROCESS],
                         input=board, capture_output=True, text=True, check=True).stdout
    assert out.split() == [str(loaded)], out


def test_the_heap_at_ready_is_out_of_the_collectors_reach_until_stop():
    class Cycle:
        pass

    garbage = Cycle()
    garbage.self = garbage
    del garbage
    kept = [Cycle() for _ in range(100)]
    try:
        frozen = freeze_heap()
        assert frozen > len(kept) and gc.get_freeze_count() == frozen
        assert not any(isinstance(o, Cycle) for o in gc.get_objects())  # frozen, not tracked
    finally:
        thaw_heap()
    assert gc.get_freeze_count() == 0
    assert sum(isinstance(o, Cycle) for o in gc.get_objects()) == len(kept)


def test_late_import_watch_names_a_module_imported_after_arming():
    watch = LateImportWatch()
    watch.arm()
    assert watch.new_modules() == []
    name = "pysecc_test_late_module"
    sys.modules[name] = types.ModuleType(name)  # what an import does
    try:
        assert watch.new_modules() == [name]
        assert watch.new_modules() == []  # reported once
    finally:
        del sys.modules[name]


def test_loop_lag_monitor_counts_and_names_a_stall_only_over_the_threshold():
    monitor = LoopLagMonitor(threshold_s=0.05)

    async def holds_the_loop() -> None:
        time.sleep(0.08)  # what an fsync on a slow card does
        await asyncio.sleep(0)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.call_soon(time.sleep, 0.001)  # a short callback: no stall
        await asyncio.sleep(0.01)
        assert monitor.count == 0
        await asyncio.create_task(holds_the_loop(), name="slow-one")

    monitor.install()
    try:
        asyncio.run(main())
    finally:
        monitor.uninstall()
    assert monitor.count == 1
    assert 0.07 < monitor.worst_s < 0.5
    assert "slow-one" in monitor.recent[0].what and "holds_the_loop" in monitor.recent[0].what
    assert not monitor.installed


# --- the daemon, end to end -----------------------------------------------------------------
@pytest.mark.netns
def test_no_module_is_imported_after_ready(veth_link, tmp_path, test_pki):
    from sim.charger import ChargerBackend
    from sim.daemon_process import DaemonProcess
    from sim.evcc.battery import Battery
    from sim.evcc.core import EvccConfig, PncContract
    from sim.evcc.runner import EvSessionConfig, run_ev_session

    test_pki.write_secc_files(tmp_path)
    vehicle = test_pki.write_vehicle_files(tmp_path / "vehicle")   # -20: mutual TLS
    contract = PncContract.from_credential(test_pki.issue_contract())
    stop_backend = threading.Event()
    backend_up = threading.Event()
    bus_section: dict[str, str] = {}

    async def backend_main():
        stack = await ChargerBackend(tmp_path).start()
        bus_section["text"] = stack.board_bus_section()
        backend_up.set()
        try:
            while not stop_backend.is_set():
                await asyncio.sleep(0.05)
        finally:
            await stack.stop()

    backend = veth_link.run_coroutine("secc", backend_main)
    daemon = None
    try:
        assert backend_up.wait(60), "the OCPP bridge never booted"
        board = tmp_path / "board.toml"
        board.write_text(BOARD.format(iface=veth_link.ifnames["secc"], certs=tmp_path)
                         + bus_section["text"])
        daemon = DaemonProcess(veth_link.namespaces["secc"], board, tmp_path / "control.sock",
                               log_path=tmp_path / "daemon.log")
        ready = daemon.wait_ready()
        assert ready["warm_up"]["messages"] > 100
        results = []
        for protocol, tls, pnc in (("din", False, False), ("iso2", True, False),
                                   ("iso20", True, False), ("iso2", True, True)):
            daemon.send(pilot="B")
            config = EvSessionConfig(
                interface=veth_link.ifnames["ev"], protocol=protocol, mode="dc", tls=tls,
                v2g_root=tmp_path / "v2g_root.pem", on_signals=daemon.on_signals,
                vehicle_tls=(vehicle["chain"], vehicle["key"]),
                contract=contract if pnc else None,
                battery=Battery(soc=30, target_soc=80, max_iterations=3),
                evcc=EvccConfig(loop_interval=0.05, repeat_interval=0.05))
            ev = veth_link.run_coroutine("ev", lambda c=config: run_ev_session(c)).result(60)
            daemon.send(pilot="A")
            results.append((protocol, tls, pnc, ev))
        summaries = daemon.summaries(expected=len(results))
    finally:
        if daemon is not None:
            daemon.stop()
        stop_backend.set()
        backend.result(30)
    for protocol, tls, pnc, ev in results:
        assert ev.ok, f"{protocol} tls={tls} pnc={pnc}: {ev.failure}"
    assert [s["protocol"] for s in summaries] == ["din", "iso2", "iso20-dc", "iso2"]
    for summary in summaries:
        assert summary["final_state"] == "Terminated"
        assert summary["late_imports"] == [], (
            f"{summary['protocol']} session imported after READY: {summary['late_imports']}")


@pytest.mark.netns
def test_ready_callbacks_run_once_after_the_warm_up_with_the_servers_up(veth_link, tmp_path,
                                                                         test_pki):
    from secc.boards import board_from_config
    from secc.daemon import SeccDaemon, server_tls_context

    test_pki.write_secc_files(tmp_path)
    config = loads_board_config(BOARD.format(iface=veth_link.ifnames["secc"], certs=tmp_path))
    seen = []
    frozen = []

    async def main():
        daemon = SeccDaemon(config, board_from_config(config), veth_link.ifnames["secc"],
                            tls_context=server_tls_context(config))

        async def async_callback(d):
            seen.append(("async", d.ready.is_set(), d.transport is not None))

        daemon.ready_callbacks += [
            lambda d: seen.append(("sync", d.ready.is_set(), d.warm_up_report.messages)),
            async_callback, lambda d: frozen.append(gc.get_freeze_count())]
        assert not daemon.ready.is_set()
        await daemon.start()
        try:
            assert daemon.ready.is_set() and daemon.ready_seconds > 0
            assert daemon.transport.tls is not None and daemon.transport.tcp is not None
        finally:
            await daemon.stop()

    veth_link.run_coroutine("secc", main).result(60)
    assert seen == [("sync", True, 106), ("async", True, True)]
    assert frozen[0] > 10_000 and gc.get_freeze_count() == 0  # frozen at READY, thawed at stop
