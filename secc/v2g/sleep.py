"""Sleep mode of a paused session and its wake-up (ISO 15118-3 §7.6, IEC 61851-1 Annex A), sans-I/O.

After SessionStopReq(ChargingSession=Pause) was answered the car sleeps: the EVSE keeps the
oscillator off (state X1, +12 V steady, 100 %: the board's safe state after a normal end) for
the whole sleep, offers no communication (SDP and new V2G connections closed, as a modem that
left the logical network) and keeps the paused session (``secc.v2g.paused``). The sleep ends
with a wake-up:

* **by the EV**: a BCB toggle, the car closes S2 for a moment (CP B -> C or D -> B; ISO 15118-3
  TP_EV_vald_state_duration 200-400 ms each). Any completed B -> C/D -> B on the debounced pilot
  counts: the car is awake whatever the pulse's length, and 5 % PWM is digital communication
  only, no energy;
* **by the EVSE**: after ``wake_up_after`` seconds asleep (board setting
  ``[v2g.timers].pause_wake_up``; 0 = never, the car decides when it resumes), B1 -> B2.

Either way the daemon switches the 5 % PWM on again, opens SDP/V2G and arms
V2G_SECC_CommunicationSetup_Timeout; the car comes back with SessionSetupReq carrying the paused
SessionID. Unplugging (CP A) or a new session ends the sleep. The machine takes pilot states and
``now`` and says when to wake; the daemon owns the pilot, the timer and the transport.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from hal.board import PilotState

S2_CLOSED = frozenset({PilotState.C, PilotState.D})


class WakeUpCause(enum.Enum):
    EV_TOGGLE = "ev_bcb_toggle"          # the car's B -> C/D -> B
    EVSE_TIMER = "evse_wake_up_time"     # our [v2g.timers].pause_wake_up ran out


@dataclass
class SleepMode:
    """One EVSE's sleep: ``enter`` after a pause, then ``on_pilot`` / ``on_time`` until one
    returns a ``WakeUpCause``; ``deadline`` is when ``on_time`` next has something to say."""

    wake_up_after: float = 0.0   # 0: the EVSE never wakes the car by itself
    asleep: bool = False
    since: float | None = None
    _s2_closed: bool = False     # the toggle's C/D seen since we fell asleep

    def enter(self, now: float) -> None:
        self.asleep, self.since, self._s2_closed = True, now, False

    def leave(self) -> None:
        """Unplugged, a session started, or woken: no longer asleep."""
        self.asleep, self.since, self._s2_closed = False, None, False

    @property
    def deadline(self) -> float | None:
        if not self.asleep or self.since is None or self.wake_up_after <= 0:
            return None
        return self.since + self.wake_up_after

    def on_pilot(self, state: PilotState, now: float) -> WakeUpCause | None:
        """A debounced pilot change while asleep: the end of a BCB toggle wakes us. CP A
        (unplugged) or E/F end the sleep without a wake-up (the daemon's safe paths)."""
        if not self.asleep:
            return None
        if state in S2_CLOSED:
            self._s2_closed = True
            return None
        if state is PilotState.B:
            if self._s2_closed:
                self.leave()
                return WakeUpCause.EV_TOGGLE
            return None
        self.leave()
        return None

    def on_time(self, now: float) -> WakeUpCause | None:
        deadline = self.deadline
        if deadline is None or now < deadline:
            return None
        self.leave()
        return WakeUpCause.EVSE_TIMER
