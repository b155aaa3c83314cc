"""The table-driven session core every protocol (DIN, ISO-2, ISO-20) builds on.

Like h11's state module, one table per protocol owns the sequence rules:
``TRANSITIONS[state][event] -> next state``. An event is the request's name, refined by the
protocol where content decides the path (``PowerDeliveryReq.Start``). A request whose event is
not in the row of the current state is a sequence error: one lookup, one place.

The core is sans-I/O (aioquic-style): ``receive(name, body, now)`` returns a ``Reply``;
``next_deadline()``/``handle_timer(now)`` run the timers; ``authorization_decided(...)`` and
``evse_stop(...)`` feed outside events. Time and chance are inputs too: ``now`` (monotonic)
drives every timer and Ongoing limit, ``wall_clock`` (for time stamps and certificate
validity) and ``random_bytes`` (SessionIDs, GenChallenges) are injected, so tests run every
timer in virtual time and every random value from a seed. Handlers are methods named ``on_<RequestName>`` that
return an ``Outcome`` or raise ``SessionFailure``.
"""

from __future__ import annotations

import abc
import datetime as dt
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hal.board import SafeStateReason
from secc.authorization import AuthorizationDecision, AuthorizationRequest
from secc.common.logs import FieldsAdapter, layer_logger
from secc.contract.reasons import EndReason
from secc.v2g.evse import (
    Action,
    CloseConnection,
    EnterSafeState,
    EvseLimits,
    EvseSnapshot,
    PublishEvent,
    RequestAuthorization,
    StopReason,
)
from secc.v2g.charging_limit import ChargingLimit, Offer, offer
from secc.v2g.failures import Failure, SessionFailure, is_failed, response_code
from secc.v2g.timers import Timers, V2GTimerConfig

log = layer_logger("v2g")

TERMINATED = "Terminated"
# The board's safe-state cause when a session terminates, by the EVSE-side stop in force
# (NONE: the session failed or timed out on the V2G side).
STOP_CAUSES: dict[StopReason, SafeStateReason] = {
    StopReason.NONE: SafeStateReason.COMMUNICATION_ERROR,
    StopReason.EMERGENCY: SafeStateReason.EMERGENCY_STOP,
    StopReason.ISOLATION_FAULT: SafeStateReason.ISOLATION_FAULT,
    StopReason.MALFUNCTION: SafeStateReason.CONTACTOR_FAULT,
    StopReason.UTILITY: SafeStateReason.SHUTDOWN,
    StopReason.REMOTE_STOP: SafeStateReason.SESSION_END,
}
# Why the session ended when the EVSE side stopped it: this explains the end better than the
# car's SessionStop or the failure that followed the stop.
EVSE_STOP_ENDS: dict[StopReason, EndReason] = {
    StopReason.EMERGENCY: EndReason.EMERGENCY_STOP,
    StopReason.ISOLATION_FAULT: EndReason.ISOLATION_FAULT,
    StopReason.MALFUNCTION: EndReason.MALFUNCTION,
    StopReason.UTILITY: EndReason.POWER_LOSS,
    StopReason.REMOTE_STOP: EndReason.REMOTE_STOP,
}
# Why the session ended when a request failed (others: PROTOCOL_ERROR).
FAILURE_ENDS: dict[Failure, EndReason] = {
    Failure.AUTHORIZATION_REJECTED: EndReason.DEAUTHORIZED,
    Failure.PNC_AUTHORIZATION_REJECTED: EndReason.DEAUTHORIZED,
    Failure.CONTRACT_CANCELED: EndReason.DEAUTHORIZED,
    Failure.CERTIFICATE_EXPIRED: EndReason.DEAUTHORIZED,
    Failure.CERTIFICATE_REVOKED: EndReason.DEAUTHORIZED,
}
DANGEROUS_STOPS = frozenset({StopReason.EMERGENCY, StopReason.ISOLATION_FAULT,
                             StopReason.MALFUNCTION, StopReason.UTILITY})


@dataclass
class Outcome:
    """What a handler decided: the response, whether to stay in the state (Ongoing), actions."""

    response: Any
    stay: bool = False
    actions: list[Action] = field(default_factory=list)
    next_state: str | None = None   # only where the table allows several targets


@dataclass
class Reply:
    """What the driver must do after a request or a timer: send, act, maybe close."""

    response: Any = None
    response_name: str | None = None
    actions: list[Action] = field(default_factory=list)
    close: bool = False
    # Not answered yet: the core waits for the pilot (``hold_for``). The driver asks again
    # with the same request when the pilot changes or at this time (monotonic s), whichever
    # comes first; the request is answered once, by that later call.
    hold_until: float | None = None


class SessionCore(abc.ABC):
    """Base class; a protocol sets PROTOCOL, INITIAL_STATE, TRANSITIONS and the handlers."""

    PROTOCOL: ClassVar[str]
    INITIAL_STATE: ClassVar[str]
    TRANSITIONS: ClassVar[dict[str, dict[str, str]]]
    # requests accepted in any state besides the table (quirk profiles may extend this)
    ANYTIME: ClassVar[frozenset[str]] = frozenset()
    # quirk name -> extra rows {state: {event: next state}} merged into TRANSITIONS when the
    # quirk is on (secc.v2g.quirks; the field profile of a board)
    QUIRK_TRANSITIONS: ClassVar[dict[str, dict[str, dict[str, str]]]] = {}

    def __init__(self, *, limits: EvseLimits | None = None, evse: EvseSnapshot | None = None,
                 timers: V2GTimerConfig | None = None, now: float = 0.0,
                 evse_id: str = "ZZ00000", quirks: frozenset[str] = frozenset(),
                 wall_clock: Callable[[], float] = time.time,
                 random_bytes: Callable[[int], bytes] = secrets.token_bytes) -> None:
        self.wall_clock = wall_clock
        self.random_bytes = random_bytes
        self.limits = limits or EvseLimits()
        self.rated_limits = self.limits       # the board's; ``limits`` may be lowered by the CSMS
        self.pmax_schedule: tuple[tuple[int, float], ...] = ()   # (s from now, W) to offer
        self.limit_revision: int | None = None                   # of the CSMS limit applied
        # NotifyEVChargingNeeds: the CSMS's answer, and the limit revision when it was asked
        self.charging_needs_answer: str | None = None
        self.charging_needs_revision: int | None = None
        self.evse = evse or EvseSnapshot()
        self.timer_config = timers or V2GTimerConfig()
        self.evse_id = evse_id
        self.quirks = quirks
        self.state = self.INITIAL_STATE
        self.session_id: bytes = bytes(8)
        self.timers = Timers()
        self.timers.arm("communication_setup", now, self.timer_config.communication_setup_timeout)
        self.stop_reason = StopReason.NONE
        self.authorization: AuthorizationDecision | None = None
        self._ongoing_since: dict[str, float] = {}
        self._authorization_requested = False
        self.request_session_id: bytes | None = None
        self.ev_full = False   # the car said it is full (DC ChargingComplete) before stopping
        self.log: logging.LoggerAdapter = FieldsAdapter(log, {"protocol": self.PROTOCOL})

    # --- what protocols provide ---------------------------------------------------------------
    def event_of(self, name: str, body: Any) -> str:
        """Refine a request name into a table event. Default: the name itself."""
        return name

    @abc.abstractmethod
    def failed_response(self, request_name: str, code: str) -> tuple[str, Any]:
        """A schema-valid response to ``request_name`` carrying ``code``."""

    def sequence_timeout_for(self, state: str) -> float:
        return self.timer_config.sequence_timeout

    @property
    def delivers_ac(self) -> bool:
        return False

    def charging_limit_changed(self, limit: ChargingLimit | None, wall_now: float) -> None:
        """EVSE input before each request: the CSMS's limit (bus ``charging_limit``, None for
        none) at wall-clock time ``wall_now`` (epoch s)."""
        self.set_charging_limit(offer(self.rated_limits, limit, wall_now, self.delivers_ac,
                                      self.evse.present_voltage))

    def charging_needs_answered(self, session_id: str, status: str) -> None:
        """EVSE input: the CSMS answered this session's NotifyEVChargingNeeds (``status``:
        Accepted, Rejected, Processing, or Failed when it could not be asked)."""
        if session_id == self.session_id.hex():
            self.charging_needs_answer = status

    def waiting_for_charging_needs(self, now: float, wait: float) -> bool:
        """Hold the schedule back (answer Ongoing) so the CSMS can shape it: until it
        answered other than Accepted, or Accepted and a new limit arrived, or ``wait`` s."""
        answer = self.charging_needs_answer
        decided = answer is not None and (answer != "Accepted"
                                          or self.limit_revision != self.charging_needs_revision)
        if decided or wait <= 0 or self.ongoing_expired("charging_needs", now, wait):
            if "charging_needs" in self._ongoing_since and not decided:
                self.log.info("no charging profile from the CSMS in time: offering the "
                              "present limit", extra={"answer": answer, "waited_s": wait})
            self.ongoing_done("charging_needs")
            return False
        return True

    def schedule_pending(self, now: float) -> bool:
        """The EVSE has no schedule for the car yet (``evse.schedule_pending``): answer
        Ongoing; past the Ongoing limit the request fails (FAILED) and the session ends."""
        if not self.evse.schedule_pending:
            self.ongoing_done("schedule")
            return False
        if self.ongoing_expired("schedule", now, self.timer_config.ongoing_timeout):
            raise SessionFailure(Failure.GENERAL, "no schedule from the EVSE within "
                                 f"{self.timer_config.ongoing_timeout:g} s "
                                 "([v2g.timers].ongoing_timeout)")
        return True

    def set_charging_limit(self, offer: Offer) -> None:
        """The limits the CSMS allows now and the PMax schedule to offer
        (``secc.v2g.charging_limit.offer``). Protocols that can renegotiate override this to
        ask the car when ``offer.revision`` changes mid-session."""
        self.limits = offer.limits
        self.pmax_schedule = offer.schedule
        self.limit_revision = offer.revision

    # --- the engine ---------------------------------------------------------------------------
    @property
    def terminated(self) -> bool:
        return self.state == TERMINATED

    def new_session_id(self) -> bytes:
        sid = self.random_bytes(8)
        while sid == bytes(8):
            sid = self.random_bytes(8)
        return sid

    def wall_datetime(self) -> dt.datetime:
        """The injected wall clock as an aware UTC datetime (certificate validity)."""
        return dt.datetime.fromtimestamp(self.wall_clock(), tz=dt.timezone.utc)

    def receive(self, name: str, body: Any, now: float, session_id: bytes | None = None) -> Reply:
        """Process one request (its body element name and object) at time ``now``."""
        if self.terminated:
            return Reply(close=True, actions=[CloseConnection("session already terminated")])
        self.timers.disarm("sequence", "communication_setup")
        self.request_session_id = session_id
        try:
            # The sequence first, then the SessionID: a request out of order is a
            # sequence error whatever SessionID it carries (before SessionSetup there is no
            # session to compare with; ISO 15118-4 style cases SessionSetup_002 send
            # ServiceDiscoveryReq with a zero SessionID and expect FAILED_SequenceError).
            event = self.event_of(name, body)
            row = self.row(self.state)
            if event not in row and not self._allowed_anytime(name):
                raise SessionFailure(Failure.SEQUENCE_ERROR,
                                     f"{event} not allowed in state {self.state}")
            if name != self.SESSION_SETUP and session_id is not None and session_id != self.session_id:
                raise SessionFailure(Failure.UNKNOWN_SESSION,
                                     f"SessionID {session_id.hex()} is not {self.session_id.hex()}")
            hold = self.hold_for(name, now)
            if hold is not None:
                return Reply(hold_until=hold)
            handler = getattr(self, f"on_{name}")
            outcome: Outcome = handler(body, now)
        except SessionFailure as failure:
            code = response_code(self.PROTOCOL, failure.failure)
            self.log.warning("request failed", extra={"request": name, "state": self.state,
                                                      "response_code": code,
                                                      "detail": failure.detail})
            response_name, response = self.failed_response(name, code)
            return self._terminate(f"{code}: {failure.detail}",
                                   FAILURE_ENDS.get(failure.failure, EndReason.PROTOCOL_ERROR),
                                   response, response_name)
        code = self.response_code_of(outcome.response)
        response_name = name[:-3] + "Res"
        if code is not None and is_failed(code):
            self.log.warning("request answered with failure",
                             extra={"request": name, "state": self.state, "response_code": code})
            return self._terminate(code, EndReason.PROTOCOL_ERROR, outcome.response,
                                   response_name, outcome.actions)
        if not outcome.stay:
            previous = self.state
            self.state = outcome.next_state or self.row(previous).get(event, previous)
            if self.state != previous:
                self.log.debug("state change", extra={"from": previous, "to": self.state})
        reply = Reply(outcome.response, response_name, list(outcome.actions))
        if self.terminated:
            reply.close = True
            self.timers.clear()
        else:
            self.timers.arm("sequence", now, self.sequence_timeout_for(self.state))
        return reply

    def hold_for(self, name: str, now: float) -> float | None:
        """Hold the answer to ``name`` until this deadline (None: answer now). Protocols
        override this where the answer depends on a pilot change still to come; past the
        deadline they raise ``SessionFailure`` instead."""
        return None

    def row(self, state: str) -> dict[str, str]:
        """The allowed events of ``state``: the standard's row plus enabled quirk rows."""
        row = self.TRANSITIONS.get(state, {})
        extra = [rows[state] for quirk, rows in self.QUIRK_TRANSITIONS.items()
                 if quirk in self.quirks and state in rows]
        return {**row, **{k: v for r in extra for k, v in r.items()}} if extra else row

    SESSION_SETUP: ClassVar[str] = "SessionSetupReq"
    SESSION_STOP: ClassVar[str] = "SessionStopReq"

    def _allowed_anytime(self, name: str) -> bool:
        if name in self.ANYTIME:
            return True
        # quirk: some cars stop in any state once a session exists
        return (name == self.SESSION_STOP and "session_stop_anytime" in self.quirks
                and self.state != self.INITIAL_STATE)

    def response_code_of(self, response: Any) -> str | None:
        code = getattr(response, "response_code", None)
        return getattr(code, "value", code)

    def _terminate(self, reason: str, end: EndReason, response: Any = None,
                   response_name: str | None = None,
                   actions: list[Action] | None = None) -> Reply:
        self.state = TERMINATED
        self.timers.clear()
        acts = list(actions or [])
        acts += [EnterSafeState(reason, STOP_CAUSES[self.stop_reason]),
                 self.session_stopped(reason, end),
                 CloseConnection(reason)]
        return Reply(response, response_name, acts, close=True)

    def ev_stop_end(self) -> EndReason:
        """Why the car ended its session normally: full (SOC limit) or just stopped."""
        return EndReason.SOC_LIMIT_REACHED if self.ev_full else EndReason.EV_STOPPED

    def session_stopped(self, reason: str, end: EndReason, **data: Any) -> PublishEvent:
        """The SessionStopped event: ``reason`` for the log, ``end_reason`` for the
        transaction. An EVSE-side stop in force (remote, e-stop ...) is the end reason,
        whatever the car or the session did after it."""
        end = EVSE_STOP_ENDS.get(self.stop_reason, end)
        return PublishEvent("SessionStopped", {"reason": reason, "end_reason": end, **data})

    # --- time and outside events ----------------------------------------------------------------
    def next_deadline(self) -> float | None:
        return self.timers.next_deadline()

    def handle_timer(self, now: float) -> Reply | None:
        for name in self.timers.expired(now):
            reply = self.on_timer(name, now)
            if reply is not None:
                return reply
        return None

    def cp_state_timeout(self) -> float:
        t = self.timer_config.cp_state_detection_timeout
        return 2 * t if "relaxed_cp_state" in self.quirks else t

    def arm_cp_state_check(self, now: float) -> None:
        """After PowerDelivery(Start) the car must show CP state C/D in time."""
        self.timers.arm("cp_state", now, self.cp_state_timeout())

    def on_timer(self, name: str, now: float) -> Reply | None:
        """Default: every expired timer ends the session (protocols refine)."""
        if name == "cp_state" and self.evse.cp_state in ("C", "D"):
            return None  # the car switched in time
        self.log.warning("timer expired, ending session", extra={"timer": name,
                                                                  "state": self.state})
        return self._terminate(f"{name} timeout in state {self.state}", EndReason.TIMEOUT)

    def authorization_decided(self, decision: AuthorizationDecision) -> None:
        self.authorization = decision

    def evse_stop(self, reason: StopReason) -> list[Action]:
        """The EVSE side wants to stop (e-stop, isolation fault, remote stop).

        Dangerous reasons make power safe at once; the car learns it from the status of the
        next response. A remote stop is graceful: the car is asked to stop via notification."""
        if self.stop_reason is not StopReason.NONE or self.terminated:
            return []
        self.stop_reason = reason
        self.log.warning("EVSE-side stop requested", extra={"reason": reason.value})
        if reason in DANGEROUS_STOPS:
            return [EnterSafeState(f"EVSE stop: {reason.value}", STOP_CAUSES[reason])]
        return []

    def authorization_step(self, now: float, id_token: str, id_token_type: str,
                           **extra: Any) -> tuple[bool, list[Action]]:
        """EIM-style authorization shared by the protocols: (finished, actions).

        The first call emits RequestAuthorization; while no decision has arrived the caller
        answers Ongoing; a rejection or a decision later than the Ongoing limit raises."""
        actions: list[Action] = []
        if not self._authorization_requested:
            self._authorization_requested = True
            actions.append(RequestAuthorization(AuthorizationRequest(
                evse_id=self.evse_id, session_id=self.session_id.hex(), id_token=id_token,
                id_token_type=id_token_type, **extra)))
        decision = self.authorization
        if decision is None:
            if self.ongoing_expired("authorization", now, self.timer_config.ongoing_timeout):
                raise SessionFailure(Failure.AUTHORIZATION_REJECTED, "no decision in time")
            return False, actions
        self.ongoing_done("authorization")
        if not decision.accepted:
            raise SessionFailure(Failure.AUTHORIZATION_REJECTED,
                                 f"{decision.status.value}: {decision.reason}")
        actions.append(PublishEvent("Authorized", {"id_token": id_token,
                                                   "id_token_type": id_token_type}))
        return True, actions

    # --- the Ongoing rule (one for every protocol) ---------------------------------------------
    # A step the car polls (authorization, cable check, pre-charge, schedule exchange) starts
    # its clock at its first request; the first request after ``limit`` seconds fails. Only
    # requests end an Ongoing step: a car that stops polling meets the sequence timer instead.
    def ongoing_expired(self, step: str, now: float, limit: float) -> bool:
        """True once ``step`` has answered Ongoing for longer than ``limit`` seconds."""
        started = self._ongoing_since.setdefault(step, now)
        return now - started > limit

    def ongoing_running(self, step: str) -> bool:
        return step in self._ongoing_since

    def ongoing_done(self, step: str) -> None:
        self._ongoing_since.pop(step, None)

    def connection_lost(self, reason: str,
                        end: EndReason = EndReason.COMMUNICATION_LOST) -> list[Action]:
        """TCP reset / closed: safe state at once (a paused session may resume later).
        With the pilot in state A (the snapshot's ``cp_state``) the EV was unplugged."""
        if self.terminated:
            return []
        self.state = TERMINATED
        self.timers.clear()
        if self.evse.cp_state == "A":
            end = EndReason.EV_UNPLUGGED
        text = f"connection lost: {reason}"
        return [EnterSafeState(text, SafeStateReason.COMMUNICATION_ERROR),
                self.session_stopped(text, end)]
