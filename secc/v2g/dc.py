"""DC charging rules shared by DIN 70121, ISO 15118-2 and ISO 15118-20.

Pure functions of the car's request and the EVSE snapshot/limits; the protocol handlers wrap
their results in protocol messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from secc.v2g.evse import EvseLimits, EvseSnapshot, Isolation


@dataclass(frozen=True)
class Setpoint:
    voltage: float
    current: float
    current_limited: bool = False
    voltage_limited: bool = False
    power_limited: bool = False


def cable_check_voltage(ev_max_voltage: float | None, limits: EvseLimits) -> float:
    """IEC 61851-23: test at the lower of the EV's and the EVSE's max voltage (min 500 V)."""
    target = min(ev_max_voltage or limits.max_voltage, limits.max_voltage)
    return max(min(target, limits.max_voltage), min(500.0, limits.max_voltage))


def cable_check_finished(evse: EvseSnapshot) -> bool | None:
    """True: passed; False: failed (isolation fault); None: still measuring."""
    if evse.isolation in (Isolation.VALID, Isolation.WARNING):
        return True
    if evse.isolation is Isolation.FAULT:
        return False
    return None


def clamp_setpoint(target_voltage: float, target_current: float, limits: EvseLimits,
                   ev_max_voltage: float | None = None, ev_max_current: float | None = None,
                   ev_max_power: float | None = None) -> Setpoint:
    """The set-point the power module may follow for a car's target, within every limit."""
    voltage = max(0.0, min(target_voltage, limits.max_voltage,
                           ev_max_voltage if ev_max_voltage is not None else limits.max_voltage))
    voltage_limited = voltage < target_voltage
    current = max(0.0, min(target_current, limits.max_current,
                           ev_max_current if ev_max_current is not None else limits.max_current))
    current_limited = current < target_current
    max_power = min(limits.max_power, ev_max_power if ev_max_power is not None else limits.max_power)
    power_limited = False
    if voltage > 0 and voltage * current > max_power:
        current = max_power / voltage
        power_limited = True
    return Setpoint(voltage, current, current_limited, voltage_limited, power_limited)


def precharge_setpoint(target_voltage: float, target_current: float,
                       limits: EvseLimits) -> Setpoint:
    """Pre-charge: follow the car's voltage with at most 2 A (IEC 61851-23 CC.5)."""
    return clamp_setpoint(target_voltage, min(target_current, 2.0), limits)

