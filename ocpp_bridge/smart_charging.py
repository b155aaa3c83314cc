"""OCPP 2.0.1 Smart Charging (functional block K), sans-I/O.

``ProfileStore`` holds the charging profiles the CSMS installed (K01 SetChargingProfile, K10
ClearChargingProfile, K09 GetChargingProfiles) and computes the composite schedule of an EVSE
(K08 GetCompositeSchedule). Nothing here touches a socket, a clock or a disk: the caller
passes ``now`` (epoch seconds) and which transaction runs on which EVSE, and saves
``to_json()`` wherever it likes (``ocpp_bridge/smart_charging_handlers.py`` keeps it in the
bridge's storage directory so profiles survive a restart).

Profiles are kept as the CSMS sent them (camelCase JSON, already validated against the OCPP
schema by the ``ocpp`` package); ``check_profile`` adds the rules the schema cannot express
and answers with an OCPP ``statusInfo`` reason code and a sentence for the field engineer.

How the composite schedule is built (our reading of K08, written down in docs/smart_charging.md):

* For each purpose, at every instant the profile with the highest ``stackLevel`` whose
  validity (``validFrom``/``validTo``) and schedule (start, ``duration``, recurrence) cover
  that instant is the one in effect. A profile for the EVSE itself beats one
  installed for EVSE 0 at the same stack level.
* ``TxProfile`` (only for the transaction running on the EVSE) overrides
  ``TxDefaultProfile`` wherever it is in effect.
* ``ChargingStationMaxProfile`` (EVSE 0 only) caps the sum of all EVSEs; we share it equally
  between the EVSEs that have a transaction (all EVSEs when none has), so no combination of
  EVSE limits can exceed it.
* The result is the minimum of those limits and the EVSE's rating; amps and watts are
  converted with the nominal voltage and the number of phases.
* A profile uses its first ``chargingSchedule`` for the composite schedule (the other two are
  alternatives offered to an ISO 15118 car).
"""

from __future__ import annotations

import copy
import datetime as dt
import enum
import json
import math
from dataclasses import dataclass
from typing import Any


class Purpose(enum.Enum):
    STATION_MAX = "ChargingStationMaxProfile"
    TX_DEFAULT = "TxDefaultProfile"
    TX = "TxProfile"
    EXTERNAL = "ChargingStationExternalConstraints"


class Kind(enum.Enum):
    ABSOLUTE = "Absolute"
    RECURRING = "Recurring"
    RELATIVE = "Relative"


class RateUnit(enum.Enum):
    AMPS = "A"
    WATTS = "W"


RECURRENCE_SECONDS = {"Daily": 86400, "Weekly": 7 * 86400}
MAX_COMPOSITE_SECONDS = 31 * 86400      # GetCompositeSchedule longer than this is refused


@dataclass(frozen=True)
class Limits:
    """What the station can configure and what an EVSE can deliver (bridge configuration and
    the SmartChargingCtrlr device-model variables)."""

    max_stack_level: int = 8                       # SmartChargingCtrlr.ProfileStackLevel
    periods_per_schedule: int = 24                 # SmartChargingCtrlr.PeriodsPerSchedule
    max_profiles: int = 64                         # SmartChargingCtrlr.Entries (installed)
    rate_units: tuple[RateUnit, ...] = (RateUnit.AMPS, RateUnit.WATTS)
    evse_max_power_w: float = 350_000.0
    evse_max_current_a: float = 500.0
    nominal_voltage: float = 230.0                 # for A <-> W (AC: per phase)
    phases: int = 3


class ProfileRejected(ValueError):
    """SetChargingProfile must be answered Rejected: ``reason`` is the OCPP statusInfo
    reasonCode (<= 20 characters), ``str()`` the detail for additionalInfo and the log."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(detail)


def parse_time(text: str) -> float:
    """RFC 3339 (what OCPP's dateTime is) -> epoch seconds."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def format_time(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).isoformat(
        timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Installed:
    """One stored profile and the EVSE it was installed for (0: the whole station)."""

    evse_id: int
    profile: dict[str, Any]

    @property
    def id(self) -> int:
        return int(self.profile["id"])

    @property
    def purpose(self) -> Purpose:
        return Purpose(self.profile["chargingProfilePurpose"])

    @property
    def stack_level(self) -> int:
        return int(self.profile["stackLevel"])

    @property
    def kind(self) -> Kind:
        return Kind(self.profile["chargingProfileKind"])

    @property
    def schedule(self) -> dict[str, Any]:
        return self.profile["chargingSchedule"][0]

    @property
    def transaction_id(self) -> str | None:
        return self.profile.get("transactionId")

    def valid_window(self) -> tuple[float, float]:
        start = parse_time(self.profile["validFrom"]) if "validFrom" in self.profile else -math.inf
        end = parse_time(self.profile["validTo"]) if "validTo" in self.profile else math.inf
        return start, end


@dataclass(frozen=True)
class Period:
    """One composite period: ``start`` seconds after the schedule start, until the next."""

    start: int
    limit: float
    number_phases: int | None = None

    def to_ocpp(self) -> dict[str, Any]:
        out: dict[str, Any] = {"startPeriod": self.start, "limit": round(self.limit, 1)}
        if self.number_phases is not None:
            out["numberPhases"] = self.number_phases
        return out


@dataclass(frozen=True)
class CompositeSchedule:
    evse_id: int
    start: float                 # epoch seconds
    duration: int
    unit: RateUnit
    periods: tuple[Period, ...]

    def to_ocpp(self) -> dict[str, Any]:
        return {"evseId": self.evse_id, "duration": self.duration,
                "scheduleStart": format_time(self.start), "chargingRateUnit": self.unit.value,
                "chargingSchedulePeriod": [p.to_ocpp() for p in self.periods]}

    def limit_at(self, when: float) -> float | None:
        offset = when - self.start
        if offset < 0 or offset >= self.duration:
            return None
        current = None
        for period in self.periods:
            if period.start <= offset:
                current = period.limit
        return current


@dataclass(frozen=True)
class Transaction:
    """The transaction running on an EVSE: its OCPP id and when it started (epoch s)."""

    transaction_id: str
    started: float


# --- validation -------------------------------------------------------------------------------
def check_profile(evse_id: int, profile: dict[str, Any], limits: Limits,
                  transaction: Transaction | None) -> None:
    """Raise ProfileRejected when OCPP 2.0.1 (K01) says the profile must be rejected.

    ``transaction``: the one running on ``evse_id`` (TxProfile needs it)."""
    try:
        purpose = Purpose(profile["chargingProfilePurpose"])
        kind = Kind(profile["chargingProfileKind"])
    except (KeyError, ValueError) as exc:
        raise ProfileRejected("InvalidValue", f"unknown purpose or kind: {exc}") from None
    if purpose is Purpose.EXTERNAL:
        raise ProfileRejected("InvalidProfile", "ChargingStationExternalConstraints are set by "
                              "the station's own energy management, not by the CSMS")
    if purpose is Purpose.STATION_MAX and evse_id != 0:
        raise ProfileRejected("InvalidProfile",
                              "ChargingStationMaxProfile is only allowed for evseId 0")
    if purpose is Purpose.TX:
        if evse_id == 0:
            raise ProfileRejected("InvalidProfile", "TxProfile needs an EVSE, not evseId 0 "
                                  "")
        if not profile.get("transactionId"):
            raise ProfileRejected("InvalidProfile", "TxProfile without transactionId")
        if transaction is None or transaction.transaction_id != profile["transactionId"]:
            raise ProfileRejected("TxNotFound", f"transaction {profile['transactionId']} is not "
                                  f"running on EVSE {evse_id}")
    elif profile.get("transactionId"):
        raise ProfileRejected("InvalidProfile", f"transactionId is only allowed in a TxProfile, "
                              f"not in a {purpose.value}")
    level = int(profile["stackLevel"])
    if not 0 <= level <= limits.max_stack_level:
        raise ProfileRejected("InvalidStackLevel", f"stackLevel {level} outside 0.."
                              f"{limits.max_stack_level} (SmartChargingCtrlr.ProfileStackLevel)")
    if kind is Kind.RECURRING and profile.get("recurrencyKind") not in RECURRENCE_SECONDS:
        raise ProfileRejected("InvalidProfile", "a Recurring profile needs recurrencyKind "
                              "Daily or Weekly")
    valid_from, valid_to = Installed(evse_id, profile).valid_window()
    if valid_to <= valid_from:
        raise ProfileRejected("InvalidValue", "validTo is not after validFrom")
    schedules = profile.get("chargingSchedule") or []
    if not schedules:
        raise ProfileRejected("InvalidSchedule", "no chargingSchedule")
    if len(schedules) > 1 and purpose is not Purpose.TX:
        raise ProfileRejected("InvalidSchedule", "more than one chargingSchedule is only allowed "
                              "in a TxProfile (ISO 15118 schedule alternatives)")
    for schedule in schedules:
        _check_schedule(schedule, kind, limits)


def _check_schedule(schedule: dict[str, Any], kind: Kind, limits: Limits) -> None:
    sid = schedule.get("id")
    try:
        unit = RateUnit(schedule["chargingRateUnit"])
    except (KeyError, ValueError):
        raise ProfileRejected("InvalidValue", f"schedule {sid}: chargingRateUnit must be A or "
                              "W") from None
    if unit not in limits.rate_units:
        raise ProfileRejected("UnsupportedRateUnit", f"schedule {sid}: rate unit {unit.value} "
                              "not in SmartChargingCtrlr.RateUnit")
    if kind is Kind.RELATIVE and "startSchedule" in schedule:
        raise ProfileRejected("InvalidSchedule", f"schedule {sid}: a Relative profile must not "
                              "have startSchedule")
    if kind is not Kind.RELATIVE and "startSchedule" not in schedule:
        raise ProfileRejected("InvalidSchedule", f"schedule {sid}: an {kind.value} profile needs "
                              "startSchedule")
    if "duration" in schedule and int(schedule["duration"]) <= 0:
        raise ProfileRejected("InvalidValue", f"schedule {sid}: duration must be positive")
    periods = schedule.get("chargingSchedulePeriod") or []
    if not periods:
        raise ProfileRejected("InvalidSchedule", f"schedule {sid}: no chargingSchedulePeriod")
    if len(periods) > limits.periods_per_schedule:
        raise ProfileRejected("InvalidSchedule", f"schedule {sid}: {len(periods)} periods, at "
                              f"most {limits.periods_per_schedule} "
                              "(SmartChargingCtrlr.PeriodsPerSchedule)")
    starts = [int(p["startPeriod"]) for p in periods]
    if starts[0] != 0:
        raise ProfileRejected("InvalidSchedule", f"schedule {sid}: the first period must start "
                              "at 0")
    if any(b <= a for a, b in zip(starts, starts[1:])):
        raise ProfileRejected("InvalidSchedule", f"schedule {sid}: startPeriod values must "
                              "increase strictly")
    maximum = limits.evse_max_current_a if unit is RateUnit.AMPS else limits.evse_max_power_w
    for period in periods:
        limit = float(period["limit"])
        if not math.isfinite(limit) or limit < 0:
            raise ProfileRejected("InvalidValue", f"schedule {sid}: limit {limit} is negative")
        if limit > 100 * maximum:  # nonsense, not a cap: probably W sent as A or mW sent as W
            raise ProfileRejected("InvalidValue", f"schedule {sid}: limit {limit} {unit.value} "
                                  f"is implausible for an EVSE rated {maximum} {unit.value}")
        phases = period.get("numberPhases")
        if phases is not None and not 1 <= int(phases) <= limits.phases:
            raise ProfileRejected("InvalidValue", f"schedule {sid}: numberPhases {phases} but "
                                  f"the EVSE has {limits.phases}")
        if period.get("phaseToUse") is not None and phases != 1:
            raise ProfileRejected("InvalidValue", f"schedule {sid}: phaseToUse needs "
                                  "numberPhases 1")


# --- evaluation -------------------------------------------------------------------------------
def _schedule_start(item: Installed, now: float, transaction: Transaction | None) -> float:
    """Where period 0 of the (first) instance of the schedule begins."""
    if item.kind is Kind.RELATIVE:
        return transaction.started if transaction is not None else now
    return parse_time(item.schedule["startSchedule"])


def _instance_start(item: Installed, when: float, base: float) -> float | None:
    """Start of the schedule instance covering ``when`` (recurring profiles repeat)."""
    if item.kind is not Kind.RECURRING:
        return base if when >= base else None
    period = RECURRENCE_SECONDS[item.profile["recurrencyKind"]]
    if when < base:
        return None
    return base + math.floor((when - base) / period) * period


def entry_at(item: Installed, when: float, now: float,
             transaction: Transaction | None) -> tuple[float, RateUnit, int | None] | None:
    """(limit, unit, phases) the profile sets at ``when``, or None when it is not in effect."""
    valid_from, valid_to = item.valid_window()
    if not valid_from <= when < valid_to:
        return None
    start = _instance_start(item, when, _schedule_start(item, now, transaction))
    if start is None:
        return None
    offset = when - start
    schedule = item.schedule
    if "duration" in schedule and offset >= int(schedule["duration"]):
        return None
    chosen = None
    for period in schedule["chargingSchedulePeriod"]:
        if int(period["startPeriod"]) <= offset:
            chosen = period
    if chosen is None:
        return None
    phases = chosen.get("numberPhases")
    return float(chosen["limit"]), RateUnit(schedule["chargingRateUnit"]), \
        (int(phases) if phases is not None else None)


def _boundaries(item: Installed, begin: float, end: float, now: float,
                transaction: Transaction | None) -> set[float]:
    """Instants in [begin, end) where the profile's limit may change."""
    out: set[float] = set()
    valid_from, valid_to = item.valid_window()
    out.update(t for t in (valid_from, valid_to) if begin <= t < end)
    base = _schedule_start(item, now, transaction)
    schedule = item.schedule
    offsets = [int(p["startPeriod"]) for p in schedule["chargingSchedulePeriod"]]
    if "duration" in schedule:
        offsets.append(int(schedule["duration"]))
    if item.kind is Kind.RECURRING:
        step = RECURRENCE_SECONDS[item.profile["recurrencyKind"]]
        first = base + max(0, math.floor((begin - base) / step) - 1) * step
        starts = []
        instance = first
        while instance < end:
            starts.append(instance)
            instance += step
    else:
        starts = [base]
    for instance in starts:
        out.update(t for t in (instance + o for o in offsets) if begin <= t < end)
    return out


def _to_unit(limit: float, unit: RateUnit, phases: int | None, wanted: RateUnit,
             limits: Limits) -> float:
    if unit is wanted:
        return limit
    factor = limits.nominal_voltage * (phases or limits.phases)
    return limit * factor if wanted is RateUnit.WATTS else limit / factor


class ProfileStore:
    """The installed profiles of one charging station (all EVSEs)."""

    def __init__(self, limits: Limits | None = None,
                 profiles: list[Installed] | None = None) -> None:
        self.limits = limits or Limits()
        self.profiles: list[Installed] = list(profiles or [])

    # --- K01 ---------------------------------------------------------------------------------
    def install(self, evse_id: int, profile: dict[str, Any],
                transaction: Transaction | None) -> Installed:
        """SetChargingProfile: validate, then replace a profile with the same id or add it.
        Raises ProfileRejected; the store is unchanged then."""
        check_profile(evse_id, profile, self.limits, transaction)
        new = Installed(evse_id, copy.deepcopy(profile))
        others = [p for p in self.profiles if p.id != new.id]
        for other in others:
            if self._conflicts(new, other):
                raise ProfileRejected("DuplicateProfile", (
                    f"profile {other.id} already has stackLevel {new.stack_level} and purpose "
                    f"{new.purpose.value} on EVSE {evse_id} with an overlapping validity "
                    "(K01); clear it or use another stackLevel"))
        if len(others) >= self.limits.max_profiles:
            raise ProfileRejected("MaxProfiles", f"{len(others)} profiles installed, at most "
                                  f"{self.limits.max_profiles} (SmartChargingCtrlr.Entries)")
        self.profiles = others + [new]
        return new

    @staticmethod
    def _conflicts(new: Installed, other: Installed) -> bool:
        if (other.evse_id, other.purpose, other.stack_level) != \
                (new.evse_id, new.purpose, new.stack_level):
            return False
        if new.purpose is Purpose.TX and other.transaction_id != new.transaction_id:
            return False
        a_from, a_to = new.valid_window()
        b_from, b_to = other.valid_window()
        return a_from < b_to and b_from < a_to

    # --- K10 ---------------------------------------------------------------------------------
    def clear(self, profile_id: int | None = None, evse_id: int | None = None,
              purpose: Purpose | None = None, stack_level: int | None = None) -> list[Installed]:
        """ClearChargingProfile: remove what matches every given criterion; returns them."""
        def matches(p: Installed) -> bool:
            if profile_id is not None:
                return p.id == profile_id
            return ((evse_id is None or p.evse_id == evse_id)
                    and (purpose is None or p.purpose is purpose)
                    and (stack_level is None or p.stack_level == stack_level))

        removed = [p for p in self.profiles if matches(p)]
        self.profiles = [p for p in self.profiles if not matches(p)]
        return removed

    def transaction_ended(self, transaction_id: str) -> list[Installed]:
        """A TxProfile lives as long as its transaction (K01)."""
        removed = [p for p in self.profiles if p.purpose is Purpose.TX
                   and p.transaction_id == transaction_id]
        self.profiles = [p for p in self.profiles if p not in removed]
        return removed

    def prune(self, now: float) -> list[Installed]:
        """Drop profiles whose validTo has passed."""
        removed = [p for p in self.profiles if p.valid_window()[1] <= now]
        self.profiles = [p for p in self.profiles if p not in removed]
        return removed

    # --- K09 ---------------------------------------------------------------------------------
    def select(self, evse_id: int | None = None, purpose: Purpose | None = None,
               stack_level: int | None = None, ids: list[int] | None = None) -> list[Installed]:
        return [p for p in self.profiles
                if (evse_id is None or p.evse_id == evse_id)
                and (purpose is None or p.purpose is purpose)
                and (stack_level is None or p.stack_level == stack_level)
                and (not ids or p.id in ids)]

    # --- K08 ---------------------------------------------------------------------------------
    def composite(self, evse_id: int, start: float, duration: int, unit: RateUnit | None,
                  transactions: dict[int, Transaction], now: float | None = None
                  ) -> CompositeSchedule:
        """The limit in force on ``evse_id`` from ``start`` for ``duration`` seconds.

        ``transactions``: EVSE id -> the transaction running there. EVSE 0 gives the station
        limit (ChargingStationMaxProfile alone). Periods without any profile carry the EVSE
        rating, so the schedule always says what the EVSE may deliver."""
        if not 0 < duration <= MAX_COMPOSITE_SECONDS:
            raise ValueError(f"duration {duration} s outside 1..{MAX_COMPOSITE_SECONDS}")
        now = start if now is None else now
        wanted = unit or self._default_unit(evse_id)
        end = start + duration
        transaction = transactions.get(evse_id)
        relevant = self._relevant(evse_id, transaction)
        share = max(1, len(transactions))
        cuts = {start}
        for item in relevant:
            cuts |= _boundaries(item, start, end, now, transaction)
        periods: list[Period] = []
        for cut in sorted(cuts):
            limit, phases = self._limit_at(evse_id, relevant, cut, now, transaction, wanted,
                                           share)
            offset = int(round(cut - start))
            if periods and periods[-1].limit == limit and periods[-1].number_phases == phases:
                continue
            if periods and periods[-1].start == offset:
                periods[-1] = Period(offset, limit, phases)
            else:
                periods.append(Period(offset, limit, phases))
        return CompositeSchedule(evse_id, start, duration, wanted, tuple(periods))

    def _default_unit(self, evse_id: int) -> RateUnit:
        units = {p.schedule["chargingRateUnit"] for p in self.profiles
                 if p.evse_id in (0, evse_id)}
        return RateUnit(units.pop()) if len(units) == 1 else RateUnit.WATTS

    def _relevant(self, evse_id: int, transaction: Transaction | None) -> list[Installed]:
        out = []
        for p in self.profiles:
            if p.purpose is Purpose.STATION_MAX:
                out.append(p)
            elif evse_id == 0:
                continue
            elif p.purpose is Purpose.TX_DEFAULT and p.evse_id in (0, evse_id):
                out.append(p)
            elif (p.purpose is Purpose.TX and p.evse_id == evse_id and transaction is not None
                  and p.transaction_id == transaction.transaction_id):
                out.append(p)
        return out

    def _limit_at(self, evse_id: int, relevant: list[Installed], when: float, now: float,
                  transaction: Transaction | None, wanted: RateUnit, share: int
                  ) -> tuple[float, int | None]:
        rating = (self.limits.evse_max_power_w if wanted is RateUnit.WATTS
                  else self.limits.evse_max_current_a)
        limit, phases = rating, None
        by_purpose: dict[Purpose, tuple[float, RateUnit, int | None]] = {}
        for purpose in (Purpose.STATION_MAX, Purpose.TX_DEFAULT, Purpose.TX):
            candidates = sorted((p for p in relevant if p.purpose is purpose),
                                key=lambda p: (p.stack_level, p.evse_id != 0), reverse=True)
            for item in candidates:
                entry = entry_at(item, when, now, transaction)
                if entry is not None:
                    by_purpose[purpose] = entry
                    break
        tx = by_purpose.get(Purpose.TX) or by_purpose.get(Purpose.TX_DEFAULT)
        if tx is not None and evse_id != 0:
            value, unit, tx_phases = tx
            limit = min(limit, _to_unit(value, unit, tx_phases, wanted, self.limits))
            phases = tx_phases
        station = by_purpose.get(Purpose.STATION_MAX)
        if station is not None:
            value, unit, st_phases = station
            value = _to_unit(value, unit, st_phases, wanted, self.limits)
            limit = min(limit, value if evse_id == 0 else value / share)
            phases = phases if phases is not None else st_phases
        return limit, phases

    # --- persistence -------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps({"version": 1, "profiles": [
            {"evse_id": p.evse_id, "profile": p.profile} for p in self.profiles]},
            separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str, limits: Limits | None = None) -> ProfileStore:
        doc = json.loads(text)
        if doc.get("version") != 1:
            raise ValueError(f"unknown charging profile file version {doc.get('version')}")
        return cls(limits, [Installed(int(e["evse_id"]), e["profile"]) for e in doc["profiles"]])


__all__ = ["CompositeSchedule", "Installed", "Kind", "Limits", "Period", "ProfileRejected",
           "ProfileStore", "Purpose", "RateUnit", "Transaction", "check_profile", "entry_at",
           "format_time", "parse_time"]
