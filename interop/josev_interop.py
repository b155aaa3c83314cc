"""`make interop`: Josev's EVCC (PyPI ``iso15118``, EcoG-io) against our SECC daemon.

Josev is an EV stack nobody here wrote; running it against our daemon shows what our own EV
simulator cannot: how we fare with another reading of the standards. For each scenario:

* a fresh veth pair between two network namespaces (``sim.testing.netns.VethLink``);
* our ``SeccDaemon`` on the simulated board in the ``secc`` namespace, ``[plc] start_at_sdp``
  (Josev does no SLAC over plain veth), with ``sim.vehicle_plant.VehiclePlant`` playing the
  car's physical side (pilot B/C, battery voltage, EV contactors) from our session events;
* Josev's EVCC as a process in the ``ev`` namespace, run by the interpreter of its own venv
  (``--josev-python``), configured by a JSON file (protocols, energy mode, TLS) and the
  environment (``NETWORK_INTERFACE``, ``PKI_PATH``, ``ENABLE_TLS_1_3``);
* the V2G connection is recorded on the SECC side (every request and response, decoded with
  our codec after the session) so the report shows the sequence we saw and the response
  codes we sent.

A scenario passes when the SECC negotiated the expected protocol, answered every request with
an OK code, saw the charge loop and a SessionStopReq, ended in ``Terminated`` with the
contactors open, and Josev logged no error. Results are printed as found; nothing is retried.
The Smart Charging scenario also has the test CSMS lower the limit mid-loop and checks the new
limit in our CurrentDemandRes and in Josev's own log of what it decoded.

Run with the product's interpreter (it imports ``secc``), as root::

    .venv/bin/python interop/josev_interop.py --josev-python interop/.venv-josev/bin/python
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# sim/ (test fixtures, the test CSMS) is not part of the installed product: run from the tree
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import exi_schemas  # noqa: E402
from secc.common.logs import KeyValueFormatter  # noqa: E402

# --- scenarios --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One EV configuration against one board configuration, and what we expect."""

    key: str
    title: str
    josev_protocols: tuple[str, ...]       # Josev's Protocol enum names, in priority order
    energy_services: tuple[str, ...]       # Josev's ServiceV20 names (-20), also read for -2
    energy_mode: str                       # Josev's energyTransferMode (-2 / DIN)
    board_output: str                      # "dc" or "ac"
    ev_tls: bool                           # the Security byte Josev puts in its SDP request
    expected_protocol: str                 # our SessionSummary.protocol
    board_protocols: tuple[str, ...] = ("iso20", "iso2", "din")
    required: bool = True
    tls_1_3: bool = False                  # Josev's ENABLE_TLS_1_3 (presents the OEM chain)
    note: str = ""
    # Plug & Charge: Josev's own PKI (create_certs.sh) on both sides, [v2g].plug_and_charge on
    pnc: bool = False
    csms: bool = False                     # the bus, the OCPP bridge and the test CSMS decide
    cert_install: bool = False             # Josev's isCertInstallNeeded (CertificateInstallation)
    # Smart Charging (csms): once the charge loop runs, the test CSMS sets a TxProfile of this
    # many W for the transaction; the SECC and Josev must both show the lowered limit
    csms_limit_w: float | None = None


SMART_CHARGING_LIMIT_W = 20_000.0   # well below the DC board's 150 kW
SMART_CHARGING_LOOPS = 120          # Josev's chargeLoopCycle: ~25 s of CurrentDemand (~0.2 s each)
SMART_CHARGING_DEADLINE_S = 2.0     # issue 17: SetChargingProfile -> next charge-loop response

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("din-dc-tcp", "DIN 70121 DC, TCP", ("DIN_SPEC_70121",), ("DC",), "DC_extended",
             "dc", False, "din"),
    Scenario("din-dc-tls", "DIN 70121 DC, EV asks for TLS (DIN-only charger)",
             ("DIN_SPEC_70121",), ("DC",), "DC_extended", "dc", True, "din",
             board_protocols=("din",),
             note="DIN 70121 has no TLS: [V2G-DC-618] the SDP answer must say TCP/no TLS, and "
                  "Josev (useTls, not enforceTls) must then carry on over TCP"),
    Scenario("iso2-dc-tcp", "ISO 15118-2 DC, TCP, EIM", ("ISO_15118_2",), ("DC",),
             "DC_extended", "dc", False, "iso2"),
    Scenario("iso2-dc-tls", "ISO 15118-2 DC, TLS 1.2, EIM", ("ISO_15118_2",), ("DC",),
             "DC_extended", "dc", True, "iso2"),
    Scenario("iso2-ac-tcp", "ISO 15118-2 AC, TCP, EIM", ("ISO_15118_2",), ("AC",),
             "AC_three_phase_core", "ac", False, "iso2"),
    Scenario("iso2-ac-tls", "ISO 15118-2 AC, TLS 1.2, EIM", ("ISO_15118_2",), ("AC",),
             "AC_three_phase_core", "ac", True, "iso2"),
    Scenario("iso20-dc-tls", "ISO 15118-20 DC, TLS 1.3, EIM", ("ISO_15118_20_DC",), ("DC",),
             "DC_extended", "dc", True, "iso20-dc", required=False, tls_1_3=True),
    Scenario("iso20-ac-tls", "ISO 15118-20 AC, TLS 1.3, EIM", ("ISO_15118_20_AC",), ("AC",),
             "AC_three_phase_core", "ac", True, "iso20-ac", required=False, tls_1_3=True),
    Scenario("iso20-dcbpt-tls", "ISO 15118-20 DC_BPT, TLS 1.3, EIM", ("ISO_15118_20_DC",),
             ("DC_BPT",), "DC_extended", "dc", True, "iso20-dc", required=False,
             tls_1_3=True),
    # Plug & Charge with Josev's own PKI: its contract chain, its MO root in our directory
    Scenario("iso2-dc-pnc", "ISO 15118-2 DC, TLS 1.2, Plug & Charge (authorized locally)",
             ("ISO_15118_2",), ("DC",), "DC_extended", "dc", True, "iso2", pnc=True),
    Scenario("iso2-ac-pnc", "ISO 15118-2 AC, TLS 1.2, Plug & Charge (authorized locally)",
             ("ISO_15118_2",), ("AC",), "AC_three_phase_core", "ac", True, "iso2", pnc=True),
    Scenario("iso2-dc-pnc-csms", "ISO 15118-2 DC, TLS 1.2, Plug & Charge, CSMS authorizes",
             ("ISO_15118_2",), ("DC",), "DC_extended", "dc", True, "iso2", pnc=True,
             csms=True),
    Scenario("iso2-ac-pnc-csms", "ISO 15118-2 AC, TLS 1.2, Plug & Charge, CSMS authorizes",
             ("ISO_15118_2",), ("AC",), "AC_three_phase_core", "ac", True, "iso2", pnc=True,
             csms=True),
    Scenario("iso2-dc-certinstall", "ISO 15118-2 DC, TLS 1.2, CertificateInstallation + PnC",
             ("ISO_15118_2",), ("DC",), "DC_extended", "dc", True, "iso2", pnc=True,
             csms=True, cert_install=True,
             note="Josev signs CertificateInstallationReq with its OEM provisioning key; the "
                  "test CSMS (Get15118EVCertificate) answers a CertificateInstallationRes "
                  "signed with Josev's CPS key, carrying Josev's contract encrypted for "
                  "the OEM key"),
    Scenario("iso20-dc-pnc", "ISO 15118-20 DC, TLS 1.3, Plug & Charge (authorized locally)",
             ("ISO_15118_20_DC",), ("DC",), "DC_extended", "dc", True, "iso20-dc",
             required=False, tls_1_3=True, pnc=True),
    Scenario("iso2-dc-smart-charging",
             "ISO 15118-2 DC, TLS 1.2, EIM, the CSMS lowers the limit mid-session",
             ("ISO_15118_2",), ("DC",), "DC_extended", "dc", True, "iso2", csms=True,
             csms_limit_w=SMART_CHARGING_LIMIT_W,
             note="SetChargingProfile (TxProfile, 20 kW) once CurrentDemand runs: our "
                  "CurrentDemandRes must carry EVSEMaximumPowerLimit 20 kW and "
                  "EVSENotification=ReNegotiation, and Josev's decoded log must show both; "
                  "Josev 0.31.2 acts on ReNegotiation only in AC ChargingStatusRes and "
                  "MeteringReceiptRes, so in DC it keeps its CurrentDemand loop"),
)

BOARD = """
[board]
name = "interop-josev"
kind = "sim"
evse_id = "DE*PYS*E00001*1"
output = "{output}"
max_current_a = {max_current}
max_voltage_v = 1000
min_voltage_v = 150
max_power_w = {max_power}
max_discharge_current_a = 50
max_discharge_power_w = 20000
[plc]
interface = "{iface}"
start_at_sdp = true
[v2g]
protocols = {protocols}
tls = "optional"
certificate_dir = "{certs}"
plug_and_charge = {pnc}
quirks = ["iso20_price_schedule"]   # Josev <= 0.31 needs a price schedule (PR #435)
"""

CHARGE_LOOP = {"CurrentDemandReq", "ChargingStatusReq", "DC_ChargeLoopReq", "AC_ChargeLoopReq"}
SESSION_TIMEOUT_S = 150.0   # Josev's JVM start-up and its Java EXI codec are slow
GRACE_AFTER_SECC_END_S = 3.0
JOSEV_ERROR = re.compile(r"\b(ERROR|CRITICAL|Traceback)\b")
JOSEV_CHOSEN = re.compile(r"Chosen protocol: (\S+)")

#: Josev log patterns whose cause is already understood: (pattern, explanation). A match adds
#: the explanation to the report; the scenario's verdict does not change.
KNOWN_CAUSES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"ValidationError occurred while processing message\s+in state ScheduleExchange"),
     "Josev rejects our schema-valid ScheduleExchangeRes: its ChargingSchedule model demands "
     "AbsolutePriceSchedule or PriceLevelSchedule, the XSD choice is minOccurs=0 "
     "(Josev bug, EcoG-io/iso15118 PR #435; `--patch-josev pr435` looks past it)"),
    (re.compile(r"Removed DIN_SPEC from the list of supported Protocols as TLS is enabled"),
     "our SDP answer said TLS, so Josev dropped DIN and sent a supportedAppProtocolReq with no "
     "AppProtocol (schema minOccurs=1); DIN has no TLS ([V2G-DC-618])"),
)


# --- the SECC-side recording ------------------------------------------------------------------


@dataclass
class Exchange:
    direction: str          # "req" (EV -> SECC) or "res"
    payload_type: int
    payload: bytes
    at: float


class RecordingConnection:
    """Our V2GTP connection with every message kept; everything else is delegated."""

    def __init__(self, conn: Any, record: list[Exchange]) -> None:
        self._conn = conn
        self._record = record

    async def receive(self, *args: Any, **kwargs: Any) -> Any:
        message = await self._conn.receive(*args, **kwargs)
        self._record.append(Exchange("req", message.payload_type, bytes(message.payload),
                                     time.monotonic()))
        return message

    async def send(self, payload_type: int, payload: bytes) -> None:
        self._record.append(Exchange("res", payload_type, bytes(payload), time.monotonic()))
        await self._conn.send(payload_type, payload)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


@dataclass
class DecodedExchange:
    direction: str
    name: str
    response_code: str | None = None
    detail: str = ""


def decode_exchange(protocol: str | None, ex: Exchange, first: bool) -> DecodedExchange:
    """Name and response code of one recorded message, decoded with our codec."""
    try:
        if first or protocol is None:
            name, obj = exi_schemas.decode_element(ex.payload, "appprotocol")
        elif protocol.startswith("iso20"):
            from secc.iso20.adapter import SCHEMA_OF_PAYLOAD_TYPE

            name, obj = exi_schemas.decode_element(ex.payload,
                                                   SCHEMA_OF_PAYLOAD_TYPE[ex.payload_type])
        else:
            found = exi_schemas.body_element(exi_schemas.decode(ex.payload, protocol))
            if found is None:
                return DecodedExchange(ex.direction, "(empty Body)")
            name, obj = found
    except Exception as exc:  # what the peer sent may not decode: that is a finding
        return DecodedExchange(ex.direction, f"<undecodable {len(ex.payload)} B>",
                               detail=f"{type(exc).__name__}: {exc}; bytes "
                                      f"{ex.payload[:48].hex()}")
    code = getattr(obj, "response_code", None)
    service = getattr(obj, "selected_authorization_service", None)  # -20 AuthorizationReq
    return DecodedExchange(ex.direction, name, getattr(code, "value", code),
                           detail=f"service={service}" if service else "")


def pair_up(protocol: str | None, record: list[Exchange]) -> list[tuple[DecodedExchange,
                                                                       DecodedExchange | None]]:
    """(request, response) pairs in order; the first pair is SupportedAppProtocol."""
    pairs: list[tuple[DecodedExchange, DecodedExchange | None]] = []
    for index, ex in enumerate(record):
        decoded = decode_exchange(protocol, ex, first=index <= 1)
        if ex.direction == "req":
            pairs.append((decoded, None))
        elif pairs and pairs[-1][1] is None:
            pairs[-1] = (pairs[-1][0], decoded)
        else:
            pairs.append((DecodedExchange("req", "(none)"), decoded))
    return pairs


def compact_sequence(pairs: list[tuple[DecodedExchange, DecodedExchange | None]]) -> list[str]:
    """``CurrentDemandReq→OK ×10`` instead of ten lines."""
    out: list[tuple[str, int]] = []
    for req, res in pairs:
        code = res.response_code if res is not None else None
        text = req.name + (f"→{code}" if code else ("→(no response)" if res is None else ""))
        if out and out[-1][0] == text:
            out[-1] = (text, out[-1][1] + 1)
        else:
            out.append((text, 1))
    return [t if n == 1 else f"{t} ×{n}" for t, n in out]


# --- Josev's side -----------------------------------------------------------------------------


def write_josev_pki(pki: Any, root: Path) -> Path:
    """The files Josev reads under ``PKI_PATH`` (``iso15118_2/certs`` and ``private_keys``):
    our V2G root as its trust anchor and, for TLS 1.3, our OEM chain as the vehicle's."""
    certs = root / "iso15118_2" / "certs"
    keys = root / "iso15118_2" / "private_keys"
    certs.mkdir(parents=True, exist_ok=True)
    keys.mkdir(parents=True, exist_ok=True)
    (certs / "v2gRootCACert.pem").write_bytes(pki.v2g_root.cert_pem)
    (certs / "v2gRootCACert.der").write_bytes(pki.v2g_root.cert_der)
    (certs / "oemCertChain.pem").write_bytes(pki.vehicle_leaf.cert_pem + pki.oem_sub.cert_pem)
    (certs / "oemRootCACert.pem").write_bytes(pki.oem_root.cert_pem)
    (keys / "oemLeaf.key").write_bytes(pki.vehicle_leaf.key_pem)
    (keys / "oemLeafPassword.txt").write_text("")  # our key is not encrypted
    return root


class JosevOwnPki:
    """Josev's own PKI for Plug & Charge, made by its ``create_certs.sh -v iso-2`` (OpenSSL;
    keys encrypted with the script's password, kept in ``*Password.txt``) in a copy of its
    ``iso15118/shared/pki`` folder. The same folder is Josev's ``PKI_PATH``."""

    def __init__(self, josev_python: str, root: Path) -> None:
        source = subprocess.run(
            [josev_python, "-c", "import os, iso15118.shared as s; "
                                 "print(os.path.join(os.path.dirname(s.__file__), 'pki'))"],
            capture_output=True, text=True, check=True, timeout=60).stdout.strip()
        shutil.copytree(source, root, dirs_exist_ok=True)
        made = subprocess.run(["bash", "create_certs.sh", "-v", "iso-2"], cwd=root,
                              capture_output=True, text=True, timeout=180)
        if made.returncode != 0:
            raise RuntimeError(f"Josev's create_certs.sh failed: {made.stderr[-800:]}")
        self.root = root
        self.certs = root / "iso15118_2" / "certs"
        self.keys = root / "iso15118_2" / "private_keys"

    def der(self, name: str) -> bytes:
        return (self.certs / name).read_bytes()

    def key(self, name: str, password_file: str | None = None) -> Any:
        from cryptography.hazmat.primitives import serialization

        password = (self.keys / password_file).read_text().strip().encode() \
            if password_file else b"12345"
        return serialization.load_pem_private_key((self.keys / name).read_bytes(), password)

    def write_secc_files(self, directory: Path) -> Path:
        """Our certificate directory from Josev's PKI: its SECC chain (leaf, CPO sub-CAs 2 and
        1) and key (decrypted, 0600), its V2G, MO and OEM roots."""
        from cryptography.hazmat.primitives import serialization

        directory.mkdir(parents=True, exist_ok=True)
        (directory / "secc_chain.pem").write_bytes((self.certs / "cpoCertChain.pem").read_bytes())
        key = self.key("seccLeaf.key", "seccLeafPassword.txt")
        key_path = directory / "secc_key.pem"
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        key_path.chmod(0o600)
        for ours, theirs in (("v2g_root.pem", "v2gRootCACert.pem"),
                             ("mo_root.pem", "moRootCACert.pem"),
                             ("oem_root.pem", "oemRootCACert.pem")):
            (directory / ours).write_bytes((self.certs / theirs).read_bytes())
        return directory

    def contracts(self) -> Any:
        """What ``sim.csms.ContractProvisioning`` needs as its ``pki``: Josev's own contract
        (the one its EVCC uses after installing) and its CPS chain as the signer."""
        from types import SimpleNamespace

        from cryptography import x509

        pki = self
        contract_der = self.der("contractLeafCert.der")
        cn = x509.load_der_x509_certificate(contract_der).subject.get_attributes_for_oid(
            x509.NameOID.COMMON_NAME)[0].value

        class Contracts:
            def issue_contract(self, emaid: str) -> Any:  # Josev's, whatever eMAID we'd pick
                return SimpleNamespace(
                    leaf=SimpleNamespace(cert_der=contract_der, key=pki.key(
                        "contractLeaf.key", "contractLeafPassword.txt")),
                    sub_ca_ders=[pki.der("moSubCA2Cert.der"), pki.der("moSubCA1Cert.der")],
                    emaid=cn)

            def cps_chain(self) -> tuple[Any, list[Any]]:
                return (SimpleNamespace(cert_der=pki.der("cpsLeafCert.der"),
                                        key=pki.key("cpsLeaf.key", "cpsLeafPassword.txt")),
                        [SimpleNamespace(cert_der=pki.der("cpsSubCA2Cert.der")),
                         SimpleNamespace(cert_der=pki.der("cpsSubCA1Cert.der"))])
        return Contracts()


def josev_config(s: Scenario) -> dict[str, Any]:
    return {
        "supportedProtocols": list(s.josev_protocols),
        "supportedEnergyServices": list(s.energy_services),
        "energyTransferMode": s.energy_mode,
        "isCertInstallNeeded": s.cert_install,
        "useTls": s.ev_tls,
        "enforceTls": False,
        "sdpRetryCycles": 1,
        # long enough that a profile set at the first CurrentDemand lands inside the loop
        "chargeLoopCycle": SMART_CHARGING_LOOPS if s.csms_limit_w else 10,
    }


@dataclass(frozen=True)
class Options:
    """What every scenario run shares."""

    josev_python: str
    workdir: Path
    certs: Path                 # our SECC's chain, key and roots
    pki_dir: Path               # Josev's PKI_PATH
    ac_max_power_w: float = 22000.0
    patches: tuple[str, ...] = ()
    josev_own: JosevOwnPki | None = None   # Plug & Charge scenarios
    pnc_certs: Path | None = None          # our certificate directory from Josev's PKI


def start_josev(link: Any, s: Scenario, opts: Options, log_path: Path) -> subprocess.Popen:
    workdir, pki_dir = opts.workdir, opts.pki_dir
    if s.pnc:
        assert opts.josev_own is not None
        pki_dir = opts.josev_own.root
    config_path = workdir / f"evcc_{s.key}.json"
    config_path.write_text(json.dumps(josev_config(s), indent=1))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(NETWORK_INTERFACE=link.ifnames["ev"], PKI_PATH=str(pki_dir) + "/",
               ENABLE_TLS_1_3="true" if s.tls_1_3 else "false", LOG_LEVEL="INFO",
               MESSAGE_LOG_JSON="true", MESSAGE_LOG_EXI="false", EVCC_CONFIG_PATH=str(config_path),
               PYTHONUNBUFFERED="1")
    out = log_path.open("wb")
    if opts.patches:
        argv = [opts.josev_python, str(Path(__file__).with_name("josev_evcc_patched.py")),
                ",".join(opts.patches), str(config_path)]
    else:
        argv = [opts.josev_python, "-m", "iso15118.evcc.main", str(config_path)]
    return link.popen("ev", argv,
                      cwd=str(workdir), env=env, stdout=out, stderr=subprocess.STDOUT,
                      start_new_session=True)


def stop_process(proc: subprocess.Popen) -> int | None:
    """SIGINT, SIGTERM, then SIGKILL to the process group we started (Josev never exits
    by itself after a session)."""
    if proc.poll() is None:
        for sig, wait in ((signal.SIGINT, 3), (signal.SIGTERM, 3), (signal.SIGKILL, 3)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
    return proc.returncode


# --- our side -----------------------------------------------------------------------------------


class LineCollector(logging.Handler):
    """Our daemon's log lines (kv format) for the report."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(KeyValueFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a log line is never worth a crash here
            pass


@dataclass
class SeccOutcome:
    summaries: list[Any] = field(default_factory=list)
    records: list[list[Exchange]] = field(default_factory=list)
    tls: list[str] = field(default_factory=list)
    contactors_closed: bool | None = None
    plant_events: list[str] = field(default_factory=list)
    error: str = ""
    csms_received: list[str] = field(default_factory=list)   # OCPP actions, PnC via CSMS
    # Smart Charging: when the CSMS sent SetChargingProfile (time.monotonic(), the clock of
    # the recording), its answer and the composite schedule the bridge reported afterwards
    profile_set_at: float | None = None
    profile_answer: dict[str, Any] | None = None
    composite: dict[str, Any] | None = None
    profile_error: str = ""


def run_secc(link: Any, s: Scenario, opts: Options, josev_exited: threading.Event,
             ready: threading.Event) -> SeccOutcome:
    """Our daemon in the secc namespace until its first session ended (or Josev exited)."""
    from secc.boards import board_from_config
    from secc.config import loads_board_config
    from secc.daemon import SeccDaemon, bus_from_config, server_tls_context
    from sim.vehicle_plant import VehiclePlant

    ac = s.board_output == "ac"
    board_text = BOARD.format(
        output=s.board_output, max_current=32 if ac else 200,
        max_power=opts.ac_max_power_w if ac else 150000,
        iface=link.ifnames["secc"], protocols=json.dumps(list(s.board_protocols)),
        certs=opts.pnc_certs if s.pnc else opts.certs, pnc="true" if s.pnc else "false")
    outcome = SeccOutcome()

    class RecordingDaemon(SeccDaemon):
        async def _serve(self, conn: Any) -> None:  # record, then serve as the daemon does
            record: list[Exchange] = []
            outcome.records.append(record)
            outcome.tls.append(
                f"{conn.tls_version} {conn.cipher}"
                + (" +EV cert" if conn.peer_certificate_der() else "") if conn.is_tls else "TCP")
            await super()._serve(RecordingConnection(conn, record))

    async def main() -> SeccOutcome:
        backend = None
        if s.csms:  # broker, test CSMS and the OCPP bridge process, in the secc namespace
            from sim.charger import ChargerBackend
            from sim.csms import ContractProvisioning

            work = opts.workdir / f"backend_{s.key}"
            work.mkdir(parents=True, exist_ok=True)
            backend = await ChargerBackend(work).start()
            assert backend.csms is not None
            if s.pnc:
                assert opts.josev_own is not None
                backend.csms.provisioning = ContractProvisioning(pki=opts.josev_own.contracts())
        try:
            return await serve(backend)
        finally:
            if backend is not None:
                outcome.csms_received = backend.received()
                await backend.stop()

    async def set_profile_when_charging(backend: Any, watts: float) -> None:
        """The CSMS's part of the Smart Charging scenario: once the transaction reports
        Charging (Josev's CurrentDemand loop runs), a TxProfile of ``watts`` for it."""
        from sim.charger import STATION_ID
        from sim.testing.waits import wait_until

        csms = backend.csms
        seen: list[LoopLimit] = []
        checked = [0]

        def charging() -> bool:
            """The transaction reports Charging and we already answered a few CurrentDemandReq
            (decoded as they come, so the limit before the profile is on record)."""
            if not outcome.records:
                return False
            record = outcome.records[0]
            upto = len(record)
            seen.extend(secc_loop_limits(record[max(checked[0], 2):upto], skip=0))
            checked[0] = upto
            return len(seen) >= 3 and any(
                e.get("transactionInfo", {}).get("chargingState") == "Charging"
                for e in csms.messages("TransactionEvent"))
        try:
            await wait_until(charging, SESSION_TIMEOUT_S / 2,
                             "chargingState Charging and 3 CurrentDemandRes")
        except TimeoutError:
            outcome.profile_error = ("the charge loop never ran with the transaction Charging: "
                                     f"{len(seen)} CurrentDemandRes, "
                                     f"{backend.transaction_summary()}")
            return
        try:
            tid = csms.messages("TransactionEvent")[0]["transactionInfo"]["transactionId"]
            profile = {"id": 17, "stackLevel": 0, "chargingProfilePurpose": "TxProfile",
                       "chargingProfileKind": "Relative", "transactionId": tid,
                       "chargingSchedule": [{"id": 1, "chargingRateUnit": "W",
                                             "chargingSchedulePeriod": [
                                                 {"startPeriod": 0, "limit": watts}]}]}
            outcome.profile_set_at = time.monotonic()
            outcome.profile_answer = await csms.call(STATION_ID, "SetChargingProfile",
                                                     {"evseId": 1, "chargingProfile": profile})
            outcome.composite = await csms.call(STATION_ID, "GetCompositeSchedule", {
                "duration": 300, "evseId": 1, "chargingRateUnit": "W"})
        except Exception as exc:  # reported in the verdict, never hidden
            outcome.profile_error = f"the CSMS could not set its profile: {exc!r}"

    async def serve(backend: Any) -> SeccOutcome:
        config = loads_board_config(board_text + (backend.board_bus_section() if backend
                                                  else ""))
        bus, authorizer = bus_from_config(config)
        board = board_from_config(config)
        daemon = RecordingDaemon(config, board, link.ifnames["secc"], authorizer=authorizer,
                                 bus=bus, tls_context=server_tls_context(config))
        plant = VehiclePlant(board, asyncio.get_running_loop(), battery_voltage=400.0)
        daemon.event_listeners.append(plant.on_session_event)
        await daemon.start()
        plant.plug_in()
        ready.set()
        profile_task = None
        if backend is not None and s.csms_limit_w is not None:
            profile_task = asyncio.create_task(set_profile_when_charging(backend,
                                                                         s.csms_limit_w))
        deadline = time.monotonic() + SESSION_TIMEOUT_S
        while not daemon.summaries and not josev_exited.is_set() \
                and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if daemon.summaries:   # let Josev close its side before the car is unplugged
            end = time.monotonic() + GRACE_AFTER_SECC_END_S
            while time.monotonic() < end and not josev_exited.is_set():
                await asyncio.sleep(0.05)
        elif not josev_exited.is_set():
            outcome.error = f"no V2G session ended within {SESSION_TIMEOUT_S:.0f} s"
        if profile_task is not None and not profile_task.done():
            profile_task.cancel()
            outcome.profile_error = outcome.profile_error or "the session ended before the " \
                "CSMS could set its profile"
        if bus is not None:
            await bus.flush(10)
        outcome.contactors_closed = board.contactors_closed
        outcome.summaries = list(daemon.summaries)
        outcome.plant_events = list(plant.events)
        plant.unplug()
        await asyncio.sleep(0.2)
        await daemon.stop()
        return outcome

    return link.run_coroutine("secc", main).result(SESSION_TIMEOUT_S + 60)


# --- Smart Charging: the limit as we sent it and as Josev decoded it -----------------------------

JOSEV_MESSAGE = re.compile(r"(Decoded message|Message to encode) \(ns=[^)]*\): (\{.*\})\s*$")


@dataclass
class LoopLimit:
    """One CurrentDemandRes: the notification and the maximum power it carried."""

    notification: str
    max_power_w: float | None
    at: float = 0.0          # time.monotonic() on the SECC side; 0 on Josev's side


def watts(value: Any) -> float | None:
    """A PhysicalValue (our object or Josev's JSON dict) in W."""
    if value is None:
        return None
    if isinstance(value, dict):
        return float(value["Value"]) * 10 ** int(value["Multiplier"])
    return float(value.value) * 10 ** int(value.multiplier)


def secc_loop_limits(record: list[Exchange], skip: int = 2) -> list[LoopLimit]:
    """The CurrentDemandRes we sent, decoded with our codec (``skip``: SupportedAppProtocol)."""
    found = []
    for ex in record[skip:]:
        if ex.direction != "res":
            continue
        try:
            element = exi_schemas.body_element(exi_schemas.decode(ex.payload, "iso2"))
        except Exception:   # reported by judge() through pair_up
            continue
        if element is None or element[0] != "CurrentDemandRes":
            continue
        res = element[1]
        found.append(LoopLimit(str(res.dc_evse_status.evse_notification),
                               watts(res.evse_maximum_power_limit), ex.at))
    return found


def josev_messages(josev_lines: list[str]) -> list[tuple[str, str, dict[str, Any]]]:
    """Josev's own JSON log of every -2 message (MESSAGE_LOG_JSON): ("got"|"sent", body
    element name, body element), in order."""
    out = []
    for line in josev_lines:
        m = JOSEV_MESSAGE.search(line)
        if not m:
            continue
        try:
            body = json.loads(m.group(2)).get("V2G_Message", {}).get("Body", {})
        except json.JSONDecodeError:
            continue
        for name, element in body.items():
            out.append(("got" if m.group(1).startswith("Decoded") else "sent", name, element))
    return out


def judge_smart_charging(s: Scenario, outcome: SeccOutcome, record: list[Exchange],
                         josev_lines: list[str]) -> tuple[list[str], list[str]]:
    """(problems, findings): the CSMS's profile reached our CurrentDemandRes in time and
    Josev decoded it."""
    limit = s.csms_limit_w
    assert limit is not None
    problems: list[str] = []
    findings: list[str] = []
    if outcome.profile_error:
        problems.append(outcome.profile_error)
    if outcome.profile_answer != {"status": "Accepted"}:
        problems.append(f"SetChargingProfile answered {outcome.profile_answer}")
    periods = ((outcome.composite or {}).get("schedule") or {}).get("chargingSchedulePeriod")
    if not periods or periods[0].get("limit") != limit:
        problems.append(f"GetCompositeSchedule after the profile: {outcome.composite}")
    set_at = outcome.profile_set_at
    ours = secc_loop_limits(record)
    if set_at is None or not ours:
        problems.append(f"no CurrentDemandRes to compare ({len(ours)} sent)")
        return problems, findings
    before = [x for x in ours if x.at < set_at]
    lowered = [x for x in ours if x.at >= set_at and x.max_power_w == limit]
    if not before or any(x.max_power_w is None or x.max_power_w <= limit for x in before):
        problems.append("the CurrentDemandRes before the profile did not offer more than "
                        f"{limit:.0f} W: {[x.max_power_w for x in before]}")
    if not lowered:
        problems.append(f"no CurrentDemandRes after the profile carried {limit:.0f} W: "
                        f"{[x.max_power_w for x in ours if x.at >= set_at]}")
    else:
        latency = lowered[0].at - set_at
        findings.append(f"SetChargingProfile -> our CurrentDemandRes with {limit:.0f} W: "
                        f"{latency * 1000:.0f} ms; {len(lowered)} of {len(ours)} "
                        f"CurrentDemandRes carried it")
        if latency > SMART_CHARGING_DEADLINE_S:
            problems.append(f"the new limit took {latency:.2f} s (goal "
                            f"{SMART_CHARGING_DEADLINE_S:.0f} s)")
        if not any(x.notification == "ReNegotiation" for x in lowered):
            problems.append("no CurrentDemandRes with the new limit said ReNegotiation: "
                            f"{sorted({x.notification for x in lowered})}")
        after = ours[ours.index(lowered[0]):]
        if any(x.max_power_w is not None and x.max_power_w > limit for x in after):
            problems.append("a CurrentDemandRes after the new limit offered more again")
    # Josev's side: what it decoded, and what it did next
    messages = josev_messages(josev_lines)
    got = [(i, e) for i, (way, name, e) in enumerate(messages)
           if way == "got" and name == "CurrentDemandRes"]
    seen = [(i, e) for i, e in got
            if watts(e.get("EVSEMaximumPowerLimit")) == limit
            and e.get("DC_EVSEStatus", {}).get("EVSENotification") == "ReNegotiation"]
    if not got:
        problems.append("Josev's log shows no decoded CurrentDemandRes (MESSAGE_LOG_JSON)")
    elif not seen:
        problems.append(f"Josev never decoded a CurrentDemandRes with {limit:.0f} W and "
                        "ReNegotiation: " + str(sorted({
                            (watts(e.get("EVSEMaximumPowerLimit")),
                             e.get("DC_EVSEStatus", {}).get("EVSENotification"))
                            for _, e in got}, key=str)))
    else:
        first = seen[0][0]
        following = [name for way, name, _ in messages[first + 1:] if way == "sent"]
        findings.append(f"Josev decoded {len(seen)} CurrentDemandRes with "
                        f"EVSEMaximumPowerLimit={limit:.0f} W and "
                        f"EVSENotification=ReNegotiation; it then sent: "
                        f"{', '.join(compact_names(following))}")
        if "CurrentDemandReq" not in following[:1] and "ChargeParameterDiscoveryReq" \
                not in following and "PowerDeliveryReq" not in following[:1]:
            problems.append(f"Josev did not carry on after the new limit: {following[:3]}")
        if "ChargeParameterDiscoveryReq" in following:
            findings.append("Josev renegotiated (ChargeParameterDiscoveryReq after the limit)")
        else:
            findings.append("Josev did not renegotiate: 0.31.2 reads EVSENotification in DC "
                            "CurrentDemandRes only for StopCharging, and charged on under "
                            "the lowered EVSEMaximumPowerLimit")
    return problems, findings


def compact_names(names: list[str]) -> list[str]:
    out: list[tuple[str, int]] = []
    for name in names:
        if out and out[-1][0] == name:
            out[-1] = (name, out[-1][1] + 1)
        else:
            out.append((name, 1))
    return [n if k == 1 else f"{n} ×{k}" for n, k in out]


# --- one scenario -----------------------------------------------------------------------------


@dataclass
class Result:
    scenario: Scenario
    passed: bool
    protocol: str | None
    requests: int
    end_reason: str
    final_state: str | None
    transport: str
    sequence: list[str]
    problems: list[str]
    secc_log: list[str]
    josev_log_path: Path
    josev_errors: list[str]
    josev_protocol: str = "-"
    findings: list[str] = field(default_factory=list)   # printed for passes too


def judge(s: Scenario, outcome: SeccOutcome, josev_lines: list[str]) -> Result:
    summary = outcome.summaries[0] if outcome.summaries else None
    record = outcome.records[0] if outcome.records else []
    protocol = summary.protocol if summary else None
    pairs = pair_up(protocol, record)
    problems: list[str] = []
    if outcome.error:
        problems.append(outcome.error)
    if summary is None:
        problems.append("the SECC never finished a V2G session (no SessionSummary)")
    else:
        if protocol != s.expected_protocol:
            problems.append(f"protocol {protocol}, expected {s.expected_protocol}")
        if summary.final_state != "Terminated":
            problems.append(f"final state {summary.final_state}")
    names = [req.name for req, _ in pairs]
    for req, res in pairs:
        code = res.response_code if res is not None else None
        if res is None:
            problems.append(f"{req.name} got no response from the SECC")
        elif code is not None and not (code.startswith("OK") or code == "Accepted"):
            problems.append(f"SECC answered {req.name} with {code}")
        if req.name.startswith("<undecodable") or (res and res.name.startswith("<undecodable")):
            problems.append(f"{req.name}: {req.detail or (res.detail if res else '')}")
    if summary is not None and not CHARGE_LOOP & set(names):
        problems.append("no charge loop request reached the SECC")
    if summary is not None and "SessionStopReq" not in names:
        problems.append("no SessionStopReq reached the SECC")
    if s.pnc and summary is not None:
        if protocol == "iso2" and "PaymentDetailsReq" not in names:
            problems.append("Josev did not choose Plug & Charge (no PaymentDetailsReq)")
        if protocol and protocol.startswith("iso20") and not any(
                req.name == "AuthorizationReq" and req.detail == "service=PnC"
                for req, _ in pairs):
            problems.append("Josev did not choose Plug & Charge (no PnC AuthorizationReq)")
    if s.csms and s.pnc and "Authorize" not in outcome.csms_received:
        problems.append(f"the CSMS got no Authorize (it saw {outcome.csms_received})")
    if s.cert_install:
        if "CertificateInstallationReq" not in names:
            problems.append("no CertificateInstallationReq reached the SECC")
        if "Get15118EVCertificate" not in outcome.csms_received:
            problems.append("the CSMS got no Get15118EVCertificate")
    if outcome.contactors_closed:
        problems.append("contactors still closed after the session")
    if len(outcome.summaries) > 1:
        problems.append(f"{len(outcome.summaries)} V2G connections (Josev restarted SDP)")
    findings: list[str] = []
    if s.csms_limit_w is not None:
        more, findings = judge_smart_charging(s, outcome, record, josev_lines)
        problems += more
    josev_errors = [line for line in josev_lines if JOSEV_ERROR.search(line)]
    if josev_errors:
        problems.append(f"Josev logged {len(josev_errors)} error line(s)")
    text = "\n".join(josev_lines)
    if problems:
        problems += [f"known cause: {why}" for pattern, why in KNOWN_CAUSES
                     if pattern.search(text)]
    chosen = [m.group(1) for line in josev_lines if (m := JOSEV_CHOSEN.search(line))]
    return Result(s, not problems, protocol, summary.requests if summary else 0,
                  summary.end_reason if summary else "-",
                  summary.final_state if summary else None,
                  outcome.tls[0] if outcome.tls else "-",
                  compact_sequence(pairs), problems, [], Path(), josev_errors,
                  chosen[0] if chosen else "-", findings)


def run_scenario(s: Scenario, opts: Options, collector: LineCollector) -> Result:
    from sim.testing.netns import VethLink

    collector.lines = []
    log_path = opts.workdir / f"josev_{s.key}.log"
    ready, josev_exited = threading.Event(), threading.Event()
    with VethLink() as link:
        box: dict[str, Any] = {}

        def secc_thread() -> None:
            try:
                box["outcome"] = run_secc(link, s, opts, josev_exited, ready)
            except BaseException as exc:  # reported, never hidden
                box["outcome"] = SeccOutcome(error=f"SECC side crashed: {exc!r}")
                ready.set()

        thread = threading.Thread(target=secc_thread, name="interop-secc", daemon=True)
        thread.start()
        ready.wait(30)
        proc = start_josev(link, s, opts, log_path)
        while thread.is_alive():
            if proc.poll() is not None:
                josev_exited.set()
            thread.join(0.1)
        rc = stop_process(proc)
    outcome: SeccOutcome = box.get("outcome") or SeccOutcome(error="SECC side gave no result")
    josev_lines = log_path.read_text(errors="replace").splitlines()
    result = judge(s, outcome, josev_lines)
    if josev_exited.is_set() and rc not in (None, 0):
        result.problems.append(f"Josev exited early with code {rc}")
        result.passed = False
    result.secc_log = list(collector.lines)
    result.josev_log_path = log_path
    return result


# --- report -----------------------------------------------------------------------------------


def print_result(r: Result, verbose: bool) -> None:
    s = r.scenario
    status = "PASS" if r.passed else "FAIL"
    tag = "" if s.required else " (optional)"
    print(f"\n== {s.title}{tag}: {status}", flush=True)
    if s.note:
        print(f"   note: {s.note}")
    print(f"   protocol={r.protocol} (Josev: {r.josev_protocol}) transport={r.transport} "
          f"requests={r.requests} "
          f"final_state={r.final_state} end_reason={r.end_reason!r}")
    print("   SECC saw: " + (", ".join(r.sequence) or "(nothing)"))
    for finding in r.findings:
        print(f"   finding: {finding}")
    for problem in r.problems:
        print(f"   problem: {problem}")
    if r.passed and not verbose:
        return
    interesting = [line for line in r.secc_log
                   if re.search(r"level=(WARNING|ERROR|CRITICAL)", line)
                   or "request failed" in line or "V2G session ended" in line]
    print(f"   -- SECC log (warnings/errors, {len(interesting)} of {len(r.secc_log)} lines):")
    for line in interesting[-25:]:
        print(f"      {line}")
    print(f"   -- Josev log: {r.josev_log_path} (errors and last lines):")
    josev_lines = r.josev_log_path.read_text(errors="replace").splitlines()
    shown = r.josev_errors[:15] + ["      ..."] + josev_lines[-15:]
    for line in shown:
        print(f"      {line[:400]}")


def print_table(results: list[Result], josev_version: str) -> None:
    print(f"\n== Josev {josev_version} EVCC against the pysecc SECC daemon")
    print(f"{'scenario':<23} {'req':<4} {'result':<6} {'protocol':<9} {'transport':<42} "
          f"{'#req':>4}  end reason")
    for r in results:
        print(f"{r.scenario.key:<23} {'yes' if r.scenario.required else 'opt':<4} "
              f"{'PASS' if r.passed else 'FAIL':<6} {str(r.protocol):<9} {r.transport:<42} "
              f"{r.requests:>4}  {r.end_reason}")


def result_record(r: Result) -> dict[str, Any]:
    return {"key": r.scenario.key, "required": r.scenario.required, "passed": r.passed,
            "protocol": r.protocol, "josev_protocol": r.josev_protocol,
            "transport": r.transport, "requests": r.requests, "final_state": r.final_state,
            "end_reason": r.end_reason, "sequence": r.sequence, "problems": r.problems,
            "findings": r.findings,
            "josev_log": str(r.josev_log_path)}


def josev_version(josev_python: str) -> str:
    try:
        return subprocess.run(
            [josev_python, "-c", "import importlib.metadata as m; print(m.version('iso15118'))"],
            capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    except Exception as exc:
        return f"unknown ({exc})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--josev-python", required=True,
                        help="interpreter of the venv where iso15118 is installed")
    parser.add_argument("--only", action="append", default=[],
                        help="run only these scenario keys (repeatable)")
    parser.add_argument("--no-iso20", action="store_true", help="skip the optional -20 runs")
    parser.add_argument("--logs", type=Path, default=None,
                        help="directory for Josev's logs (default: a new temp directory)")
    parser.add_argument("--verbose", action="store_true", help="log excerpts for passes too")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--json", type=Path, default=None,
                        help="also write the results to this file (for tests/interop)")
    parser.add_argument("--ac-max-power-w", type=float, default=22000.0,
                        help="the AC board's max_power_w (a 22 kW wallbox by default)")
    parser.add_argument("--patch-josev", action="append", default=[],
                        choices=sorted(["pr435"]),
                        help="diagnostic: run Josev with a named upstream fix applied in memory "
                             "(see josev_evcc_patched.py); never used by `make interop`")
    args = parser.parse_args(argv)

    if args.list:
        for s in SCENARIOS:
            print(f"{s.key:<23} {'required' if s.required else 'optional'}  {s.title}")
        return 0
    from sim.testing.netns import netns_supported
    from sim.testing.pki import TestPKI

    ok, why = netns_supported()
    if not ok:
        print(f"cannot run: {why}")
        return 2
    if shutil.which("java") is None:
        print("cannot run: Josev encodes EXI with a Java jar and no `java` is on PATH")
        return 2
    chosen = [s for s in SCENARIOS
              if (not args.only or s.key in args.only)
              and not (args.no_iso20 and s.expected_protocol.startswith("iso20"))]
    if not chosen:
        print(f"no scenario matches {args.only}; see --list")
        return 2

    collector = LineCollector()
    root = logging.getLogger("pysecc")
    root.handlers[:] = [collector]
    root.setLevel(logging.DEBUG)
    root.propagate = False

    workdir = args.logs or Path(tempfile.mkdtemp(prefix="pysecc-interop-"))
    workdir.mkdir(parents=True, exist_ok=True)
    pki = TestPKI()
    certs = workdir / "secc-certs"
    pki.write_secc_files(certs)
    pki_dir = write_josev_pki(pki, workdir / "josev-pki")
    version = josev_version(args.josev_python)  # also proves the interpreter runs
    print(f"Josev (iso15118) {version}; logs and configs in {workdir}", flush=True)

    # Josev runs with its own working directory: a relative interpreter path would not resolve
    josev_python = (str(Path(args.josev_python).absolute()) if os.sep in args.josev_python
                    else shutil.which(args.josev_python) or args.josev_python)
    josev_own = pnc_certs = None
    if any(s.pnc for s in chosen):
        josev_own = JosevOwnPki(josev_python, workdir / "josev-own-pki")
        pnc_certs = josev_own.write_secc_files(workdir / "secc-certs-josev-pki")
        print(f"Plug & Charge: Josev's own PKI (create_certs.sh) in {josev_own.root}; our "
              f"certificate directory {pnc_certs}", flush=True)
    opts = Options(josev_python, workdir, certs, pki_dir, args.ac_max_power_w,
                   tuple(args.patch_josev), josev_own, pnc_certs)
    if opts.patches:
        print(f"DIAGNOSTIC RUN: Josev patched in memory with {', '.join(opts.patches)}")
    results = []
    for s in chosen:
        started = time.monotonic()
        result = run_scenario(s, opts, collector)
        results.append(result)
        print_result(result, args.verbose)
        print(f"   ({time.monotonic() - started:.1f} s)", flush=True)
        (workdir / f"secc_{s.key}.log").write_text("\n".join(result.secc_log) + "\n")

    print_table(results, version + (f" patched with {','.join(opts.patches)}"
                                    if opts.patches else ""))
    if args.json is not None:
        args.json.write_text(json.dumps([result_record(r) for r in results], indent=1))
    failed_required = [r.scenario.key for r in results if r.scenario.required and not r.passed]
    passed = sum(r.passed for r in results)
    print(f"\n{passed} passed, {len(results) - passed} failed "
          f"(required failures: {', '.join(failed_required) or 'none'})")
    return 1 if failed_required else 0


if __name__ == "__main__":
    sys.exit(main())
