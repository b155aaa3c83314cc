"""Sessions paused with SessionStopReq(Pause), kept so the car can resume them later.

ISO 15118-2 and -20 let a car pause (SessionStopReq ChargingSession=Pause), drop the
connection, and come back with a new SessionSetupReq carrying the old SessionID: the SECC
answers OK_OldSessionJoined and keeps what was agreed (the car's identity, its authorization;
-20 also the service and parameter set; ISO-2 [V2G2-741] the payment option, the
SAScheduleTuple the car selected and when that tuple's period ends). One store per EVSE, made by the daemon and handed
to every core (``paused_sessions=``) of both protocols; bounded (``capacity``) and expiring
(``lifetime``), sans-I/O: expiry uses the ``now`` passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

from secc.authorization import AuthorizationDecision


@dataclass(frozen=True)
class PausedSession:
    session_id: bytes
    evccid: str | bytes      # -20: string, ISO-2: hexBinary
    paused_at: float
    authorization: AuthorizationDecision | None = None
    selected_service: int | None = None
    parameter_set_id: int | None = None
    # ISO-2 [V2G2-741]: a resumed session offers only this payment option and this tuple, for
    # what is left of its period (``schedule_ends_at``, on the clock of ``paused_at``)
    payment_option: str | None = None
    sa_schedule_tuple_id: int | None = None
    schedule_ends_at: float | None = None
    schedule_started_at: float | None = None   # the tuple's time axis (its SalesTariff's clock)


class PausedSessions:
    """At most ``capacity`` paused sessions, each kept ``lifetime`` seconds."""

    def __init__(self, lifetime: float = 24 * 3600.0, capacity: int = 8) -> None:
        self.lifetime = lifetime
        self.capacity = capacity
        self._sessions: dict[bytes, PausedSession] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def clear(self) -> None:
        """The car was unplugged: its paused session (and transaction) ended with the cable."""
        self._sessions.clear()

    def put(self, session: PausedSession) -> None:
        self._sessions[session.session_id] = session
        while len(self._sessions) > self.capacity:
            oldest = min(self._sessions.values(), key=lambda s: s.paused_at)
            del self._sessions[oldest.session_id]

    def take(self, session_id: bytes, evccid: str, now: float) -> PausedSession | None:
        """The paused session with this ID and car, removed from the store; None when there is
        none, it expired, or another car claims it."""
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if now - session.paused_at > self.lifetime:
            del self._sessions[session_id]
            return None
        if session.evccid != evccid:
            return None
        del self._sessions[session_id]
        return session
