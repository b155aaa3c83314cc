"""DC charging rules shared by DIN 70121, ISO 15118-2 and ISO 15118-20.

Pure functions of the car's request and the EVSE snapshot/limits; the protocol handlers wrap
their results in protocol messages.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from secc.v2g.evse import (
    Action,
    EvseLimits,
    EvseSnapshot,
    Isolation,
    SetContactors,
    StartIsolationCheck,
)


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


TEST_VOLTAGE_FRACTION = 0.95   # the board must report the test at >= this x the test voltage


class CableCheck:
    """One cable check's insulation test (DIN 70121, ISO 15118-2 and -20 share it).

    IEC 61851-23 (CC.4.1, 6.3.1.106) asks for an insulation test of the DC output at the cable
    check voltage before every charge: a reading the monitor took earlier (idle, at another
    voltage, in a previous session or before a renegotiation) proves nothing. So the verdict
    comes only from the test this object started: ``start`` picks a fresh random token and
    asks the board for a test at the cable check voltage; ``verdict`` accepts only a
    *completed* result under that token at (nearly) that voltage. The board runs the test
    (holds the voltage for its test time, has the monitor measure during the hold)."""

    def __init__(self) -> None:
        self.token: int | None = None
        self.voltage: float = 0.0

    @property
    def started(self) -> bool:
        return self.token is not None

    def start(self, ev_max_voltage: float | None, limits: EvseLimits,
              token: int | None = None) -> list[Action]:
        self.voltage = cable_check_voltage(ev_max_voltage, limits)
        self.token = token if token is not None else secrets.randbits(31) + 1
        return [SetContactors(True), StartIsolationCheck(self.voltage, self.token)]

    def verdict(self, evse: EvseSnapshot) -> bool | None:
        """True: passed; False: insulation fault; None: not (yet) a result of this test."""
        result = evse.insulation_test
        if (self.token is None or result is None or result.token != self.token
                or not result.complete):
            return None
        if result.state is Isolation.FAULT:
            return False
        if result.voltage < TEST_VOLTAGE_FRACTION * self.voltage:
            return None   # not a test at our voltage: keep waiting (the timer ends it)
        return result.state in (Isolation.VALID, Isolation.WARNING)


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

