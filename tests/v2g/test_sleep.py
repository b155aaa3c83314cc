"""The sleep of a paused session and its wake-up (secc.v2g.sleep), sans-I/O."""

from __future__ import annotations

from hal.board import PilotState
from secc.v2g.sleep import SleepMode, WakeUpCause

A, B, C, D, E = PilotState.A, PilotState.B, PilotState.C, PilotState.D, PilotState.E


def test_a_bcb_toggle_wakes_the_evse():
    sleep = SleepMode()
    sleep.enter(10.0)
    assert sleep.on_pilot(C, 11.0) is None and sleep.asleep        # S2 closed: not yet
    assert sleep.on_pilot(B, 11.3) is WakeUpCause.EV_TOGGLE
    assert not sleep.asleep and sleep.on_pilot(C, 12.0) is None    # woken once


def test_a_toggle_through_d_counts_too():
    sleep = SleepMode()
    sleep.enter(0.0)
    sleep.on_pilot(D, 1.0)
    assert sleep.on_pilot(B, 1.3) is WakeUpCause.EV_TOGGLE


def test_b_alone_does_not_wake_and_without_a_wake_up_time_the_evse_never_wakes_by_itself():
    sleep = SleepMode(wake_up_after=0.0)
    sleep.enter(0.0)
    assert sleep.on_pilot(B, 1.0) is None and sleep.asleep
    assert sleep.deadline is None and sleep.on_time(10 * 86400.0) is None and sleep.asleep


def test_the_evse_wakes_the_car_after_its_wake_up_time():
    sleep = SleepMode(wake_up_after=200.0)
    sleep.enter(5.0)
    assert sleep.deadline == 205.0
    assert sleep.on_time(204.9) is None and sleep.asleep
    assert sleep.on_time(205.0) is WakeUpCause.EVSE_TIMER
    assert not sleep.asleep and sleep.deadline is None


def test_the_car_waking_first_cancels_the_evse_wake_up():
    sleep = SleepMode(wake_up_after=200.0)
    sleep.enter(0.0)
    sleep.on_pilot(C, 50.0)
    assert sleep.on_pilot(B, 50.3) is WakeUpCause.EV_TOGGLE
    assert sleep.deadline is None and sleep.on_time(300.0) is None


def test_unplugging_or_a_fault_ends_the_sleep_without_a_wake_up():
    for state in (A, E):
        sleep = SleepMode(wake_up_after=200.0)
        sleep.enter(0.0)
        sleep.on_pilot(C, 1.0)
        assert sleep.on_pilot(state, 1.2) is None and not sleep.asleep
        assert sleep.on_pilot(B, 2.0) is None and sleep.on_time(300.0) is None


def test_nothing_happens_while_awake():
    sleep = SleepMode(wake_up_after=1.0)
    assert sleep.on_pilot(C, 0.0) is None and sleep.on_pilot(B, 0.3) is None
    assert sleep.on_time(100.0) is None


def test_a_toggle_with_the_oscillator_off_before_falling_asleep_wakes_at_once():
    sleep = SleepMode(wake_up_after=200.0)
    sleep.on_pilot(C, 1.0, oscillator_off=True)    # the pause's X1 is on, the event not yet in
    sleep.on_pilot(B, 1.3, oscillator_off=True)
    assert sleep.enter(1.4) is WakeUpCause.EV_TOGGLE
    assert not sleep.asleep and sleep.deadline is None
    assert sleep.enter(5.0) is None and sleep.asleep   # used once: the next pause sleeps


def test_a_toggle_under_way_when_falling_asleep_wakes_with_its_b():
    sleep = SleepMode()
    sleep.on_pilot(C, 1.0, oscillator_off=True)
    assert sleep.enter(1.1) is None and sleep.asleep
    assert sleep.on_pilot(B, 1.3) is WakeUpCause.EV_TOGGLE


def test_a_toggle_with_the_pwm_on_or_an_unplug_in_between_does_not_count():
    sleep = SleepMode()
    sleep.on_pilot(C, 1.0, oscillator_off=False)    # charging: PowerDelivery(Stop) C -> B
    sleep.on_pilot(B, 1.3, oscillator_off=False)
    assert sleep.enter(2.0) is None and sleep.asleep
    sleep.leave()
    sleep.on_pilot(C, 3.0, oscillator_off=True)     # closed with the oscillator off, but
    sleep.on_pilot(B, 3.2, oscillator_off=False)    # the PWM was on again at its end
    assert sleep.enter(4.0) is None and sleep.asleep
    sleep.leave()
    for state in (C, A, B):                         # unplugged in between
        sleep.on_pilot(state, 5.0, oscillator_off=True)
    assert sleep.enter(6.0) is None and sleep.asleep
