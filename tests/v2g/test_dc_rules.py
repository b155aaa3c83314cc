from secc.v2g.dc import cable_check_finished, cable_check_voltage, clamp_setpoint
from secc.v2g.evse import EvseLimits, EvseSnapshot, Isolation


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
    assert cable_check_finished(EvseSnapshot(isolation=Isolation.INVALID)) is None
    assert cable_check_finished(EvseSnapshot(isolation=Isolation.VALID)) is True
    assert cable_check_finished(EvseSnapshot(isolation=Isolation.FAULT)) is False
