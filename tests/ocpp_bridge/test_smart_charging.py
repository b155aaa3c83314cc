"""OCPP 2.0.1 Smart Charging core (ocpp_bridge.smart_charging): pure functions, virtual time."""

from __future__ import annotations

import pytest

from ocpp_bridge.smart_charging import (
    Limits,
    Period,
    ProfileRejected,
    ProfileStore,
    Purpose,
    RateUnit,
    Transaction,
    format_time,
    parse_time,
)

T0 = parse_time("2026-03-02T00:00:00Z")   # a Monday, midnight UTC
HOUR = 3600
TX = Transaction("tx-1", T0 + 600)


def profile(pid: int, purpose: str = "TxDefaultProfile", level: int = 0,
            periods: list[tuple[int, float]] | None = None, *, kind: str = "Absolute",
            unit: str = "A", start: float | None = T0, duration: int | None = None,
            **extra) -> dict:
    schedule = {"id": pid, "chargingRateUnit": unit, "chargingSchedulePeriod": [
        {"startPeriod": s, "limit": lim} for s, lim in (periods or [(0, 16.0)])]}
    if start is not None and kind != "Relative":
        schedule["startSchedule"] = format_time(start)
    if duration is not None:
        schedule["duration"] = duration
    return {"id": pid, "stackLevel": level, "chargingProfilePurpose": purpose,
            "chargingProfileKind": kind, "chargingSchedule": [schedule], **extra}


def periods(schedule) -> list[tuple[int, float]]:
    return [(p.start, p.limit) for p in schedule.periods]


LIMITS = Limits(evse_max_current_a=32.0, evse_max_power_w=22_080.0, nominal_voltage=230.0,
                phases=3)


def store() -> ProfileStore:
    return ProfileStore(LIMITS)


# --- validation ---------------------------------------------------------------------------------
@pytest.mark.parametrize("evse, prof, reason, words", [
    (1, profile(1, "ChargingStationMaxProfile"), "InvalidProfile", "evseId 0"),
    (0, profile(1, "TxProfile", transactionId="tx-1"), "InvalidProfile", "not evseId 0"),
    (1, profile(1, "TxProfile"), "InvalidProfile", "without transactionId"),
    (1, profile(1, "TxProfile", transactionId="tx-9"), "TxNotFound", "tx-9"),
    (1, profile(1, "ChargingStationExternalConstraints"), "InvalidProfile", "not by the CSMS"),
    (1, profile(1, transactionId="tx-1"), "InvalidProfile", "only allowed in a TxProfile"),
    (1, profile(1, level=9), "InvalidStackLevel", "ProfileStackLevel"),
    (1, profile(1, kind="Recurring"), "InvalidProfile", "recurrencyKind"),
    (1, profile(1, kind="Absolute", start=None), "InvalidSchedule", "needs startSchedule"),
    (1, profile(1, periods=[(10, 16.0)]), "InvalidSchedule", "start at 0"),
    (1, profile(1, periods=[(0, 16.0), (600, 8.0), (600, 6.0)]), "InvalidSchedule",
     "increase strictly"),
    (1, profile(1, periods=[(0, -1.0)]), "InvalidValue", "negative"),
    (1, profile(1, periods=[(0, 11000.0)]), "InvalidValue", "implausible"),
    (1, profile(1, periods=[(i * 60, 16.0) for i in range(25)]), "InvalidSchedule",
     "PeriodsPerSchedule"),
    (1, profile(1, validFrom=format_time(T0 + 10), validTo=format_time(T0)), "InvalidValue",
     "validTo"),
    (1, profile(1, duration=0), "InvalidValue", "duration"),
])
def test_invalid_profiles_are_rejected_with_a_reason(evse, prof, reason, words):
    s = store()
    with pytest.raises(ProfileRejected) as info:
        s.install(evse, prof, TX)
    assert info.value.reason == reason and len(info.value.reason) <= 20
    assert words in str(info.value)
    assert s.profiles == []


def test_relative_profile_must_not_have_a_start():
    prof = profile(1, kind="Relative", start=None)
    prof["chargingSchedule"][0]["startSchedule"] = format_time(T0)
    with pytest.raises(ProfileRejected, match="must not have startSchedule"):
        store().install(1, prof, None)


def test_phase_to_use_needs_one_phase():
    prof = profile(1)
    prof["chargingSchedule"][0]["chargingSchedulePeriod"][0].update(numberPhases=3,
                                                                     phaseToUse=2)
    with pytest.raises(ProfileRejected, match="phaseToUse"):
        store().install(1, prof, None)
    prof["chargingSchedule"][0]["chargingSchedulePeriod"][0]["numberPhases"] = 1
    store().install(1, prof, None)


def test_rate_unit_not_supported_by_the_station():
    s = ProfileStore(Limits(rate_units=(RateUnit.AMPS,)))
    with pytest.raises(ProfileRejected) as info:
        s.install(1, profile(1, unit="W", periods=[(0, 11000.0)]), None)
    assert info.value.reason == "UnsupportedRateUnit"


def test_same_id_replaces_and_same_stack_level_overlapping_is_rejected():
    s = store()
    s.install(1, profile(1, periods=[(0, 16.0)]), None)
    s.install(1, profile(1, periods=[(0, 10.0)]), None)          # same id: replaced
    assert len(s.profiles) == 1
    assert s.profiles[0].schedule["chargingSchedulePeriod"][0]["limit"] == 10.0
    with pytest.raises(ProfileRejected) as info:
        s.install(1, profile(2), None)                          # same level+purpose+evse
    assert info.value.reason == "DuplicateProfile" and "profile 1" in str(info.value)
    s.install(1, profile(3, level=1), None)                     # other level: fine
    s.install(2, profile(4), None)                              # other EVSE: fine
    # same level, but validity windows that do not overlap: allowed
    s.install(1, profile(5, level=2, validTo=format_time(T0 + HOUR)), None)
    s.install(1, profile(6, level=2, validFrom=format_time(T0 + HOUR)), None)
    with pytest.raises(ProfileRejected):
        s.install(1, profile(7, level=2, validFrom=format_time(T0 + 10),
                             validTo=format_time(T0 + 20)), None)
    assert sorted(p.id for p in s.profiles) == [1, 3, 4, 5, 6]


def test_store_refuses_more_than_max_profiles():
    s = ProfileStore(Limits(max_profiles=2))
    s.install(1, profile(1, level=0), None)
    s.install(1, profile(2, level=1), None)
    with pytest.raises(ProfileRejected) as info:
        s.install(1, profile(3, level=2), None)
    assert info.value.reason == "MaxProfiles"
    s.install(1, profile(2, level=1, periods=[(0, 6.0)]), None)   # replacing is fine


# --- composite schedule ---------------------------------------------------------------------------
def test_no_profile_means_the_evse_rating():
    c = store().composite(1, T0, HOUR, RateUnit.AMPS, {})
    assert periods(c) == [(0, 32.0)]
    assert c.to_ocpp() == {"evseId": 1, "duration": HOUR, "scheduleStart":
                           "2026-03-02T00:00:00Z", "chargingRateUnit": "A",
                           "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 32.0}]}


def test_highest_stack_level_wins_where_it_is_in_effect():
    s = store()
    s.install(1, profile(1, level=0, periods=[(0, 20.0)]), None)
    s.install(1, profile(2, level=1, periods=[(0, 10.0), (600, 25.0)], start=T0 + 1200,
                         duration=1800), None)
    c = s.composite(1, T0, HOUR, RateUnit.AMPS, {})
    # level 1 covers 1200..3000 (a higher limit than level 0 still wins: stacking, not min)
    assert periods(c) == [(0, 20.0), (1200, 10.0), (1800, 25.0), (3000, 20.0)]


def test_tx_profile_overrides_tx_default_and_station_max_caps():
    s = store()
    s.install(0, profile(1, "ChargingStationMaxProfile", periods=[(0, 30.0), (1800, 12.0)]),
              None)
    s.install(0, profile(2, periods=[(0, 16.0)]), None)          # TxDefault for all EVSEs
    s.install(1, profile(3, "TxProfile", periods=[(0, 24.0)], start=T0 + 600,
                         transactionId="tx-1"), TX)
    c = s.composite(1, T0, HOUR, RateUnit.AMPS, {1: TX})
    assert periods(c) == [(0, 16.0), (600, 24.0), (1800, 12.0)]
    # another EVSE without the transaction sees TxDefault only, capped by the station max
    assert periods(s.composite(2, T0, HOUR, RateUnit.AMPS, {1: TX})) == [
        (0, 16.0), (1800, 12.0)]


def test_station_max_is_shared_between_evses_with_transactions():
    s = store()
    s.install(0, profile(1, "ChargingStationMaxProfile", periods=[(0, 30.0)]), None)
    both = {1: TX, 2: Transaction("tx-2", T0)}
    assert periods(s.composite(1, T0, HOUR, RateUnit.AMPS, both)) == [(0, 15.0)]
    assert periods(s.composite(0, T0, HOUR, RateUnit.AMPS, both)) == [(0, 30.0)]


def test_evse_specific_tx_default_beats_station_wide_at_same_level():
    s = store()
    s.install(0, profile(1, periods=[(0, 10.0)]), None)
    s.install(1, profile(2, periods=[(0, 20.0)]), None)
    assert periods(s.composite(1, T0, HOUR, RateUnit.AMPS, {})) == [(0, 20.0)]
    assert periods(s.composite(2, T0, HOUR, RateUnit.AMPS, {})) == [(0, 10.0)]


def test_units_are_converted_with_voltage_and_phases():
    s = store()
    s.install(1, profile(1, unit="W", periods=[(0, 11040.0)]), None)      # 16 A x 3 x 230 V
    assert periods(s.composite(1, T0, HOUR, RateUnit.AMPS, {})) == [(0, 16.0)]
    s.install(1, profile(2, level=1, periods=[(0, 10.0)]), None)
    s.profiles[-1].schedule["chargingSchedulePeriod"][0]["numberPhases"] = 1
    c = s.composite(1, T0, HOUR, RateUnit.WATTS, {})
    assert periods(c) == [(0, 2300.0)] and c.periods[0].number_phases == 1


def test_validity_window_bounds_the_profile():
    s = store()
    s.install(1, profile(1, periods=[(0, 8.0)], validFrom=format_time(T0 + 900),
                         validTo=format_time(T0 + 1800)), None)
    assert periods(s.composite(1, T0, HOUR, RateUnit.AMPS, {})) == [
        (0, 32.0), (900, 8.0), (1800, 32.0)]
    assert s.prune(T0 + 1799) == []
    assert [p.id for p in s.prune(T0 + 1800)] == [1]


def test_daily_recurring_profile_repeats_every_day():
    s = store()
    # 18:00-22:00 every day 6 A, otherwise 32 A (the rating: profile lasts 4 h per day)
    s.install(1, profile(1, kind="Recurring", recurrencyKind="Daily", start=T0 + 18 * HOUR,
                         duration=4 * HOUR, periods=[(0, 6.0)]), None)
    c = s.composite(1, T0 + 12 * HOUR, 48 * HOUR, RateUnit.AMPS, {})
    assert periods(c) == [(0, 32.0), (6 * HOUR, 6.0), (10 * HOUR, 32.0), (30 * HOUR, 6.0),
                          (34 * HOUR, 32.0)]
    assert c.limit_at(T0 + 43 * HOUR) == 6.0 and c.limit_at(T0 + 47 * HOUR) == 32.0


def test_weekly_recurring_profile_starting_in_the_past():
    s = store()
    s.install(1, profile(1, kind="Recurring", recurrencyKind="Weekly", start=T0 - 14 * 86400,
                         periods=[(0, 10.0), (86400, 20.0)]), None)
    c = s.composite(1, T0 - HOUR, 2 * 86400, RateUnit.AMPS, {})
    assert periods(c) == [(0, 20.0), (HOUR, 10.0), (HOUR + 86400, 20.0)]


def test_relative_tx_profile_starts_with_the_transaction():
    s = store()
    s.install(1, profile(1, "TxProfile", kind="Relative", start=None, transactionId="tx-1",
                         periods=[(0, 10.0), (900, 20.0)]), TX)
    c = s.composite(1, T0, HOUR, RateUnit.AMPS, {1: TX})
    assert periods(c) == [(0, 32.0), (600, 10.0), (1500, 20.0)]


def test_ended_transaction_takes_its_tx_profiles_along():
    s = store()
    s.install(1, profile(1, "TxProfile", transactionId="tx-1"), TX)
    s.install(1, profile(2, periods=[(0, 12.0)]), None)
    assert [p.id for p in s.transaction_ended("tx-1")] == [1]
    assert periods(s.composite(1, T0, HOUR, RateUnit.AMPS, {})) == [(0, 12.0)]


def test_tx_profile_of_another_transaction_does_not_apply():
    s = store()
    s.install(1, profile(1, "TxProfile", transactionId="tx-1", periods=[(0, 6.0)]), TX)
    other = {1: Transaction("tx-2", T0)}
    assert periods(s.composite(1, T0, HOUR, RateUnit.AMPS, other)) == [(0, 32.0)]


def test_clear_by_id_and_by_criteria_and_select():
    s = store()
    s.install(0, profile(1, "ChargingStationMaxProfile", periods=[(0, 30.0)]), None)
    s.install(1, profile(2, level=0), None)
    s.install(1, profile(3, level=1), None)
    s.install(2, profile(4, level=1), None)
    assert [p.id for p in s.select(purpose=Purpose.TX_DEFAULT, stack_level=1)] == [3, 4]
    assert [p.id for p in s.select(ids=[1, 4])] == [1, 4]
    assert [p.id for p in s.clear(profile_id=3)] == [3]
    assert s.clear(profile_id=3) == []
    assert [p.id for p in s.clear(evse_id=2, purpose=Purpose.TX_DEFAULT)] == [4]
    assert [p.id for p in s.clear(purpose=Purpose.STATION_MAX)] == [1]
    assert [p.id for p in s.profiles] == [2]


def test_profiles_survive_a_round_trip_through_json():
    s = store()
    s.install(0, profile(1, "ChargingStationMaxProfile", periods=[(0, 30.0)]), None)
    s.install(1, profile(2, kind="Recurring", recurrencyKind="Daily", periods=[(0, 8.0)]), None)
    again = ProfileStore.from_json(s.to_json(), LIMITS)
    assert again.profiles == s.profiles
    assert again.composite(1, T0, HOUR, None, {}) == s.composite(1, T0, HOUR, None, {})
    with pytest.raises(ValueError, match="version"):
        ProfileStore.from_json('{"version": 7, "profiles": []}')


def test_composite_duration_is_bounded():
    with pytest.raises(ValueError):
        store().composite(1, T0, 0, RateUnit.AMPS, {})
    with pytest.raises(ValueError):
        store().composite(1, T0, 40 * 86400, RateUnit.AMPS, {})


def test_period_output_drops_repeats_and_keeps_phases():
    assert Period(0, 16.04, 1).to_ocpp() == {"startPeriod": 0, "limit": 16.0, "numberPhases": 1}
    s = store()
    s.install(1, profile(1, periods=[(0, 16.0), (600, 16.0), (1200, 8.0)]), None)
    assert periods(s.composite(1, T0, HOUR, RateUnit.AMPS, {})) == [(0, 16.0), (1200, 8.0)]
