"""The CSMS's charging limit for this EVSE (bus ``charging_limit``), as the session cores use it.

The OCPP bridge computes the composite schedule (all charging profiles combined) and publishes
it; ``ChargingLimit.from_bus`` turns the payload into periods on the wall clock. At the edge,
before each request, the session driver calls ``offer(rated, wall_now, ac)`` and hands the
result to the core (``SessionCore.set_charging_limit``): the EVSE limits lowered to what the
CSMS allows now, the PMax schedule for the next 24 h (ISO-2 SAScheduleList, -20
ScheduleExchange) and the revision (a new one mid-session means renegotiate).

Amps are per phase on the grid side: watts = A x nominal voltage x phases (the period's
``number_phases``, else the EVSE's). Pure functions; nothing here reads a clock.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

from secc.v2g.evse import EvseLimits

DAY = 86400


@dataclass(frozen=True)
class LimitPeriod:
    start: float                 # epoch seconds
    limit: float                 # in the schedule's unit
    number_phases: int | None = None


@dataclass(frozen=True)
class ChargingLimit:
    revision: int
    unit: str                    # "A" or "W"
    periods: tuple[LimitPeriod, ...]
    end: float                   # epoch seconds: beyond it only the EVSE rating applies
    reason: str = ""

    @classmethod
    def from_bus(cls, payload: dict[str, Any]) -> ChargingLimit:
        """From a validated ``charging_limit`` payload."""
        start = dt.datetime.fromisoformat(payload["schedule_start"].replace(
            "Z", "+00:00")).timestamp()
        periods = tuple(LimitPeriod(start + p["start"], float(p["limit"]), p.get("number_phases"))
                        for p in sorted(payload["periods"], key=lambda p: p["start"]))
        return cls(int(payload["revision"]), payload["charging_rate_unit"], periods,
                   start + int(payload["duration"]), payload.get("reason", ""))

    def watts(self, period: LimitPeriod, rated: EvseLimits) -> float:
        if self.unit == "W":
            return period.limit
        return period.limit * rated.ac_nominal_voltage * (period.number_phases or rated.ac_phases)

    def period_at(self, when: float) -> LimitPeriod | None:
        if when >= self.end:
            return None
        current = None
        for period in self.periods:
            if period.start <= when:
                current = period
            else:
                break
        return current


@dataclass(frozen=True)
class Offer:
    """What the core may offer the car now."""

    limits: EvseLimits                            # rated limits lowered to the CSMS's limit
    schedule: tuple[tuple[int, float], ...]       # (seconds from now, PMax W), first at 0
    revision: int


def rated_power(rated: EvseLimits, ac: bool) -> float:
    if ac:
        return min(rated.ac_nominal_voltage * rated.ac_max_current * rated.ac_phases,
                   rated.max_power)
    return rated.max_power


def lowered(rated: EvseLimits, limit: ChargingLimit, period: LimitPeriod | None,
            ac: bool, dc_voltage: float = 0.0) -> EvseLimits:
    """``rated`` with max power/current no higher than ``period`` allows. DC: the current
    limit follows the power limit at ``dc_voltage`` (the present output voltage; cars that
    read only EVSEMaximumCurrentLimit, as many DIN cars do, then see the lower limit too)."""
    if period is None:
        return rated
    watts = min(limit.watts(period, rated), rated_power(rated, ac))
    phases = period.number_phases or rated.ac_phases
    ac_current = (period.limit if limit.unit == "A"
                  else watts / (rated.ac_nominal_voltage * phases))
    changes: dict[str, float] = {"max_power": min(rated.max_power, watts),
                                 "ac_max_current": min(rated.ac_max_current, ac_current)}
    if not ac:
        volts = max(dc_voltage, rated.min_voltage, 1.0)
        changes["max_current"] = min(rated.max_current, watts / volts)
    return dataclasses.replace(rated, **changes)


def offer(rated: EvseLimits, limit: ChargingLimit | None, wall_now: float, ac: bool,
          dc_voltage: float = 0.0, horizon: float = DAY, max_entries: int = 24) -> Offer:
    """The limits in force at ``wall_now`` and the PMax schedule from then on."""
    full = rated_power(rated, ac)
    if limit is None:
        return Offer(rated, ((0, full),), 0)
    entries: list[tuple[int, float]] = []

    def add(offset: float, watts: float) -> None:
        seconds = max(0, int(offset))
        if entries and entries[-1][1] == watts:
            return
        if entries and entries[-1][0] == seconds:
            entries[-1] = (seconds, watts)
        else:
            entries.append((seconds, watts))

    current = limit.period_at(wall_now)
    add(0, min(full, limit.watts(current, rated)) if current else full)
    for period in limit.periods:
        if wall_now < period.start < min(limit.end, wall_now + horizon):
            add(period.start - wall_now, min(full, limit.watts(period, rated)))
    # beyond the limit's end the last period goes on in the offer: the bridge republishes the
    # limit long before it ends, and promising more than we know would be a renegotiation later
    if len(entries) > max_entries:
        # keep the car's table size: merge the tail into its lowest value (never more power)
        head, tail = entries[:max_entries - 1], entries[max_entries - 1:]
        entries = head + [(tail[0][0], min(w for _, w in tail))]
    return Offer(lowered(rated, limit, current, ac, dc_voltage), tuple(entries), limit.revision)


__all__ = ["ChargingLimit", "LimitPeriod", "Offer", "lowered", "offer", "rated_power"]
