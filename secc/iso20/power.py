"""Power set-points of -20 charge loops: DC scheduled/dynamic (with BPT discharge) and AC.

Sign convention inside pysecc: positive current/power charges the car, negative discharges it
(``SetDcOutput(current<0)``). What travels on the wire for *limits* is a quirk (see
``secc.iso20.session.QUIRK_BPT_DISCHARGE_NEGATIVE``); these functions only see magnitudes.
"""

from __future__ import annotations

from dataclasses import dataclass

from secc.v2g.dc import Setpoint, clamp_setpoint
from secc.v2g.evse import EvseLimits


@dataclass(frozen=True)
class BptLimits:
    """Discharge ratings of a bidirectional EVSE (magnitudes, W and A)."""

    max_discharge_power: float = 11_000.0
    min_discharge_power: float = 100.0
    max_discharge_current: float = 30.0
    min_discharge_current: float = 1.0


@dataclass(frozen=True)
class EvLimits:
    """What the car announced in ChargeParameterDiscovery (magnitudes; None: not given)."""

    max_voltage: float | None = None
    min_voltage: float | None = None
    max_charge_current: float | None = None
    max_charge_power: float | None = None
    max_discharge_current: float | None = None
    max_discharge_power: float | None = None


def _min(*values: float | None) -> float:
    return min(v for v in values if v is not None)


def dc_scheduled_setpoint(target_voltage: float, target_current: float, limits: EvseLimits,
                          bpt: BptLimits | None, ev: EvLimits) -> Setpoint:
    """The car's target within every limit; a negative target discharges (BPT only)."""
    if target_current >= 0 or bpt is None:
        return clamp_setpoint(target_voltage, target_current, limits, ev.max_voltage,
                              ev.max_charge_current, ev.max_charge_power)
    voltage = max(0.0, min(target_voltage, limits.max_voltage,
                           ev.max_voltage if ev.max_voltage is not None else limits.max_voltage))
    max_i = _min(bpt.max_discharge_current, ev.max_discharge_current)
    current = max(target_current, -max_i)
    current_limited = current > target_current
    max_p = _min(bpt.max_discharge_power, ev.max_discharge_power)
    power_limited = False
    if voltage > 0 and voltage * -current > max_p:
        current = -max_p / voltage
        power_limited = True
    return Setpoint(voltage, current, current_limited, voltage < target_voltage, power_limited)


def dc_dynamic_setpoint(present_voltage: float, limits: EvseLimits, bpt: BptLimits | None,
                        ev: EvLimits, power_request: float | None,
                        energy_needed: bool = True) -> Setpoint:
    """Dynamic mode: the EVSE chooses the power (``power_request`` W, default: as much as
    allowed), bounded by the car's and our limits; the voltage limit is the car's maximum."""
    voltage = _min(limits.max_voltage, ev.max_voltage)
    max_charge_p = _min(limits.max_power, ev.max_charge_power)
    max_discharge_p = _min(bpt.max_discharge_power, ev.max_discharge_power) if bpt else 0.0
    wanted = max_charge_p if power_request is None else power_request
    if not energy_needed and wanted > 0:
        wanted = 0.0
    power = max(-max_discharge_p, min(wanted, max_charge_p))
    power_limited = power != wanted
    reference_v = max(present_voltage, limits.min_voltage, 1.0)
    current = power / reference_v
    max_charge_i = _min(limits.max_current, ev.max_charge_current)
    max_discharge_i = _min(bpt.max_discharge_current, ev.max_discharge_current) if bpt else 0.0
    limited = current > max_charge_i or current < -max_discharge_i
    current = max(-max_discharge_i, min(current, max_charge_i))
    return Setpoint(voltage, current, limited, False, power_limited)


def ac_target_power(limits_max_power: float, bpt: BptLimits | None, ev: EvLimits,
                    power_request: float | None) -> float:
    """AC dynamic mode: active power target (W, negative discharges)."""
    max_charge = _min(limits_max_power, ev.max_charge_power)
    max_discharge = _min(bpt.max_discharge_power, ev.max_discharge_power) if bpt else 0.0
    wanted = max_charge if power_request is None else power_request
    return max(-max_discharge, min(wanted, max_charge))
