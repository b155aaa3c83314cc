"""A scriptable traction battery for the EV simulator.

Just enough physics for believable messages: a pack voltage that rises with the state of
charge, a charge current limited by the pack's current and power limits and tapered above
the bulk SoC (as real cars do), energy that integrates ``voltage x current x time``. The
session ends at the target SoC or after ``max_iterations`` charge-loop iterations, whichever
comes first, so tests can script short sessions without simulating hours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class Battery:
    """The simulated vehicle's battery and on-board charger limits (SI units, SoC in %)."""

    capacity_wh: float = 60_000.0
    soc: float = 30.0                 # present state of charge, %
    target_soc: float = 80.0          # charging stops here
    bulk_soc: float = 80.0            # the current tapers above this
    # DC limits
    max_voltage: float = 450.0
    max_current: float = 200.0
    max_power: float = 150_000.0
    # open-circuit voltage curve: empty -> full (a simple, monotone curve)
    empty_voltage: float = 330.0
    full_voltage: float = 420.0
    # AC on-board charger
    ac_max_current: float = 32.0      # per phase
    ac_min_current: float = 6.0
    ac_phases: int = 3
    ac_nominal_voltage: float = 230.0
    # end the charge loop after this many iterations even below target_soc (None: never)
    max_iterations: int | None = None
    energy_delivered_wh: float = field(default=0.0)

    def __post_init__(self) -> None:
        if not 0 <= self.soc <= 100 or not 0 <= self.target_soc <= 100:
            raise ValueError("SoC values are percentages (0..100)")
        if self.capacity_wh <= 0:
            raise ValueError("capacity must be positive")
        self.soc_start = self.soc

    # --- what the car asks for ------------------------------------------------------------------
    def voltage(self) -> float:
        """Pack voltage at the present SoC: steep at both ends, flat in the middle (a cheap
        stand-in for a Li-ion OCV curve), never above ``max_voltage``."""
        x = min(max(self.soc / 100.0, 0.0), 1.0)
        shape = x + 0.15 * math.sin(2 * math.pi * x)  # monotone: slope 1 +- 0.94
        return min(self.empty_voltage + (self.full_voltage - self.empty_voltage) * shape,
                   self.max_voltage)

    def target_current(self) -> float:
        """DC current request: the lower of the current and power limits, tapered linearly
        from the bulk SoC down to 10 % of it at the target SoC; 0 once the target is reached."""
        if self.soc >= self.target_soc:
            return 0.0
        limit = min(self.max_current, self.max_power / max(self.voltage(), 1.0))
        if self.soc > self.bulk_soc and self.target_soc > self.bulk_soc:
            remaining = (self.target_soc - self.soc) / (self.target_soc - self.bulk_soc)
            limit *= 0.1 + 0.9 * remaining
        return round(limit, 1)

    def energy_request_wh(self) -> float:
        return max(0.0, (self.target_soc - self.soc) / 100.0 * self.capacity_wh)

    def remaining_seconds(self, to_soc: float) -> int:
        """Rough time to reach ``to_soc`` at the present power request."""
        power = self.voltage() * max(self.target_current(), 1.0)
        energy = max(0.0, (to_soc - self.soc) / 100.0 * self.capacity_wh)
        return int(energy / power * 3600)

    # --- what happens when energy flows ---------------------------------------------------------
    def charge(self, power_w: float, seconds: float) -> float:
        """Take ``power_w`` for ``seconds``; returns the Wh stored. Negative input is ignored
        (a charger that reports nonsense must not drain the simulated car)."""
        if power_w <= 0 or seconds <= 0:
            return 0.0
        wh = power_w * seconds / 3600.0
        wh = min(wh, max(0.0, (100.0 - self.soc) / 100.0 * self.capacity_wh))
        self.soc = min(100.0, self.soc + wh / self.capacity_wh * 100.0)
        self.energy_delivered_wh += wh
        return wh

    def charging_complete(self, iterations: int) -> bool:
        return self.soc >= self.target_soc or (
            self.max_iterations is not None and iterations >= self.max_iterations)

    def bulk_complete(self) -> bool:
        return self.soc >= self.bulk_soc
