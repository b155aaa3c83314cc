"""What the session driver needs from the charger: fresh readings and action execution.

``EvseController`` is the seam between the sans-I/O cores and the hardware. The daemon uses
``BoardController`` (the HAL); tests may use it with the simulated board.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Protocol

from hal.board import IsolationState
from secc.authorization import AllowListAuthorizer, Authorizer
from secc.common.logs import layer_logger
from secc.v2g.charging_limit import ChargingLimit
from secc.v2g.evse import (
    Action,
    EnterSafeState,
    EvseSnapshot,
    InsulationTestResult,
    Isolation,
    PublishEvent,
    RequestCertificate,
    SetContactors,
    SetDcOutput,
    SetLock,
    StartIsolationCheck,
    StopReason,
)

if TYPE_CHECKING:
    from secc.pnc.installation import CertificateAnswer

log = layer_logger("v2g")

#: Events ``BoardController.events`` keeps: the present session's, at most this many (a DC
#: session publishes a few dozen; a long-running daemon must not grow with every session).
EVENTS_KEPT = 256

_ISOLATION = {IsolationState.VALID: Isolation.VALID, IsolationState.WARNING: Isolation.WARNING,
              IsolationState.FAULT: Isolation.FAULT}


def _bus_of(authorizer: object) -> object | None:
    """The bus client behind an authorizer that goes to the bus (through wrappers such as
    the offline fallback's ``primary``), or None."""
    for _ in range(4):
        if authorizer is None:
            return None
        client = getattr(authorizer, "client", None)
        if client is not None:
            return client
        authorizer = getattr(authorizer, "primary", None)
    return None


class EvseController(Protocol):
    async def refresh(self, snapshot: EvseSnapshot) -> None:
        """Update ``snapshot`` in place with present readings (voltage, current, isolation)."""
        ...

    async def perform(self, action: Action) -> None:
        """Carry out one action; errors are logged by the caller and lead to safe state."""
        ...

    @property
    def authorizer(self) -> Authorizer: ...

    async def certificate(self, request: RequestCertificate) -> CertificateAnswer:
        """ISO-2 CertificateInstallation/Update: the CSMS's answer (Get15118EVCertificate)
        within ``request.timeout``; never raises (optional: without it the EV gets
        FAILED_NoCertificateAvailable)."""
        ...


class BoardController:
    """EvseController over a ``hal.board.Board``; events are published to ``publish``."""

    def __init__(self, board, authorizer: Authorizer | None = None, publish=None,
                 bus=None) -> None:
        """``bus``: the SECC bus client for Get15118EVCertificate; defaults to the one the
        authorizer asks (``BusAuthorizer.client``, possibly wrapped as ``.primary``)."""
        self.board = board
        self.bus = bus if bus is not None else _bus_of(authorizer)
        self._authorizer = authorizer or AllowListAuthorizer(accept_all=True)
        self._publish = publish
        #: the events published since the present session started (the newest
        #: ``EVENTS_KEPT``), for tests and the demo; cleared at every session start
        self.events: deque[PublishEvent] = deque(maxlen=EVENTS_KEPT)
        self.remote_stop_requested = False
        self.charging_limit: ChargingLimit | None = None   # the CSMS's, from the bus
        self.charging_needs_answer: tuple[str, str] | None = None   # (session id, status)
        self.schedule_held = False   # the simulated board's hook: no schedule for the car yet

    def request_remote_stop(self) -> None:
        """The CSMS asked to stop (RequestStopTransaction); the session sees it next request."""
        self.remote_stop_requested = True

    def session_started(self) -> None:
        self.remote_stop_requested = False
        self.events.clear()

    @property
    def authorizer(self) -> Authorizer:
        return self._authorizer

    async def certificate(self, request: RequestCertificate) -> CertificateAnswer:
        """Get15118EVCertificate through the bus and the OCPP bridge; never raises."""
        from secc.pnc.installation import fetch_certificate

        answer = await fetch_certificate(
            self.bus, session_id=request.session_id, action=request.action,
            exi_request=request.exi_request, schema_version=request.schema_version,
            timeout=request.timeout)
        log.info("certificate request answered", extra={
            "action": request.action, "status": answer.status, "reason": answer.reason})
        return answer

    async def refresh(self, snapshot: EvseSnapshot) -> None:
        out = await self.board.read_dc_output()
        snapshot.present_voltage = out.voltage_v
        snapshot.present_current = out.current_a
        reading = await self.board.read_isolation()
        snapshot.isolation = _ISOLATION.get(reading.state, Isolation.INVALID)
        test = self.board.insulation_test()
        snapshot.insulation_test = None if test is None else InsulationTestResult(
            token=test.token, voltage=test.voltage_v, complete=test.complete,
            state=_ISOLATION.get(test.state, Isolation.INVALID))
        snapshot.contactors_closed = bool(self.board.contactors_closed)
        snapshot.cp_state = self.board.pilot_state.value
        snapshot.stop_reason = self.stop_reason(snapshot.isolation)
        snapshot.schedule_pending = self.schedule_held

    def stop_reason(self, isolation: Isolation) -> StopReason:
        """Why the EVSE side must stop, if it must: e-stop, isolation fault, remote stop."""
        if self.board.emergency_stop_active:
            return StopReason.EMERGENCY
        if self.board.pilot_state.value in ("E", "F"):
            # CP shorted to PE / EVSE not available: emergency shutdown (the board already
            # went to its safe state; the session answers FAILED and ends)
            return StopReason.EMERGENCY
        if isolation is Isolation.FAULT:
            return StopReason.ISOLATION_FAULT
        if self.remote_stop_requested:
            return StopReason.REMOTE_STOP
        return StopReason.NONE

    async def perform(self, action: Action) -> None:
        board = self.board
        if isinstance(action, SetContactors):
            await (board.close_contactors() if action.closed else board.open_contactors())
        elif isinstance(action, SetLock):
            await (board.lock() if action.locked else board.unlock())
        elif isinstance(action, SetDcOutput):
            if action.enabled:
                await board.set_dc_setpoint(action.voltage, action.current)
            else:
                await board.dc_off()
        elif isinstance(action, StartIsolationCheck):
            await board.start_insulation_test(action.voltage, action.token)
        elif isinstance(action, EnterSafeState):
            report = await board.safe_state(action.cause)
            if not report.safe:
                log.error("safe state not proven", extra={"problems": "; ".join(report.problems)})
        elif isinstance(action, PublishEvent):
            self.events.append(action)
            if self._publish is not None:
                result = self._publish(action)
                if asyncio.iscoroutine(result):
                    await result
