"""IEC 61851-1 control pilot: states, the signal the EVSE drives, duty formulas, debounce.

Pure logic (no I/O, time passed in) so every board implementation shares it and tests run
without sleeping.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

# IEC 61851-1 Annex A, Table A.8: duty cycle <-> maximum current for basic charging.
MIN_BASIC_CURRENT_A = 6.0
MAX_BASIC_CURRENT_A = 80.0
HLC_DUTY_PERCENT = 5.0


class PilotState(enum.Enum):
    """Pilot states as measured on the EVSE side (positive plateau of the pilot)."""

    A = "A"   # +12 V: no EV connected
    B = "B"   # +9 V: EV connected, not ready
    C = "C"   # +6 V: EV ready, charging
    D = "D"   # +3 V: EV ready, charging with ventilation
    E = "E"   # 0 V: pilot shorted to PE / EVSE lost supply
    F = "F"   # -12 V: EVSE not available (we drive it), or error

    @property
    def connected(self) -> bool:
        return self in (PilotState.B, PilotState.C, PilotState.D)

    @property
    def ev_ready(self) -> bool:
        """C or D: the EV asks for energy; contactors may close."""
        return self in (PilotState.C, PilotState.D)


class PilotSignalKind(enum.Enum):
    PWM = "pwm"           # oscillating +-12 V, 1 kHz, duty as given
    X1 = "x1"             # constant +12 V ("100 %"): no charging offered
    STATE_F = "state_f"   # constant -12 V ("0 %"): EVSE not available


@dataclass(frozen=True)
class PilotSignal:
    """What the EVSE drives on the pilot. Build with the class methods, not by hand."""

    kind: PilotSignalKind
    duty_percent: float

    @classmethod
    def hlc(cls, duty_percent: float = HLC_DUTY_PERCENT) -> PilotSignal:
        """5 % (3..7 % tolerated by EVs): high-level communication (ISO 15118 / DIN 70121)."""
        if not 3.0 <= duty_percent <= 7.0:
            raise ValueError(f"HLC duty must be 3..7 %, got {duty_percent}")
        return cls(PilotSignalKind.PWM, float(duty_percent))

    @classmethod
    def nominal(cls, max_current_a: float) -> PilotSignal:
        """Basic charging: the duty that announces ``max_current_a`` (6..80 A)."""
        return cls(PilotSignalKind.PWM, duty_for_current(max_current_a))

    @classmethod
    def x1(cls) -> PilotSignal:
        return cls(PilotSignalKind.X1, 100.0)

    @classmethod
    def state_f(cls) -> PilotSignal:
        return cls(PilotSignalKind.STATE_F, 0.0)

    @property
    def duty_permille(self) -> int:
        """The duty as sent to an MCU: 0 = state F, 1000 = constant +12 V."""
        return round(self.duty_percent * 10)

    @classmethod
    def from_permille(cls, permille: int) -> PilotSignal:
        if permille <= 0:
            return cls.state_f()
        if permille >= 1000:
            return cls.x1()
        return cls(PilotSignalKind.PWM, permille / 10)


def duty_for_current(max_current_a: float) -> float:
    """IEC 61851-1 Table A.8: 6..51 A -> I / 0.6 %; 51..80 A -> I / 2.5 + 64 %.

    Below 6 A no charging can be offered with PWM (the caller pauses with X1 instead); above
    80 A the formula ends (96 %).
    """
    amps = float(max_current_a)
    if not MIN_BASIC_CURRENT_A <= amps <= MAX_BASIC_CURRENT_A:
        raise ValueError(f"basic charging current must be 6..80 A, got {max_current_a}")
    if amps <= 51.0:
        return round(amps / 0.6, 3)
    return round(amps / 2.5 + 64.0, 3)


def current_for_duty(duty_percent: float) -> float | None:
    """The EV side of Table A.8: the current a duty allows, or None (no basic charging).

    3..7 % means digital communication (None); 8..10 % allows 6 A; 10..85 % -> D x 0.6;
    85..96 % -> (D - 64) x 2.5; 96..97 % -> 80 A; anything else: charging not allowed.
    """
    d = float(duty_percent)
    if 8.0 <= d < 10.0:
        return 6.0
    if 10.0 <= d <= 85.0:
        return round(d * 0.6, 3)
    if 85.0 < d <= 96.0:
        return round((d - 64.0) * 2.5, 3)
    if 96.0 < d <= 97.0:
        return 80.0
    return None


class PilotDebouncer:
    """Reports a pilot state only once the raw measurement has been stable for ``debounce_s``.

    Feed raw samples with :meth:`sample` (``now`` in seconds, any monotonic origin); call
    :meth:`poll` at or after :meth:`deadline`. Both return the debounced transition
    ``(previous, new)`` when one happens. A glitch shorter than the debounce time is ignored.
    """

    def __init__(self, debounce_s: float, initial: PilotState = PilotState.A) -> None:
        if debounce_s < 0:
            raise ValueError("debounce must be >= 0")
        self.debounce_s = debounce_s
        self.state = initial
        self._candidate: PilotState | None = None
        self._since = 0.0

    def deadline(self) -> float | None:
        """When a pending candidate becomes the debounced state, or None."""
        return None if self._candidate is None else self._since + self.debounce_s

    def sample(self, raw: PilotState, now: float) -> tuple[PilotState, PilotState] | None:
        if raw == self.state:
            self._candidate = None
        elif raw != self._candidate:
            self._candidate, self._since = raw, now
        return self.poll(now)

    def poll(self, now: float) -> tuple[PilotState, PilotState] | None:
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return None
        previous, self.state = self.state, self._candidate
        self._candidate = None
        return previous, self.state  # type: ignore[return-value]
