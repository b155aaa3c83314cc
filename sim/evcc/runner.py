"""Run one simulated EV charging session over real sockets (the asyncio edge of sim.evcc).

``run_ev_session(EvSessionConfig(interface="veth-ev", protocol="din"))`` does what a car
does after plug-in: (optional) SLAC, SDP (asking for TLS or TCP), connect, offer its
protocols in supportedAppProtocolReq, then drive the chosen protocol's sans-I/O EVCC over
the V2GTP connection until SessionStopRes or a failure. With
``misbehaviour.pause_instead_of_terminate`` and ``resume_after_pause`` it then sleeps, wakes the
charger (``wake_up``: the BCB toggle of ``sim.evcc.wake``, then the 5 % PWM), reconnects and
resumes the paused session with the old SessionID, as ISO 15118-2 and -20 allow.

``drive_evcc(connection, evcc)`` is the loop alone, for tests that open the connection
themselves. Progress lines go to the ``sim`` log layer; the result object has everything a
test or benchmark asserts on.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import inspect
import socket
import ssl
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import exi_schemas as exi
from exi_schemas.generated import appprotocol
from secc.common.logs import layer_logger, session_context
from secc.sdp.messages import Security
from secc.v2gtp import (
    ConnectionClosed,
    InterfaceError,
    PayloadType,
    ReceiveTimeout,
    V2GTPConnection,
)
from sim.ev_transport import SDP_RETRIES, connect_to_discovered, discover_secc
from sim.evcc import protocols
from sim.evcc.battery import Battery
from sim.evcc.core import (
    EvccConfig,
    Finished,
    Misbehaviour,
    PncContract,
    Send,
    SessionRecord,
    VehicleSignals,
)
from sim.evcc.failures import ConnectionLost, EvccFailure, NegotiationFailed, SetupFailed
from sim.evcc.protocols import AppProtocolOffer, EvProtocol
from sim.evcc.wake import WakeUpFailed, WakeUpHook

log = layer_logger("sim")

#: Called with the car's signals when they change (e.g. to drive a simulated board's CP).
SignalsHook = Callable[[VehicleSignals], Awaitable[None] | None]

#: V2G_EVCC_Msg_Timeout of supportedAppProtocolReq.
APP_PROTOCOL_TIMEOUT = 2.0


@dataclass
class EvSessionConfig:
    """Everything one simulated plug-in needs."""

    interface: str
    protocol: str = "din"                      # preferred protocol (offered first)
    mode: str = "dc"                           # "dc" or "ac"
    offers: list[AppProtocolOffer] | None = None  # None: preferred, then others with mode
    vendor_first: bool = False                 # a Tesla-like vendor namespace at priority 1
    tls: bool = False                          # ask for TLS in SDP (ISO 15118-2: TLS 1.2)
    v2g_root: Path | None = None               # trust anchor for the SECC certificate
    # -20 mutual TLS: the vehicle certificate chain and key the car presents (a SECC with
    # OEM roots installed serves -20 only to a car that shows one)
    vehicle_tls: tuple[Path, Path] | None = None
    slac: bool = False                         # run SLAC first (sim.ev_slac)
    slac_timeout: float = 20.0
    sdp_retries: int = SDP_RETRIES
    battery: Battery = field(default_factory=Battery)
    evcc: EvccConfig = field(default_factory=EvccConfig)
    misbehaviour: Misbehaviour = field(default_factory=Misbehaviour)
    resume_after_pause: bool = False           # after SessionStop(Pause): reconnect, resume
    # after the pause and before the resume: the car's sleep and its wake-up of the charger
    # (sim.evcc.wake.bcb_wake_up); None reconnects at once (a charger that does not sleep)
    wake_up: WakeUpHook | None = None
    use_interface_mac: bool = True             # EVCCID = the interface's MAC, as cars do
    on_signals: SignalsHook | None = None      # CP state / contactors for a simulated board
    contract: PncContract | None = None        # ISO-2 Plug & Charge credential (needs tls)


@dataclass
class EvSessionResult:
    """What happened: per V2G session (two when a paused session was resumed)."""

    protocol: str | None = None                # registry name of the negotiated protocol
    negotiation_code: str | None = None        # supportedAppProtocolRes ResponseCode
    sessions: list[SessionRecord] = field(default_factory=list)
    failure: EvccFailure | None = None
    slac: Any = None                           # sim.ev_slac.EvResult when SLAC ran
    setup_seconds: dict[str, float] = field(default_factory=dict)  # slac, sdp, connect, ...
    tls_version: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None

    @property
    def response_codes(self) -> list[tuple[str, str]]:
        codes = [("SupportedAppProtocol", self.negotiation_code)] if self.negotiation_code \
            else []
        for record in self.sessions:
            codes += record.response_codes
        return codes

    @property
    def energy_wh(self) -> float:
        return self.sessions[-1].energy_wh if self.sessions else 0.0

    @property
    def loop_iterations(self) -> int:
        return sum(record.loop_iterations for record in self.sessions)

    @property
    def timings(self) -> list[tuple[str, float]]:
        """(step, seconds from request sent to response received) for every exchange."""
        return [(e.step, e.seconds) for record in self.sessions for e in record.exchanges
                if e.seconds is not None]

    def summary(self) -> dict[str, Any]:
        """A JSON-able digest (for the CLI and benchmarks)."""
        by_step: dict[str, list[float]] = {}
        for step, seconds in self.timings:
            by_step.setdefault(step, []).append(seconds * 1000)
        return {
            "ok": self.ok, "protocol": self.protocol, "negotiation": self.negotiation_code,
            "sessions": [r.session_id.hex() for r in self.sessions],
            "energy_wh": round(self.energy_wh, 2), "loop_iterations": self.loop_iterations,
            "soc": [self.sessions[0].soc_start, self.sessions[-1].soc_end] if self.sessions
            else None,
            "stop_reason": self.sessions[-1].stop_reason if self.sessions else None,
            "failure": None if self.failure is None
            else f"{type(self.failure).__name__}: {self.failure}",
            "response_ms_median": {s: round(sorted(v)[len(v) // 2], 2) for s, v in by_step.items()},
            "setup_seconds": {k: round(v, 3) for k, v in self.setup_seconds.items()},
        }


# --- the charge session loop over one connection ---------------------------------------------
async def drive_evcc(connection: V2GTPConnection, evcc: Any,
                     on_signals: SignalsHook | None = None) -> SessionRecord:
    """Run a sans-I/O EVCC over an open V2GTP connection until it finishes.

    Sends each request at its ``not_before``, waits for the response until the EVCC's next
    deadline, and turns a closed connection into ``ConnectionLost``. ``on_signals`` gets the
    car's CP state / contactors / battery voltage whenever they change, before the next
    request goes out (and once at the end), so a simulated charger board can follow the car.
    """
    loop = asyncio.get_running_loop()
    action: Send | Finished = evcc.start(loop.time())
    applied: VehicleSignals | None = None
    with contextlib.ExitStack() as tagged:
        tagging = False
        while isinstance(action, Send):
            applied = await _apply_signals(evcc, on_signals, applied)
            delay = action.not_before - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                await connection.send(action.payload_type, action.payload)
            except (ConnectionClosed, OSError) as exc:
                action = evcc.fail(ConnectionLost(action.step, f"send failed: {exc}"))
                break
            action = await _await_response(connection, evcc, action.step, loop)
            if evcc.record.session_id and not tagging:
                tagged.enter_context(session_context(evcc.record.session_id.hex()))
                tagging = True
    await _apply_signals(evcc, on_signals, applied)
    return action.record


async def _apply_signals(evcc: Any, hook: SignalsHook | None,
                         applied: VehicleSignals | None) -> VehicleSignals | None:
    signals = getattr(evcc, "signals", None)
    if hook is None or signals is None or signals == applied:
        return applied
    snapshot = dataclasses.replace(signals)
    outcome = hook(snapshot)
    if inspect.isawaitable(outcome):
        await outcome
    return snapshot


async def _await_response(connection: V2GTPConnection, evcc: Any, step: str,
                          loop: asyncio.AbstractEventLoop) -> Send | Finished:
    while True:
        deadline = evcc.next_deadline()
        timeout = None if deadline is None else max(0.0, deadline - loop.time())
        try:
            message = await connection.receive(timeout)
        except ReceiveTimeout:
            done = evcc.handle_timer(loop.time())
            if done is not None:
                return done
            continue
        except ConnectionClosed as exc:
            return evcc.fail(ConnectionLost(step, f"connection closed: {exc}"))
        return evcc.receive(message.payload_type, message.payload, loop.time())


def sim_board_signals(board: Any, loop: asyncio.AbstractEventLoop | None = None) -> SignalsHook:
    """A ``SignalsHook`` that plays the car's side of a ``hal.sim.SimBoard``: CP state,
    battery voltage at the inlet, the car's contactors. Pass the board's event loop when the
    EV runs in another thread (another network namespace): the calls are then scheduled on
    that loop, since the board is not thread-safe."""

    def apply(signals: VehicleSignals) -> None:
        board.ev_set_battery_voltage(signals.battery_voltage)
        board.ev_set_pilot(signals.pilot)
        board.ev_close_contactors(signals.contactors_closed)

    if loop is None:
        return apply
    return lambda signals: loop.call_soon_threadsafe(apply, signals) and None


# --- supportedAppProtocol ---------------------------------------------------------------------
def app_protocol_request(offers: list[AppProtocolOffer]) -> bytes:
    """supportedAppProtocolReq with priority = list position and SchemaID = position + 1."""
    return exi.encode(appprotocol.supportedAppProtocolReq(app_protocol=[
        appprotocol.AppProtocolType(protocol_namespace=o.namespace, version_number_major=o.major,
                                    version_number_minor=o.minor, schema_id=i + 1,
                                    priority=i + 1)
        for i, o in enumerate(offers)]))


async def negotiate(connection: V2GTPConnection, offers: list[AppProtocolOffer], mode: str,
                    timeout: float = APP_PROTOCOL_TIMEOUT) -> tuple[EvProtocol, str]:
    """Offer ``offers``; return the registered protocol the SECC chose and its code."""
    await connection.send(PayloadType.EXI, app_protocol_request(offers))
    try:
        message = await connection.receive(timeout)
    except ReceiveTimeout:
        raise NegotiationFailed("SupportedAppProtocol", f"no response within {timeout:g} s")
    except ConnectionClosed as exc:
        raise ConnectionLost("SupportedAppProtocol", str(exc)) from None
    try:
        response = exi.decode(message.payload, "appprotocol")
    except exi.ExiDecodeError as exc:
        raise NegotiationFailed("SupportedAppProtocol", f"undecodable response: {exc}") from None
    if not isinstance(response, appprotocol.supportedAppProtocolRes):
        raise NegotiationFailed("SupportedAppProtocol", f"got {type(response).__name__}")
    code = response.response_code
    if code.startswith("Failed") or response.schema_id is None:
        raise NegotiationFailed("SupportedAppProtocol", f"SECC answered {code}")
    index = response.schema_id - 1
    if not 0 <= index < len(offers):
        raise NegotiationFailed("SupportedAppProtocol",
                                f"SchemaID {response.schema_id} was not offered")
    chosen = protocols.by_namespace(offers[index].namespace, mode)
    if chosen is None:
        raise NegotiationFailed("SupportedAppProtocol",
                                f"SECC chose {offers[index].namespace}, which this EV cannot run")
    return chosen, code


# --- the whole plug-in ------------------------------------------------------------------------
def interface_mac(interface: str) -> bytes | None:
    """The interface's MAC in the calling thread's namespace (SIOCGIFHWADDR), or None."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            info = fcntl.ioctl(sock.fileno(), 0x8927,
                               struct.pack("256s", interface.encode()[:15]))
    except OSError:
        return None
    return info[18:24]


def _client_context(config: EvSessionConfig) -> ssl.SSLContext | None:
    if not config.tls:
        return None
    if config.v2g_root is None:
        raise ValueError("TLS needs the V2G root certificate (v2g_root) to verify the SECC")
    from secc.tls import iso2_client_context, iso20_client_context

    if config.protocol == "iso20":  # -20 runs over TLS 1.3 only (the SECC enforces it too)
        chain, key = config.vehicle_tls or (None, None)
        return iso20_client_context(config.v2g_root, chain, key)
    return iso2_client_context(config.v2g_root)


async def run_ev_session(config: EvSessionConfig) -> EvSessionResult:
    """One plug-in: (SLAC) -> SDP -> TCP/TLS -> supportedAppProtocol -> EVCC [-> resume]."""
    result = EvSessionResult()
    evcc_config = dataclasses.replace(config.evcc, mode=config.mode)
    if config.contract is not None:
        evcc_config = dataclasses.replace(evcc_config, contract=config.contract)
    if config.use_interface_mac:
        mac = interface_mac(config.interface)
        if mac:
            evcc_config = dataclasses.replace(evcc_config, evcc_id=mac)
    offers = config.offers or protocols.default_offers(
        [config.protocol] + [p for p in protocols.PROTOCOLS if p != config.protocol],
        config.mode, vendor_first=config.vendor_first)
    try:
        ssl_context = _client_context(config)
        if config.slac:
            await _run_slac(config, result)
        record = await _one_connection(config, result, offers, ssl_context, evcc_config,
                                       config.misbehaviour)
        if record.paused and config.resume_after_pause:
            if config.wake_up is not None:
                await _wake_charger(config.wake_up, result)
            log.info("resuming the paused session", extra={"session": record.session_id.hex()})
            await _one_connection(
                config, result, offers, ssl_context,
                dataclasses.replace(evcc_config, resume_session_id=record.session_id),
                dataclasses.replace(config.misbehaviour, pause_instead_of_terminate=False))
    except EvccFailure as failure:
        result.failure = failure
        log.warning(f"session setup failed at {failure.step}: {failure.detail}")
    if result.failure is None and result.sessions and result.sessions[-1].failure is not None:
        result.failure = result.sessions[-1].failure
    return result


async def _wake_charger(wake_up: WakeUpHook, result: EvSessionResult) -> None:
    log.info("paused: the EV sleeps until it wakes the charger")
    started = time.monotonic()
    try:
        await wake_up()
    except (WakeUpFailed, OSError) as exc:   # no 5 % PWM, no control socket
        raise SetupFailed("WakeUp", f"{type(exc).__name__}: {exc}") from None
    result.setup_seconds["sleep"] = time.monotonic() - started
    log.info("charger awake (5 % PWM)")


async def _run_slac(config: EvSessionConfig, result: EvSessionResult) -> None:
    from secc.slac.driver import InterfaceError as SlacInterfaceError
    from sim.ev_slac import run_ev

    started = time.monotonic()
    try:
        slac = await run_ev(config.interface, timeout=config.slac_timeout)
    except (OSError, SlacInterfaceError) as exc:  # no such interface, no raw-socket rights
        raise SetupFailed("SLAC", f"{type(exc).__name__}: {exc}") from None
    result.slac = slac
    result.setup_seconds["slac"] = time.monotonic() - started
    if not slac.matched:
        raise SetupFailed("SLAC", f"no match: {slac.reason}")
    log.info("SLAC matched", extra={"nid": slac.nid.hex()})


async def _one_connection(config: EvSessionConfig, result: EvSessionResult,
                          offers: list[AppProtocolOffer], ssl_context: ssl.SSLContext | None,
                          evcc_config: EvccConfig, misbehaviour: Misbehaviour) -> SessionRecord:
    started = time.monotonic()
    security = Security.TLS if config.tls else Security.NO_TLS
    try:
        sdp = await discover_secc(config.interface, security, retries=config.sdp_retries)
    except (TimeoutError, OSError, InterfaceError) as exc:  # no answer, no such interface
        raise SetupFailed("SDP", f"{type(exc).__name__}: {exc}") from None
    result.setup_seconds["sdp"] = time.monotonic() - started
    log.info(f"SDP OK: SECC at [{sdp.address}]:{sdp.port} {sdp.security.name}")
    started = time.monotonic()
    try:
        connection = await connect_to_discovered(config.interface, sdp, ssl_context,
                                                 read_timeout=None)
    except (OSError, ssl.SSLError, TimeoutError, ValueError) as exc:
        raise SetupFailed("connect", f"{type(exc).__name__}: {exc}") from None
    result.setup_seconds["connect"] = time.monotonic() - started
    result.tls_version = connection.tls_version
    try:
        started = time.monotonic()
        try:
            protocol, code = await negotiate(connection, offers, config.mode)
        finally:  # a timed-out negotiation is recorded too (benchmarks)
            result.setup_seconds["app_protocol"] = time.monotonic() - started
        result.protocol, result.negotiation_code = protocol.name, code
        connection.restrict_payload_types(protocol.payload_types)
        log.info(f"SupportedAppProtocol OK: {protocol.name} ({code})")
        evcc = protocol.factory(config.battery, evcc_config, misbehaviour)
        record = await drive_evcc(connection, evcc, config.on_signals)
        result.sessions.append(record)
        return record
    finally:
        await connection.close()
