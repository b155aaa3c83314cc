"""Run one V2G connection: SupportedAppProtocol, then the negotiated protocol's session core.

This is the thin asyncio shell around the sans-I/O cores (aioquic-style): it reads V2GTP
messages with the core's next deadline as timeout, decodes them with the protocol adapter,
refreshes the EVSE snapshot, feeds the core, carries out the returned actions, encodes and
sends the response. Authorization requests run as tasks; their decision is handed to the core
and the car, polling with Ongoing, sees it on its next request.

Whatever happens — malformed EXI, reset connection, timer expiry, a bug — the session ends
with the charger in a safe state.
"""

from __future__ import annotations

import asyncio
import importlib
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

import exi_schemas
from hal.board import SafeStateReason
from exi_schemas.generated import appprotocol as AP
from secc.appprotocol.negotiation import (
    DIN_2_0,
    ISO2_2_0,
    ISO20_AC_1_0,
    ISO20_DC_1_0,
    AppProtocol,
    Preference,
    Protocol,
    SupportedVersion,
    negotiate,
)
from secc.common.logs import layer_logger, session_context, set_session_id
from secc.common.looplag import monitor as loop_lag
from secc.session.controller import EvseController
from secc.session.warmup import late_imports
from secc.v2g.core import Reply, SessionCore
from secc.v2g.evse import (
    Action,
    EnterSafeState,
    EvseLimits,
    EvseSnapshot,
    PublishEvent,
    RequestAuthorization,
    RequestCertificate,
    StopReason,
)
from secc.v2g.paused import PausedSessions
from secc.v2g.protocol import ProtocolAdapter
from secc.v2g.timers import V2GTimerConfig
from secc.v2gtp import ConnectionClosed, PayloadType, ReceiveTimeout, V2GTPConnection

log = layer_logger("v2g")

# protocol -> "module:AdapterClass"; imported on first use so a missing package only
# disables that protocol.
ADAPTERS: dict[Protocol, str] = {
    Protocol.DIN70121: "secc.din.adapter:DinAdapter",
    Protocol.ISO15118_2: "secc.iso2.adapter:Iso2Adapter",
    Protocol.ISO15118_20_DC: "secc.iso20.adapter:Iso20DcAdapter",
    Protocol.ISO15118_20_AC: "secc.iso20.adapter:Iso20AcAdapter",
}

PILOT_POLL_S = 0.02   # pilot polling while an answer is held (the board debounces it)

PROTOCOL_NAMES: dict[str, SupportedVersion] = {
    "din": DIN_2_0, "iso2": ISO2_2_0, "iso20-dc": ISO20_DC_1_0, "iso20-ac": ISO20_AC_1_0,
}


def load_adapter(protocol: Protocol) -> ProtocolAdapter:
    module_name, class_name = ADAPTERS[protocol].split(":")
    return getattr(importlib.import_module(module_name), class_name)()


@dataclass(frozen=True)
class SessionSettings:
    """Everything a session needs from the board config."""

    evse_id: str = "ZZ00000"
    protocols: tuple[str, ...] = ("iso2", "din")   # our supported list (names above)
    preference: Preference = Preference.EV
    limits: EvseLimits = field(default_factory=EvseLimits)
    timers: V2GTimerConfig = field(default_factory=V2GTimerConfig)
    quirks: frozenset[str] = frozenset()
    sap_timeout: float = 20.0         # connection -> supportedAppProtocolReq
    core_options: dict[str, Any] = field(default_factory=dict)  # e.g. {"din": {...}}
    # the EVSE's paused sessions (ISO-2 and -20), shared by every connection's core
    paused_sessions: PausedSessions = field(default_factory=PausedSessions)


@dataclass
class SessionSummary:
    protocol: str | None = None
    session_id: str | None = None
    final_state: str | None = None
    requests: int = 0
    end_reason: str = ""
    processing_ms: list[float] = field(default_factory=list)  # per request, decode->encode
    loop_stalls: int = 0          # event-loop callbacks over the lag threshold (any task's)
    late_imports: list[str] = field(default_factory=list)  # modules first imported meanwhile


def supported_versions(names: tuple[str, ...]) -> list[SupportedVersion]:
    versions = []
    for name in names:
        version = PROTOCOL_NAMES[name]
        try:
            load_adapter(version.protocol)
        except ImportError:
            log.warning("protocol not available in this build", extra={"protocol": name})
            continue
        versions.append(version)
    return versions


def vehicle_certificate_missing(conn: Any) -> bool:
    """The TLS server asked for the vehicle certificate (the board has OEM roots) and the
    client presented none. False without TLS or when none was asked for
    (``[v2g].without_oem_root = "no_vehicle_certificate"``)."""
    obj = getattr(conn, "ssl_object", None)
    if obj is None:
        return False
    asked = obj.context.verify_mode != ssl.CERT_NONE
    return asked and not obj.getpeercert(binary_form=True)


async def negotiate_app_protocol(conn: V2GTPConnection, settings: SessionSettings,
                                 summary: SessionSummary) -> Protocol | None:
    message = await conn.receive(settings.sap_timeout)
    if message.payload_type != PayloadType.EXI:
        raise ValueError(f"expected supportedAppProtocolReq, got payload type "
                         f"{message.payload_type:#06x}")
    request = exi_schemas.decode(message.payload, "appprotocol")
    if not isinstance(request, AP.supportedAppProtocolReq):
        raise ValueError("expected supportedAppProtocolReq")
    offers = [AppProtocol(p.protocol_namespace, p.version_number_major, p.version_number_minor,
                          p.schema_id, p.priority) for p in request.app_protocol]
    supported = supported_versions(settings.protocols)
    if conn.tls_version != "TLSv1.3":
        # ISO 15118-20 runs over TLS 1.3 only; an EV that connected otherwise gets DIN/-2
        supported = [v for v in supported if not v.protocol.is_iso20]
    elif vehicle_certificate_missing(conn):
        # -20 authenticates both sides: with OEM roots installed the server asks for the
        # vehicle certificate (optional at TLS level, as -2 shares the port): no certificate,
        # no -20 (docs/conformance.md, OCC everest-d20-client-auth)
        log.warning("TLS 1.3 client without a vehicle certificate: ISO 15118-20 not offered",
                    extra={"fix": "the EV must present its vehicle certificate (OEM chain)"})
        supported = [v for v in supported if not v.protocol.is_iso20]
    result = negotiate(offers, supported, settings.preference)
    log.info("supportedAppProtocol negotiated", extra={
        "offered": ",".join(f"{o.namespace}:{o.major}.{o.minor}/p{o.priority}" for o in offers),
        "result": result.response_code.value,
        "chosen": result.protocol.namespace if result.protocol else "-"})
    response = AP.supportedAppProtocolRes(response_code=result.response_code.value,
                                          schema_id=result.schema_id)
    await conn.send(PayloadType.EXI, exi_schemas.encode(response))
    if not result.ok:
        summary.end_reason = "no common protocol"
        return None
    conn.restrict_payload_types(result.protocol.payload_types)
    return result.protocol


class SessionRunner:
    """One negotiated session on one connection."""

    def __init__(self, conn: V2GTPConnection, adapter: ProtocolAdapter, core: SessionCore,
                 controller: EvseController, summary: SessionSummary) -> None:
        self.conn = conn
        self.adapter = adapter
        self.core = core
        self.controller = controller
        self.summary = summary
        self.loop = asyncio.get_running_loop()
        self.tasks: set[asyncio.Task] = set()

    async def run(self) -> None:
        while not self.core.terminated:
            deadline = self.core.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - self.loop.time())
            try:
                message = await self.conn.receive(timeout)
            except ReceiveTimeout:
                await self.refresh()  # timers may depend on readings
                reply = self.core.handle_timer(self.loop.time())
                if reply is not None:
                    await self.finish(reply)
                continue
            except ConnectionClosed as closed:
                self.read_pilot()  # unplugged or not: the session's end reason tells
                await self.perform(self.core.connection_lost(str(closed)))
                self.summary.end_reason = f"connection closed: {closed}"
                return
            await self.handle(message.payload_type, message.payload)

    async def handle(self, payload_type: int, payload: bytes) -> None:
        started = time.perf_counter()
        try:
            request = self.adapter.decode(payload_type, payload)
        except (exi_schemas.ExiDecodeError, ValueError) as exc:
            log.error("undecodable request, closing", extra={"error": str(exc),
                                                             "bytes": payload[:32].hex()})
            await self.perform(self.core.connection_lost(f"undecodable request: {exc}"))
            self.summary.end_reason = f"undecodable request: {exc}"
            await self.conn.close()
            return
        self.summary.requests += 1
        await self.refresh()
        reply = self.core.receive(request.name, request.body, self.loop.time(), request.session_id)
        while reply.hold_until is not None and not self.core.terminated:
            # the core waits for the pilot (e.g. CP B after PowerDelivery(Stop)): ask again
            # with the same request when the pilot changes or at the core's deadline
            await self.wait_pilot_change(reply.hold_until)
            await self.refresh()
            reply = self.core.receive(request.name, request.body, self.loop.time(),
                                      request.session_id)
        if self.summary.session_id is None and self.core.session_id != bytes(8):
            self.summary.session_id = self.core.session_id.hex()
            set_session_id(self.summary.session_id)
        await self.finish(reply, started)

    async def wait_pilot_change(self, deadline: float) -> None:
        """Until the board's pilot differs from the core's snapshot, or ``deadline``
        (monotonic s). The board debounces the pilot; polled every PILOT_POLL_S."""
        before = self.core.evse.cp_state
        log.info("answer held for the pilot", extra={"cp_state": before,
                                                     "hold_s": round(deadline - self.loop.time(), 3)})
        board = getattr(self.controller, "board", None)
        while (remaining := deadline - self.loop.time()) > 0:
            if board is not None and board.pilot_state.value != before:
                return
            await asyncio.sleep(min(PILOT_POLL_S, remaining))

    def read_pilot(self) -> None:
        """The pilot state into the snapshot now (cheap, no I/O), where the board is known."""
        board = getattr(self.controller, "board", None)
        if board is not None:
            self.core.evse.cp_state = board.pilot_state.value

    async def refresh(self) -> None:
        """Fresh readings for the core; an EVSE-side stop reason is handed to it at once."""
        await self.controller.refresh(self.core.evse)
        self.core.charging_limit_changed(getattr(self.controller, "charging_limit", None),
                                         time.time())
        answer = getattr(self.controller, "charging_needs_answer", None)
        if answer is not None:
            self.core.charging_needs_answered(*answer)
        reason = self.core.evse.stop_reason
        if reason is not StopReason.NONE:
            await self.perform(self.core.evse_stop(reason))

    async def finish(self, reply: Reply, started: float | None = None) -> None:
        # Hardware actions come before the response (PowerDeliveryRes OK means contactors
        # closed); events for the bus are informational and must not delay the car.
        events = [a for a in reply.actions if isinstance(a, PublishEvent)]
        await self.perform([a for a in reply.actions if not isinstance(a, PublishEvent)])
        if reply.response is not None:
            payload_type, data = self.adapter.encode(reply.response_name, reply.response,
                                                     self.core.session_id)
            if started is not None:
                self.summary.processing_ms.append((time.perf_counter() - started) * 1000)
            await self.conn.send(payload_type, data)
        await self.perform(events)
        if reply.close:
            self.summary.end_reason = self.summary.end_reason or next(
                (a.reason for a in reply.actions if isinstance(a, EnterSafeState)), "closed")
            await self.conn.close()

    async def perform(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, PublishEvent) and "session_id" not in action.data:
                data = {**action.data, "protocol": self.adapter.name,
                        "session_id": self.core.session_id.hex()}
                action = PublishEvent(action.kind, data)
            if isinstance(action, RequestAuthorization):
                task = asyncio.create_task(self.authorize(action))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
                continue
            if isinstance(action, RequestCertificate):
                # ISO-2 CertificateInstallation/Update has no Ongoing: await the CSMS (bounded
                # by action.timeout in the controller), then the core produces the response
                fetch = getattr(self.controller, "certificate", None)
                answer = await fetch(action) if fetch is not None else None
                await self.finish(self.core.certificate_answered(answer, self.loop.time()))
                continue
            try:
                await self.controller.perform(action)
            except Exception as exc:  # a hardware error must end in safe state, not a crash
                log.error("action failed, entering safe state",
                          extra={"action": type(action).__name__, "error": repr(exc)})
                if not isinstance(action, EnterSafeState):
                    await self.perform(self.core.connection_lost(f"hardware error: {exc}"))
                    await self.conn.close()

    async def authorize(self, action: RequestAuthorization) -> None:
        from secc.authorization import AuthorizationDecision, AuthorizationStatus
        try:
            decision = await self.controller.authorizer.authorize(action.request)
        except Exception as exc:
            log.error("authorization failed", extra={"error": repr(exc)})
            decision = AuthorizationDecision(AuthorizationStatus.TIMEOUT, repr(exc))
        log.info("authorization decided", extra={"status": decision.status.value,
                                                 "reason": decision.reason})
        self.core.authorization_decided(decision)

    async def cancel_tasks(self) -> None:
        for task in list(self.tasks):
            task.cancel()


async def run_v2g_session(conn: V2GTPConnection, settings: SessionSettings,
                          controller: EvseController) -> SessionSummary:
    """Serve one V2G connection to its end. Never raises for peer behaviour."""
    summary = SessionSummary()
    runner: SessionRunner | None = None
    stalls_before = loop_lag.count
    late_imports.new_modules()  # whatever came before this session is not its fault
    try:
        protocol = await negotiate_app_protocol(conn, settings, summary)
        if protocol is None:
            return summary
        adapter = load_adapter(protocol)
        summary.protocol = adapter.name
        getattr(controller, "session_started", lambda: None)()
        options = settings.core_options.get(adapter.name, {})
        if adapter.name in ("iso2", "iso20-dc", "iso20-ac"):  # PnC is offered over TLS only
            options = {**options, "tls": conn.tls_version is not None,
                       "paused_sessions": settings.paused_sessions}
        core = adapter.new_core(limits=settings.limits, evse=EvseSnapshot(),
                                timers=settings.timers, now=asyncio.get_running_loop().time(),
                                evse_id=settings.evse_id, quirks=settings.quirks, **options)
        runner = SessionRunner(conn, adapter, core, controller, summary)
        with session_context(f"conn-{id(runner) & 0xFFFFFF:06x}"):
            await runner.run()
        summary.final_state = core.state
    except (ReceiveTimeout, ConnectionClosed, exi_schemas.ExiDecodeError, ValueError) as exc:
        summary.end_reason = summary.end_reason or f"{type(exc).__name__}: {exc}"
        log.warning("V2G connection ended before a session", extra={"reason": summary.end_reason})
    except Exception as exc:  # never let a bug leave power on
        summary.end_reason = f"internal error: {exc!r}"
        log.exception("session driver error; entering safe state")
        try:
            await controller.perform(EnterSafeState("internal error",
                                                    SafeStateReason.COMMUNICATION_ERROR))
        except Exception:
            log.exception("safe state after internal error failed")
    finally:
        if runner is not None:
            await runner.cancel_tasks()
            if not runner.core.terminated:
                await runner.perform(runner.core.connection_lost("driver ended"))
        await conn.close()
    summary.loop_stalls = loop_lag.count - stalls_before
    summary.late_imports = late_imports.new_modules()
    log.info("V2G session ended", extra={"protocol": summary.protocol,
                                         "requests": summary.requests,
                                         "reason": summary.end_reason,
                                         "loop_stalls": summary.loop_stalls,
                                         "late_imports": len(summary.late_imports)})
    return summary
