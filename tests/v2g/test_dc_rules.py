from secc.v2g.dc import CableCheck, cable_check_voltage, clamp_setpoint
from secc.v2g.evse import (
    EvseLimits,
    EvseSnapshot,
    InsulationTestResult,
    Isolation,
    StartIsolationCheck,
)


def test_setpoint_is_clamped_to_every_limit():
    limits = EvseLimits(max_voltage=500, max_current=100, max_power=30_000)
    sp = clamp_setpoint(600, 150, limits)
    assert sp.voltage == 500 and sp.voltage_limited
    assert sp.current == 60 and sp.power_limited  # 30 kW / 500 V
    sp = clamp_setpoint(400, 50, limits, ev_max_current=40)
    assert sp.current == 40 and sp.current_limited and not sp.power_limited


def test_negative_targets_never_reach_the_power_module():
    sp = clamp_setpoint(-10, -5, EvseLimits())
    assert sp.voltage == 0 and sp.current == 0


def test_cable_check_voltage_and_result():
    limits = EvseLimits(max_voltage=920)
    assert cable_check_voltage(450, limits) == 500
    assert cable_check_voltage(800, limits) == 800


def test_only_the_insulation_test_this_cable_check_started_counts():
    limits = EvseLimits(max_voltage=920)
    check = CableCheck()
    stale = EvseSnapshot(isolation=Isolation.VALID)     # the monitor said valid before
    assert check.verdict(stale) is None                  # not started: nothing counts
    actions = check.start(450, limits)
    start = next(a for a in actions if isinstance(a, StartIsolationCheck))
    assert start.voltage == 500 and start.token == check.token
    assert check.verdict(stale) is None                  # a valid reading is not a test result
    other = CableCheck()
    other.start(450, limits)
    foreign = EvseSnapshot(insulation_test=InsulationTestResult(
        other.token, 500.0, complete=True, state=Isolation.VALID))
    assert check.verdict(foreign) is None                # another (earlier) test's result
    running = EvseSnapshot(insulation_test=InsulationTestResult(check.token, 500.0))
    assert check.verdict(running) is None
    low = EvseSnapshot(insulation_test=InsulationTestResult(
        check.token, 200.0, complete=True, state=Isolation.VALID))
    assert check.verdict(low) is None                    # not at the test voltage
    passed = EvseSnapshot(insulation_test=InsulationTestResult(
        check.token, 500.0, complete=True, state=Isolation.VALID))
    assert check.verdict(passed) is True
    fault = EvseSnapshot(insulation_test=InsulationTestResult(
        check.token, 500.0, complete=True, state=Isolation.FAULT))
    assert check.verdict(fault) is False
