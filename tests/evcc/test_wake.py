"""The simulated car's wake-up of a sleeping charger (sim/evcc/wake.py), on a scripted pilot
line: the BCB toggle's order and length, the charger that wakes first, no 5 % PWM."""

from __future__ import annotations

import time

import pytest

from hal.sim import SimBoard
from sim.evcc.core import VehicleSignals
from sim.evcc.wake import BoardLine, WakeUpFailed, bcb_wake_up, signals_hook


class ScriptedCharger:
    """A pilot line whose charger switches the 5 % PWM on after a toggle ending in B (or at
    ``wakes_at``), recording what the car did and when."""

    def __init__(self, answers_toggle: bool = True, wakes_at: float | None = None) -> None:
        self.answers_toggle = answers_toggle
        self.wakes_at = wakes_at
        self.moves: list[tuple[str, float]] = []
        self.contactors: list[bool] = []
        self.duty: float | None = None
        self.started = time.monotonic()

    async def set_pilot(self, state: str) -> None:
        self.moves.append((state, time.monotonic() - self.started))
        if state == "B" and any(m == "C" for m, _ in self.moves) and self.answers_toggle:
            self.duty = 5.0

    async def set_contactors(self, closed: bool) -> None:
        self.contactors.append(closed)

    async def duty_percent(self) -> float | None:
        if self.wakes_at is not None and time.monotonic() - self.started >= self.wakes_at:
            self.duty = 5.0
        return self.duty


async def test_the_car_sleeps_in_b_then_toggles_c_b_and_returns_on_the_5_percent_pwm():
    charger = ScriptedCharger()
    toggled = []
    await bcb_wake_up(charger, sleep_s=0.25, toggle_state_s=0.2,
                      on_toggle=lambda: toggled.append(True))()
    assert [m for m, _ in charger.moves] == ["B", "C", "B"] and toggled == [True]
    _, (_, c_at), (_, b_at) = charger.moves
    assert c_at >= 0.2 and 0.19 <= b_at - c_at < 0.35   # slept in B, then C held ~TP_EV_vald


async def test_a_charger_that_wakes_first_needs_no_toggle():
    charger = ScriptedCharger(wakes_at=0.05)
    await bcb_wake_up(charger, sleep_s=2.0)()
    assert [m for m, _ in charger.moves] == ["B"] and time.monotonic() - charger.started < 1.0


async def test_no_5_percent_pwm_after_the_toggle_is_a_wake_up_failure():
    charger = ScriptedCharger(answers_toggle=False)
    with pytest.raises(WakeUpFailed, match="no 5 % PWM within 0.2 s"):
        await bcb_wake_up(charger, sleep_s=0, toggle_state_s=0.01, pwm_within_s=0.2)()
    assert [m for m, _ in charger.moves] == ["B", "C", "B"]


async def test_signals_hook_sends_only_what_changed():
    charger = ScriptedCharger()
    hook = signals_hook(charger)
    for pilot, closed in (("B", False), ("B", False), ("C", False), ("C", True), ("B", False)):
        await hook(VehicleSignals(pilot=pilot, contactors_closed=closed))
    assert [m for m, _ in charger.moves] == ["B", "C", "B"]
    assert charger.contactors == [False, True, False]


async def test_board_line_plays_the_car_on_an_in_process_simulated_board():
    board = SimBoard()
    line = BoardLine(board)
    await line.set_pilot("B")
    await line.set_contactors(True)
    assert board.plant.pilot_raw.value == "B" and board.plant.ev_contactors_closed
    assert await line.duty_percent() is None          # no PWM until the EVSE drives it
    await board.close()
