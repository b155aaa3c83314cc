"""The system under test: ``secc run`` on the simulated board, in the SECC namespace of a veth
link, with the strict ``conformance`` profile and the board's control socket for the tester."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BOARD = """
[board]
name = "conformance"
kind = "sim"
evse_id = "{evse_id}"
output = "{output}"
max_current_a = {max_current}
max_voltage_v = 1000
min_voltage_v = 150
max_power_w = {max_power}

[plc]
interface = "{iface}"
start_at_sdp = true

[v2g]
protocols = {protocols}
tls = "{tls}"
profile = "{profile}"
certificate_dir = "{certs}"
plug_and_charge = {pnc}
request_metering_receipt = {receipts}
payment_options = {payment_options}

[v2g.timers]
pause_wake_up = {pause_wake_up}

[sim]
control_socket = "{tmp}/sim.sock"
ev_follows_session = {follows}

[logging]
format = "kv"
level = "INFO"
"""

#: PIXIT: the SECC's own wake-up time of a paused session (B1 -> B2), resume.py's cases
PAUSE_WAKE_UP = 3.0


def _variants() -> dict[str, str]:
    """Named board variants (extra TOML) for cases whose SECC must be configured (PIXIT)."""
    from tests.conformance.tariff import TARIFF_BOARD
    return {"tariff": TARIFF_BOARD,
            "slac_validate_failure": '\n[slac]\nvalidate_mode = "failure"\n'}


@dataclass
class DaemonUnderTest:
    process: subprocess.Popen
    socket_path: str
    log_path: Path
    workdir: tempfile.TemporaryDirectory

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.workdir.cleanup()


def start_daemon(link, protocol: str, profile: str = "conformance",
                 certs: str | None = None, follows: bool = False,
                 slac: bool = False, tls: str | None = None, plug_and_charge: bool = False,
                 metering_receipts: bool = False, extra_board: str = "",
                 variant: str = "",
                 payment_options: tuple[str, ...] = ("Contract", "ExternalPayment"),
                 ) -> DaemonUnderTest:
    """``secc run`` for ``protocol`` (din | iso2-dc | iso2-ac | iso20-dc); waits for its
    control socket and its SDP server. -20 needs ``certs`` (TLS 1.3, mutual). ``slac``: SLAC
    on the link (``start_at_sdp = false``), for the SLAC tester that also plays the local
    modem (slac_tester.py). ``tls`` (none | optional | required; default: required for -20,
    none otherwise), ``plug_and_charge`` and ``metering_receipts`` set the [v2g] options of
    the same names (pnc.py: the ISO-2 Plug & Charge daemon, with ``certs`` from its test PKI);
    ``extra_board`` is appended to the board file (e.g. a ``[bus]`` table); ``variant``: a
    named board variant (``_variants``) appended; ``payment_options``: ``[v2g]``'s."""
    workdir = tempfile.TemporaryDirectory(prefix="pysecc-conformance-")
    tmp = workdir.name
    os.makedirs(f"{tmp}/certs", exist_ok=True)
    ac = protocol == "iso2-ac"
    protocols = {"din": '["din"]', "iso20-dc": '["iso20"]'}.get(protocol, '["iso2"]')
    board = Path(tmp) / "board.toml"
    board.write_text(BOARD.format(
        evse_id="ZZ00000" if protocol == "din" else "DE*PNX*E00001*1",
        output="ac" if ac else "dc", max_current=32 if ac else 200,
        max_power=22080 if ac else 150000, iface=link.ifnames["secc"], protocols=protocols,
        profile=profile, tmp=tmp,
        tls=tls or ("required" if protocol.startswith("iso20") else "none"),
        pnc="true" if plug_and_charge else "false",
        receipts="true" if metering_receipts else "false",
        payment_options="[" + ", ".join(f'"{o}"' for o in payment_options) + "]",
        certs=certs or f"{tmp}/certs", follows="true" if follows else "false",
        pause_wake_up=PAUSE_WAKE_UP).replace(
            "start_at_sdp = true", "start_at_sdp = false" if slac else "start_at_sdp = true")
        + extra_board + (_variants()[variant] if variant else ""))
    log_path = Path(tmp) / "secc.log"
    log = open(log_path, "wb")  # noqa: SIM115 - owned by the process
    secc = str(Path(sys.executable).parent / "secc")   # the installed console script
    process = link.popen("secc", [secc, "run", "--board", str(board)],
                         stdout=log, stderr=subprocess.STDOUT,
                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
    daemon = DaemonUnderTest(process, f"{tmp}/sim.sock", log_path, workdir)
    deadline = time.monotonic() + 30
    while not (os.path.exists(daemon.socket_path) and b"SECC ready" in log_path.read_bytes()):
        if process.poll() is not None or time.monotonic() > deadline:
            tail = daemon.log_tail()
            daemon.stop()
            raise RuntimeError(f"secc run did not become ready:\n{tail}")
        time.sleep(0.05)
    return daemon
