"""Run a -20 SECC core against an EVCC in one process, through the real codec, in virtual time.

``LoopbackCharger`` plays the board: it carries out the core's actions on the core's
``EvseSnapshot`` (contactors, DC output, isolation test after a delay, an authorization
decision after a delay, a meter). ``run_loopback`` pumps requests from any sans-I/O EVCC with
the ``sim.evcc`` interface (``start``/``receive``/``fail``, returning objects with
``payload_type``/``payload``/``not_before`` or a finished record) through
``adapter.decode -> core.receive -> adapter.encode`` and back, firing the core's timers when
virtual time passes them. Used by the tests, the benchmark and demos; no sockets, no sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from exi_schemas import ExiDecodeError
from secc.authorization import AuthorizationDecision, AuthorizationStatus
from secc.iso20.adapter import Iso20Adapter
from secc.iso20.session import Iso20Session
from secc.v2g.core import Reply
from secc.v2g.evse import (
    Action,
    CloseConnection,
    EnterSafeState,
    InsulationTestResult,
    Isolation,
    PublishEvent,
    RequestAuthorization,
    SetContactors,
    SetDcOutput,
    StartIsolationCheck,
)


@dataclass
class LoopbackCharger:
    """A charger that does what the core asks, with the delays a real one has."""

    isolation_delay: float = 0.3
    isolation_result: Isolation = Isolation.VALID
    authorization_delay: float = 0.2
    decision: AuthorizationDecision | None = field(
        default_factory=lambda: AuthorizationDecision(AuthorizationStatus.ACCEPTED, "loopback"))
    events: list[PublishEvent] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    safe_state_reasons: list[str] = field(default_factory=list)
    closed: str | None = None
    _isolation_due: float | None = None
    _isolation_test: StartIsolationCheck | None = None
    _authorization_due: float | None = None
    _last_tick: float | None = None

    def apply(self, core: Iso20Session, actions: list[Action], now: float) -> None:
        evse = core.evse
        for action in actions:
            self.actions.append(action)
            if isinstance(action, SetContactors):
                evse.contactors_closed = action.closed
                if not action.closed:
                    evse.present_voltage = evse.present_current = 0.0
            elif isinstance(action, SetDcOutput):
                evse.present_current = action.current if action.enabled else 0.0
                if action.enabled:
                    evse.present_voltage = action.voltage
            elif isinstance(action, StartIsolationCheck):
                evse.isolation = Isolation.INVALID
                self._isolation_test = action
                self._isolation_due = now + self.isolation_delay
            elif isinstance(action, RequestAuthorization):
                self._authorization_due = now + self.authorization_delay
            elif isinstance(action, EnterSafeState):
                self.safe_state_reasons.append(action.reason)
                evse.contactors_closed = False
                evse.present_voltage = evse.present_current = 0.0
            elif isinstance(action, PublishEvent):
                self.events.append(action)
            elif isinstance(action, CloseConnection):
                self.closed = action.reason

    def tick(self, core: Iso20Session, now: float) -> None:
        """Let time pass on the board: measurements finish, the meter counts."""
        evse = core.evse
        if self._isolation_due is not None and now >= self._isolation_due:
            evse.isolation = self.isolation_result
            test = self._isolation_test
            evse.insulation_test = InsulationTestResult(test.token, test.voltage, complete=True,
                                                        state=self.isolation_result)
            self._isolation_due = None
        if self._authorization_due is not None and now >= self._authorization_due:
            self._authorization_due = None
            if self.decision is not None:
                core.authorization_decided(self.decision)
        if self._last_tick is not None and now > self._last_tick:
            evse.meter_wh += evse.present_voltage * max(evse.present_current, 0.0) * (
                now - self._last_tick) / 3600.0
        self._last_tick = now

    def event_kinds(self) -> list[str]:
        return [e.kind for e in self.events]


@dataclass
class Exchange:
    request: str
    response: str | None
    response_code: str | None
    at: float
    state_after: str


@dataclass
class LoopbackResult:
    exchanges: list[Exchange]
    ev_result: Any            # what the EVCC finished with (sim.evcc.core.Finished)
    timer_reply: Reply | None  # set when a SECC timer ended the session
    now: float

    @property
    def requests(self) -> list[str]:
        return [e.request for e in self.exchanges]

    @property
    def codes(self) -> list[tuple[str, str | None]]:
        return [(e.request, e.response_code) for e in self.exchanges]


def _pilot_of(evcc: Any, default: str) -> str:
    """The CP state the simulated car shows (sim.evcc ``signals.pilot``)."""
    signals = getattr(evcc, "signals", None)
    return getattr(signals, "pilot", default)


def _finished(out: Any) -> bool:
    return not hasattr(out, "payload")


def exchange(core: Iso20Session, adapter: Iso20Adapter, charger: LoopbackCharger, evcc: Any,
             out: Any, now: float, step: float = 0.05) -> tuple[Any, float]:
    """One request of the car through the codec, the core and the charger model and the
    response back to the car (no SECC timers): (the car's next output, the new now)."""
    charger.tick(core, now)
    core.evse.cp_state = evcc.cp_state
    request = adapter.decode(out.payload_type, out.payload)
    reply = core.receive(request.name, request.body, now, request.session_id)
    charger.apply(core, reply.actions, now)
    now += step
    return evcc.receive(*adapter.encode(reply.response_name, reply.response,
                                        core.session_id), now), now


def run_loopback(core: Iso20Session, adapter: Iso20Adapter, evcc: Any,
                 charger: LoopbackCharger | None = None, *, start: float = 0.0,
                 step: float = 0.05, max_exchanges: int = 20_000) -> LoopbackResult:
    """Drive one connection's worth of session; returns when either side ends it."""
    from sim.evcc.failures import ConnectionLost

    charger = charger if charger is not None else LoopbackCharger()
    exchanges: list[Exchange] = []
    now = start
    out = evcc.start(now)
    timer_reply: Reply | None = None
    while not _finished(out) and len(exchanges) < max_exchanges:
        # the SECC's timers run while the EV prepares its request
        deadline = core.next_deadline()
        while deadline is not None and deadline <= out.not_before:
            now = max(now, deadline)
            core.evse.cp_state = _pilot_of(evcc, core.evse.cp_state)
            charger.tick(core, now)
            reply = core.handle_timer(now)
            if reply is not None and reply.close:
                charger.apply(core, reply.actions, now)
                timer_reply = reply
                out = evcc.fail(ConnectionLost("timer", "SECC closed the connection"))
                return LoopbackResult(exchanges, out, timer_reply, now)
            deadline = core.next_deadline()
        now = max(now, out.not_before)
        core.evse.cp_state = _pilot_of(evcc, core.evse.cp_state)
        charger.tick(core, now)
        try:
            request = adapter.decode(out.payload_type, out.payload)
        except (ExiDecodeError, ValueError) as exc:
            charger.apply(core, core.connection_lost(f"undecodable request: {exc}"), now)
            exchanges.append(Exchange("<undecodable>", None, None, now, core.state))
            out = evcc.fail(ConnectionLost(out.step, "SECC closed after undecodable request"))
            break
        reply = core.receive(request.name, request.body, now, request.session_id)
        charger.apply(core, reply.actions, now)
        code = getattr(reply.response, "response_code", None)
        exchanges.append(Exchange(request.name, reply.response_name, code, now, core.state))
        if reply.response is None:
            out = evcc.fail(ConnectionLost(out.step, "no response"))
            break
        payload_type, payload = adapter.encode(reply.response_name, reply.response,
                                               core.session_id)
        now += step
        out = evcc.receive(payload_type, payload, now)
        if reply.close and not _finished(out):
            out = evcc.fail(ConnectionLost(out.step, "SECC closed the connection"))
    return LoopbackResult(exchanges, out, timer_reply, now)
