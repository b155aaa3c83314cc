"""V2G timers: named deadlines a session core keeps, with ``now`` passed in (sans-I/O).

Two families (ISO 15118-2 §8.7 / DIN 70121 §9.6): *timeouts* bound how long the SECC waits
for the car (expiry ends the session); *performance times* bound how long the SECC itself may
take (here: how long a step may stay ``Ongoing``). Values are seconds. Standard values are the
defaults; where the standard leaves a value to the implementation the comment says so.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class V2GTimerConfig:
    # V2G_SECC_Sequence_Timeout [V2G2-443], DIN [V2G-DC-…]: gap between our response and the
    # next request.
    sequence_timeout: float = 60.0
    # ISO 15118-20 Tables 216/217: the charge loops allow 0.5 s, not 60 s.
    charge_loop_sequence_timeout_iso20: float = 0.5
    # V2G_SECC_CommunicationSetup_Timeout: SLAC match / link up -> SessionSetupReq. Cars send
    # their first SDP request up to ~7 s after the match (field captures).
    communication_setup_timeout: float = 20.0
    # How long a step may answer EVSEProcessing=Ongoing. The car gives up at
    # V2G_EVCC_Ongoing_Timeout (60 s); we decide (FAILED) before it does. Policy value.
    ongoing_timeout: float = 55.0
    # V2G_SECC_CableCheck_Performance_Time (DC): isolation check must finish within this.
    cable_check_timeout: float = 38.0
    # V2G_EVCC_PreCharge_Timeout is 7 s; the SECC stops answering pre-charge after this.
    precharge_timeout: float = 7.0
    # V2G_SECC_CPState_Detection_Timeout: CP must show C/D after PowerDelivery(Start).
    # Real cars are slower than the 250 ms some stacks enforce; quirks may relax it.
    cp_state_detection_timeout: float = 1.5
    # Slow-loris bound: a V2GTP message that has started must be complete within this. No
    # clause bounds the time inside one message; the only bound on the EV's side of the
    # exchange is V2G_SECC_Sequence_Timeout (60 s, response -> next request), so a started
    # message gets at most that (docs/conformance.md). Board setting.
    message_timeout: float = 60.0
    # Paused session (SessionStop Pause): the EVSE wakes the sleeping car after this (B1 -> B2,
    # 5 % PWM back on; ISO 15118-3 §7.6). 0: never, the car wakes us with a BCB toggle when it
    # wants to resume (secc.v2g.sleep). Board setting; policy value.
    pause_wake_up: float = 0.0


class Timers:
    """A set of named deadlines. ``expired(now)`` yields each due timer once, earliest first."""

    __slots__ = ("_deadlines",)

    def __init__(self) -> None:
        self._deadlines: dict[str, float] = {}

    def arm(self, name: str, now: float, after: float) -> None:
        self._deadlines[name] = now + after

    def arm_once(self, name: str, now: float, after: float) -> None:
        """Arm unless already running (a window that must not be extended by retries)."""
        self._deadlines.setdefault(name, now + after)

    def disarm(self, *names: str) -> None:
        for name in names:
            self._deadlines.pop(name, None)

    def clear(self) -> None:
        self._deadlines.clear()

    def is_armed(self, name: str) -> bool:
        return name in self._deadlines

    def deadline(self, name: str) -> float | None:
        return self._deadlines.get(name)

    def next_deadline(self) -> float | None:
        return min(self._deadlines.values(), default=None)

    def expired(self, now: float) -> list[str]:
        due = sorted((d, n) for n, d in self._deadlines.items() if d <= now)
        for _, name in due:
            del self._deadlines[name]
        return [name for _, name in due]
