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

A toggle the car made with the oscillator already off, but before the daemon fell asleep (the
SessionStopRes goes out before the session's SessionPaused event reaches the daemon, so a car
that toggles at once can finish while the old connection is still closing), wakes the EVSE as
soon as it falls asleep: the daemon passes every pilot change, awake too, with whether the
oscillator is off; a toggle while the 5 % PWM is on (a car's C -> B at PowerDelivery(Stop)) is
not one.

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
    _s2_closed: bool = False     # the toggle's C/D seen with the oscillator off
    _toggled: bool = False       # a whole toggle with the oscillator off, before we fell asleep

    def enter(self, now: float) -> WakeUpCause | None:
        """Fall asleep; ``EV_TOGGLE`` (awake again at once) when the car already made its
        toggle with the oscillator off. A toggle under way (S2 closed) is kept: its B wakes."""
        if self._toggled:
            self.leave()
            return WakeUpCause.EV_TOGGLE
        self.asleep, self.since = True, now
        return None

    def leave(self) -> None:
        """Unplugged, a session started, or woken: no longer asleep."""
        self.asleep, self.since, self._s2_closed, self._toggled = False, None, False, False

    @property
    def deadline(self) -> float | None:
        if not self.asleep or self.since is None or self.wake_up_after <= 0:
            return None
        return self.since + self.wake_up_after

    def on_pilot(self, state: PilotState, now: float,
                 oscillator_off: bool = False) -> WakeUpCause | None:
        """A debounced pilot change while asleep: the end of a BCB toggle wakes us. CP A
        (unplugged) or E/F end the sleep without a wake-up (the daemon's safe paths). Awake,
        a toggle made with the oscillator off (``oscillator_off``) is remembered for ``enter``;
        one with the PWM on, or A/E/F, is forgotten."""
        if not self.asleep:
            if not oscillator_off or state not in (PilotState.B, *S2_CLOSED):
                self._s2_closed = self._toggled = False
            elif state in S2_CLOSED:
                self._s2_closed = True
            elif self._s2_closed:
                self._s2_closed, self._toggled = False, True
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
