"""IEC 61851-1 pilot formulas and the debouncer (pure logic, virtual time)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hal.pilot import (
    PilotDebouncer,
    PilotSignal,
    PilotSignalKind,
    PilotState,
    current_for_duty,
    duty_for_current,
)


@pytest.mark.parametrize(("amps", "duty"), [
    (6, 10.0), (10, 16.667), (16, 26.667), (32, 53.333), (51, 85.0), (63, 89.2), (80, 96.0),
])
def test_nominal_duty_follows_table_a8(amps, duty):
    assert duty_for_current(amps) == pytest.approx(duty, abs=1e-3)


@pytest.mark.parametrize("amps", [0, 5.9, 80.1, -1])
def test_currents_outside_6_to_80_amps_have_no_duty(amps):
    with pytest.raises(ValueError):
        duty_for_current(amps)


@given(st.floats(min_value=6.0, max_value=80.0))
def test_ev_never_reads_more_current_than_offered(amps):
    # Table A.8's two formulas meet at 85 %: 51..52.5 A read back slightly lower (safe side).
    read_back = current_for_duty(duty_for_current(amps))
    assert amps - 1.5 <= read_back <= amps + 0.01
    if not 51 < amps <= 52.5:
        assert read_back == pytest.approx(amps, abs=0.01)


@pytest.mark.parametrize("duty", [0, 2.9, 5.0, 7.0, 97.5, 100])
def test_duties_outside_basic_charging_allow_no_current(duty):
    assert current_for_duty(duty) is None


def test_eight_to_ten_percent_allows_six_amps():
    assert current_for_duty(9.0) == 6.0


def test_hlc_signal_is_five_percent_and_rejects_out_of_band_duty():
    assert PilotSignal.hlc() == PilotSignal(PilotSignalKind.PWM, 5.0)
    assert PilotSignal.hlc().duty_permille == 50
    with pytest.raises(ValueError):
        PilotSignal.hlc(10.0)


def test_permille_round_trip_covers_x1_and_state_f():
    assert PilotSignal.from_permille(1000) == PilotSignal.x1()
    assert PilotSignal.from_permille(0) == PilotSignal.state_f()
    assert PilotSignal.from_permille(PilotSignal.nominal(16).duty_permille).duty_percent == 26.7


def test_debouncer_reports_state_only_after_it_is_stable():
    deb = PilotDebouncer(0.05)
    assert deb.sample(PilotState.B, 1.00) is None
    assert deb.deadline() == pytest.approx(1.05)
    assert deb.poll(1.049) is None
    assert deb.poll(1.05) == (PilotState.A, PilotState.B)
    assert deb.state is PilotState.B and deb.deadline() is None


def test_debouncer_ignores_glitch_shorter_than_debounce():
    deb = PilotDebouncer(0.05)
    deb.sample(PilotState.B, 0.0)
    deb.poll(0.1)
    assert deb.sample(PilotState.A, 0.20) is None   # glitch to A ...
    assert deb.sample(PilotState.B, 0.22) is None   # ... back to B before 50 ms
    assert deb.poll(1.0) is None
    assert deb.state is PilotState.B


def test_debouncer_restarts_timer_when_candidate_changes():
    deb = PilotDebouncer(0.05)
    deb.sample(PilotState.B, 0.0)
    deb.sample(PilotState.C, 0.04)                  # B never stable for 50 ms
    assert deb.poll(0.06) is None
    assert deb.poll(0.09) == (PilotState.A, PilotState.C)
