"""The charging sessions of ``make demo``: real SECC daemon, real EV simulator, real PLC link.

Each scenario plugs a simulated car into the SECC across a veth pair between two network
namespaces: SLAC with the simulated modem, SDP, TCP or TLS, SupportedAppProtocol, then a
complete session with the simulated board delivering energy. Nothing is mocked; the lines
printed are the two sides' own logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from secc.common.logs import _fields

SCENARIOS = (
    # name, protocol, mode, tls
    ("DIN 70121 DC, plain TCP, SLAC first (like most cars on the road)", "din", "dc", False),
    ("ISO 15118-2 DC over TLS 1.2, authorized by the CSMS through the bus and the OCPP bridge",
     "iso2", "dc", True),
    ("ISO 15118-2 AC over TLS 1.2 (EIM)", "iso2", "ac", True),
    ("ISO 15118-20 DC over TLS 1.3 (EIM)", "iso20", "dc", True),
    ("ISO 15118-2 DC Plug & Charge over TLS 1.2: contract certificate, signed "
     "AuthorizationReq, eMAID authorized by the CSMS through the OCPP bridge", "iso2", "dc", True),
    ("ISO 15118-20 DC Plug & Charge over TLS 1.3: P-521 contract, SHA-512 signature, eMAID "
     "authorized by the CSMS through the OCPP bridge", "iso20", "dc", True),
)

BOARD = """
[board]
name = "demo"
kind = "sim"
evse_id = "DE*PYS*E00001*1"
output = "{output}"
max_current_a = {max_current}
[plc]
interface = "{iface}"
start_at_sdp = false
[v2g]
protocols = ["iso20", "iso2", "din"]
tls = "optional"
certificate_dir = "{certs}"
quirks = ["session_stop_anytime"]
"""

# The demo charges in real time (a second or two of charge loop per scenario), so the car's
# energy and the board's meter count the same joules; a demo-sized pack makes that visible
# in the SoC. (Fast-forwarding the car's clock made it claim 4 kWh against the meter's 10 Wh.)
DEMO_PACK_WH = 60.0
ENERGY_TOLERANCE = 0.25       # EV vs meter: the car counts from its first loop response on

WANTED = {"sim", "slac", "v2g", "sdp", "tls", "bus", "ocpp"}
NOISY = ("state change", "SLAC driver ready")


class DemoFormatter(logging.Formatter):
    """``  3.21s secc  v2g   message  key=value`` — readable progress for people."""

    def __init__(self, started: float) -> None:
        super().__init__()
        self.started = started

    def format(self, record: logging.LogRecord) -> str:
        side = "ev  " if record.threadName.startswith("netns-ev") else "secc"
        layer = record.name.removeprefix("pysecc.")
        fields = " ".join(f"{k}={v}" for k, v in _fields(record).items()
                          if k not in ("session", "protocol"))
        return (f"  {record.created - self.started:6.2f}s {side} {layer:<5} "
                f"{record.getMessage()}" + (f"  {fields}" if fields else ""))


class DemoFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        layer = record.name.removeprefix("pysecc.")
        if record.levelno >= logging.WARNING:
            return True
        return layer in WANTED and not record.getMessage().startswith(NOISY)


@dataclass
class ScenarioResult:
    name: str
    ok: bool
    detail: str


def available(protocol: str) -> bool:
    try:
        if protocol == "iso20":
            import secc.iso20.adapter  # noqa: F401
            import sim.evcc.iso20  # noqa: F401
        return True
    except ImportError:
        return False


def run_scenario(link, name: str, protocol: str, mode: str, tls: bool, certs: Path,
                 pki, backend: bool | None = None) -> ScenarioResult:
    """One plug-in. ``backend``: run the OCPP chain too (broker, bridge, test CSMS); by
    default for the scenarios whose name says so."""
    if backend is None:
        backend = "OCPP" in name
    pnc = "Plug & Charge" in name
    from secc.boards import board_from_config
    from secc.config import loads_board_config
    from secc.daemon import SeccDaemon, server_tls_context
    from sim.ev_transport import run_secc_and_ev, wait_for_event
    from sim.evcc.battery import Battery
    from sim.evcc.core import EvccConfig
    from sim.evcc.runner import EvSessionConfig, run_ev_session, sim_board_signals
    from sim.modem import SimModem, run_modem

    board_text = BOARD.format(output=mode, max_current=32 if mode == "ac" else 200,
                              iface=link.ifnames["secc"], certs=certs)
    contract = None
    if pnc:  # the MO root is in the certificate directory: the SECC checks the chain too
        import shutil

        from sim.evcc.core import PncContract
        mo_pki = pki
        if protocol == "iso20":  # -20 contracts are P-521 under their own MO root
            from sim.testing.pki import TestPKI
            mo_pki = TestPKI.iso20(emaid="DEPYSC2000001X")
            shutil.copytree(certs, certs / "iso20", dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("iso20"))
            certs = certs / "iso20"
            (certs / "mo_root.pem").write_bytes(mo_pki.mo_root.cert_pem)
        board_text = BOARD.format(output=mode, max_current=200, iface=link.ifnames["secc"],
                                  certs=certs).replace(
            'tls = "optional"', 'tls = "optional"\nplug_and_charge = true')
        contract = PncContract.from_credential(mo_pki.issue_contract())
    stop_modem = threading.Event()
    battery = Battery(soc=30, target_soc=80, max_iterations=20, capacity_wh=DEMO_PACK_WH)
    if mode == "ac":  # the simulated board meters one phase at the car's 16 A draw
        from hal.sim import SimPlant

        battery.ac_phases, battery.ac_max_current = 1, SimPlant.ev_ac_current_draw_a

    async def secc_main(ready, ev_done):
        from secc.daemon import bus_from_config
        from sim.charger import ChargerBackend
        from sim.testing.waits import wait_until

        stack = await ChargerBackend(certs).start() if backend else None
        config = loads_board_config(board_text + (stack.board_bus_section() if stack else ""))
        bus, authorizer = bus_from_config(config)
        board = board_from_config(config)
        daemon = SeccDaemon(config, board, link.ifnames["secc"], authorizer=authorizer, bus=bus,
                            tls_context=server_tls_context(config))
        modem_up = asyncio.get_running_loop().create_future()
        modem = asyncio.create_task(run_modem(link.ifnames["secc"], SimModem(), stop_modem.is_set,
                                              timeout=120,
                                              on_ready=lambda: modem_up.set_result(True)))
        await modem_up
        await daemon.start()
        board.ev_set_pilot("B")  # plug-in
        ready.set_result((board, asyncio.get_running_loop()))
        await wait_for_event(ev_done)
        with contextlib.suppress(TimeoutError):   # the result then says what is missing
            await wait_until(lambda: daemon.summaries, 2, "the session's summary")
        energy = (await board.read_meter()).energy_wh
        board.ev_close_contactors(False)
        board.ev_set_pilot("A")  # unplug
        with contextlib.suppress(TimeoutError):
            await wait_until(lambda: board.last_safe_state is not None
                             and board.last_safe_state.reason.value == "ev_unplugged", 5,
                             "the daemon to see the unplug")
        stop_modem.set()
        await modem
        ocpp = None
        if stack is not None:
            await bus.flush(20)
            with contextlib.suppress(TimeoutError):   # the result then says what is missing
                await wait_until(lambda: any(e.startswith("Ended") for e in
                                             stack.transaction_summary()), 10)
            ocpp = (stack.received(), stack.transaction_summary(),
                    [m["idToken"] for m in stack.csms.messages("Authorize")])
        result = (list(daemon.summaries), energy, board.contactors_closed, ocpp)
        await daemon.stop()
        if stack is not None:
            await stack.stop()
        return result

    vehicle = pki.write_vehicle_files(certs.parent / "vehicle")   # -20 mutual TLS
    vehicle_tls = (vehicle["chain"], vehicle["key"])

    async def ev_main(board_and_loop):
        return await run_ev_session(EvSessionConfig(
            on_signals=sim_board_signals(*board_and_loop),
            interface=link.ifnames["ev"], protocol=protocol, mode=mode, tls=tls,
            v2g_root=certs / "v2g_root.pem", slac=True, vendor_first=protocol == "din",
            vehicle_tls=vehicle_tls,
            contract=contract,
            battery=battery,
            evcc=EvccConfig(loop_interval=0.05, repeat_interval=0.05)))

    try:
        (summaries, energy, closed, ocpp), ev = run_secc_and_ev(link, secc_main, ev_main,
                                                                timeout=120)
    except Exception as exc:
        return ScenarioResult(name, False, f"{type(exc).__name__}: {exc}")
    secc = summaries[0] if summaries else None
    digest = ev.summary()
    energy_agrees = energies_agree(digest["energy_wh"], energy)
    ok = (ev.ok and ev.protocol == protocol and secc is not None
          and secc.final_state == "Terminated" and closed is False and energy_agrees)
    detail = (f"protocol={ev.protocol} tls={ev.tls_version or 'no'} "
              f"loops={ev.loop_iterations} EV energy={digest['energy_wh']:.1f} Wh "
              f"board meter={energy:.1f} Wh{'' if energy_agrees else ' (DISAGREE)'} SoC {digest['soc'][0]:.0f}->{digest['soc'][1]:.1f} % "
              f"contactors_open={closed is False} "
              f"SECC requests={secc.requests if secc else 0} "
              f"SECC median processing={_median(secc.processing_ms) if secc else 0:.2f} ms")
    if ocpp is not None:
        received, transactions, tokens = ocpp
        ok = ok and "Authorize" in received and transactions[:1] == [
            "Started#0(EVDetected)"] and transactions[-1].startswith("Ended")
        if pnc:
            ok = ok and any(t.get("type") == "eMAID" for t in tokens)
        detail += (f"\n      CSMS received: {', '.join(sorted(set(received)))}"
                   f"\n      Authorize idToken: {', '.join(t['idToken'] + ' (' + t['type'] + ')' for t in tokens)}"
                   f"\n      TransactionEvents: {' '.join(transactions)}")
    if not ok:
        detail += f" failure={digest['failure']} secc_end={secc.end_reason if secc else '-'}"
    return ScenarioResult(name, ok, detail)


def energies_agree(ev_wh: float, meter_wh: float) -> bool:
    """The car's integrated energy and the board meter's register tell the same story."""
    return abs(ev_wh - meter_wh) <= max(1.0, ENERGY_TOLERANCE * max(ev_wh, meter_wh))


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2] if values else 0.0


def run() -> int:
    from sim.testing.netns import VethLink, netns_supported
    from sim.testing.pki import TestPKI

    ok, why = netns_supported()
    if not ok:
        print(f"   cannot run a session: {why}")
        return 1
    started = time.time()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(DemoFormatter(started))
    handler.addFilter(DemoFilter())
    root = logging.getLogger("pysecc")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    certs = Path(tempfile.mkdtemp(prefix="pysecc-demo-"))
    pki = TestPKI()
    pki.write_secc_files(certs)
    results = []
    for name, protocol, mode, tls in SCENARIOS:
        print(f"\n== session: {name}", flush=True)
        if not available(protocol):
            print("   skipped: not in this build yet")
            continue
        with VethLink() as link:
            result = run_scenario(link, name, protocol, mode, tls, certs, pki)
        results.append(result)
        print(f"   -> {'OK' if result.ok else 'FAILED'}: {result.detail}", flush=True)
    passed = sum(r.ok for r in results)
    print(f"\n== {passed} of {len(results)} simulated charging sessions completed "
          f"({time.time() - started:.1f} s)")
    return 0 if passed == len(results) and results else 1
