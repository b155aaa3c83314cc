"""The CSMS's composite limit in the session cores (secc.v2g.charging_limit + the cores'
set_charging_limit): pure functions and cores driven through the real codec, virtual time."""

from __future__ import annotations

from exi_schemas.generated import iso2 as M
from secc.bus.smart_charging import needs_request, schedule_request
from secc.iso2.session import ev_charging_needs
from secc.v2g.charging_limit import ChargingLimit, LimitPeriod, offer
from secc.v2g.evse import EvseLimits, PublishEvent
from tests.iso2.test_iso2_session import ac_parameters, ev_status, make, pv, setup
from tests.v2g_harness import finish_insulation_test

WALL = 1_772_000_000.0            # some wall-clock instant (epoch s)
RATED = EvseLimits(max_voltage=920, min_voltage=150, max_current=200, max_power=50_000,
                   ac_max_current=32, ac_nominal_voltage=230, ac_phases=3)


def limit(revision: int, *periods: tuple[float, float], unit: str = "W",
          duration: float = 86400, phases: int | None = None) -> ChargingLimit:
    return ChargingLimit(revision, unit, tuple(LimitPeriod(WALL + s, v, phases)
                                               for s, v in periods), WALL + duration)


def test_from_bus_payload():
    got = ChargingLimit.from_bus({
        "revision": 4, "schedule_start": "2026-02-25T06:13:20Z", "duration": 600,
        "charging_rate_unit": "A", "periods": [{"start": 300, "limit": 8, "number_phases": 1},
                                               {"start": 0, "limit": 16}], "reason": "x"})
    assert got.revision == 4 and got.unit == "A" and got.end - got.periods[0].start == 600
    assert [(p.start - got.periods[0].start, p.limit, p.number_phases) for p in got.periods] == [
        (0, 16.0, None), (300, 8.0, 1)]


def test_no_limit_offers_the_rating():
    got = offer(RATED, None, WALL, ac=False)
    assert got.limits == RATED and got.schedule == ((0, 50_000),) and got.revision == 0


def test_watts_limit_lowers_dc_power_and_current_at_the_present_voltage():
    got = offer(RATED, limit(2, (0, 20_000)), WALL + 10, ac=False, dc_voltage=400)
    assert got.limits.max_power == 20_000 and got.limits.max_current == 50.0
    assert got.limits.max_voltage == RATED.max_voltage
    assert got.schedule == ((0, 20_000),) and got.revision == 2


def test_amps_limit_for_ac_uses_phases():
    got = offer(RATED, limit(1, (0, 10.0), unit="A"), WALL, ac=True)
    assert got.limits.ac_max_current == 10.0 and got.limits.max_power == 10 * 230 * 3
    one_phase = offer(RATED, limit(1, (0, 10.0), unit="A", phases=1), WALL, ac=True)
    assert one_phase.limits.max_power == 2300 and one_phase.limits.ac_max_current == 10.0


def test_a_limit_above_the_rating_changes_nothing():
    got = offer(RATED, limit(1, (0, 1_000_000)), WALL, ac=False)
    assert got.limits == RATED and got.schedule == ((0, 50_000),)


def test_schedule_follows_future_periods_and_the_end_of_the_limit():
    lim = limit(3, (0, 30_000), (600, 10_000), (1200, 80_000), duration=3600)
    got = offer(RATED, lim, WALL + 300, ac=False)
    assert got.schedule == ((0, 30_000), (300, 10_000), (900, 50_000))
    assert offer(RATED, lim, WALL + 700, ac=False).limits.max_power == 10_000
    assert offer(RATED, lim, WALL + 3600, ac=False).limits == RATED   # past its end


def test_schedule_is_cut_to_the_cars_table_size_never_raising_power():
    lim = limit(1, *[(i * 60, 10_000 + 1000 * (i % 5)) for i in range(40)])
    got = offer(RATED, lim, WALL, ac=False, max_entries=5)
    assert len(got.schedule) == 5 and got.schedule[-1] == (240, 10_000)


# --- ISO-2 ----------------------------------------------------------------------------------------
def dc_to_current_demand(d, departure: int | None = None, max_entries: int | None = None):
    s = d.session
    setup(d)
    _, cpd = d.send("ChargeParameterDiscoveryReq", M.ChargeParameterDiscoveryReqType(
        requested_energy_transfer_mode="DC_extended", max_entries_sa_schedule_tuple=max_entries,
        dc_ev_charge_parameter=M.DC_EVChargeParameterType(
            departure_time=departure, dc_ev_status=ev_status(),
            ev_maximum_current_limit=pv(200, "A"), ev_maximum_voltage_limit=pv(800, "V"),
            ev_energy_request=pv(40, "Wh", 3))), 1.0)
    d.send("CableCheckReq", M.CableCheckReqType(dc_ev_status=ev_status()), 2.0)
    finish_insulation_test(s)   # the board reports this cable check's test
    _, res = d.send("CableCheckReq", M.CableCheckReqType(dc_ev_status=ev_status()), 2.1)
    assert res.evse_processing == "Finished" and s.state == "PreCharge"
    s.evse.present_voltage = 500.0
    d.send("PreChargeReq", M.PreChargeReqType(dc_ev_status=ev_status(),
                                              ev_target_voltage=pv(500, "V"),
                                              ev_target_current=pv(1, "A")), 2.5)
    d.send("PowerDeliveryReq", M.PowerDeliveryReqType(charge_progress="Start",
                                                      sa_schedule_tuple_id=1), 3.0)
    return cpd


def current_demand(d, now):
    return d.send("CurrentDemandReq", M.CurrentDemandReqType(
        dc_ev_status=ev_status(), ev_target_current=pv(180, "A"), ev_target_voltage=pv(500, "V"),
        charging_complete=False), now)


def pmax_entries(cpd):
    entries = cpd.sa_schedule_list.sa_schedule_tuple[0].p_max_schedule.p_max_schedule_entry
    return [(e.relative_time_interval.start, e.relative_time_interval.duration,
             e.p_max.value * 10 ** e.p_max.multiplier) for e in entries]


def test_iso2_offers_the_csms_schedule_until_departure():
    d = make(limits=RATED)
    d.session.charging_limit_changed(limit(1, (0, 40_000), (1800, 20_000)), WALL)
    cpd = dc_to_current_demand(d, departure=100_000, max_entries=12)
    assert pmax_entries(cpd) == [(0, None, 40_000), (1800, None, 20_000),
                                 (100_000 - 86400, 86400, 20_000)]


def test_iso2_new_limit_mid_session_lowers_the_loop_and_asks_for_renegotiation():
    d = make(limits=RATED)
    s = d.session
    s.charging_limit_changed(None, WALL)
    cpd = dc_to_current_demand(d)
    assert pmax_entries(cpd) == [(0, 86400, 50_000)]
    _, res = current_demand(d, 3.1)
    assert res.dc_evse_status.evse_notification == "None"
    assert res.evse_maximum_power_limit.value * 10 ** res.evse_maximum_power_limit.multiplier \
        == 50_000
    s.charging_limit_changed(limit(7, (0, 20_000)), WALL + 5)        # the CSMS lowers it
    reply, res = current_demand(d, 3.2)
    power = res.evse_maximum_power_limit
    assert power.value * 10 ** power.multiplier == 20_000
    assert res.dc_evse_status.evse_notification == "ReNegotiation"
    assert reply.actions[-1].current <= 20_000 / 500 + 1e-6         # set-point within the cap
    # the car renegotiates: the new SAScheduleList carries the limit, the notification stops
    d.send("PowerDeliveryReq", M.PowerDeliveryReqType(charge_progress="Renegotiate",
                                                      sa_schedule_tuple_id=1), 4.0)
    _, cpd = d.send("ChargeParameterDiscoveryReq", M.ChargeParameterDiscoveryReqType(
        requested_energy_transfer_mode="DC_extended",
        dc_ev_charge_parameter=M.DC_EVChargeParameterType(
            dc_ev_status=ev_status(), ev_maximum_current_limit=pv(200, "A"),
            ev_maximum_voltage_limit=pv(800, "V"))), 4.1)
    assert pmax_entries(cpd) == [(0, 86400, 20_000)]
    _, res = d.send("PowerDeliveryReq", M.PowerDeliveryReqType(
        charge_progress="Start", sa_schedule_tuple_id=1, charging_profile=M.ChargingProfileType(
            profile_entry=[M.ProfileEntryType(charging_profile_entry_start=0,
                                              charging_profile_entry_max_power=pv(20, "W", 3))])),
        4.2)
    assert res.response_code == "OK"
    _, res = current_demand(d, 4.3)
    assert res.dc_evse_status.evse_notification == "None"


def test_iso2_lowered_limit_before_power_delivery_does_not_fail_the_cars_profile():
    """The car copies the PMax we offered; a lower limit arriving meanwhile is not its fault."""
    d = make(limits=RATED)
    d.session.charging_limit_changed(None, WALL)
    setup(d)
    ac = make(("AC_three_phase_core",), limits=RATED)
    ac.session.charging_limit_changed(None, WALL)
    setup(ac)
    ac_parameters(ac)
    ac.session.charging_limit_changed(limit(2, (0, 6.0), unit="A"), WALL + 1)
    _, res = ac.send("PowerDeliveryReq", M.PowerDeliveryReqType(
        charge_progress="Start", sa_schedule_tuple_id=1, charging_profile=M.ChargingProfileType(
            profile_entry=[M.ProfileEntryType(charging_profile_entry_start=0,
                                              charging_profile_entry_max_power=pv(22, "W", 3))])),
        2.0)
    assert res.response_code == "OK"
    _, res = ac.send("ChargingStatusReq", M.ChargingStatusReqType(), 2.5)
    assert res.evse_max_current.value * 10 ** res.evse_max_current.multiplier == 6.0
    assert res.ac_evse_status.evse_notification == "ReNegotiation"


def test_iso2_publishes_the_cars_needs_and_chosen_schedule():
    d = make(("AC_three_phase_core",), limits=RATED)
    setup(d)
    reply, _ = d.send("ChargeParameterDiscoveryReq", M.ChargeParameterDiscoveryReqType(
        requested_energy_transfer_mode="AC_three_phase_core",
        ac_ev_charge_parameter=M.AC_EVChargeParameterType(
            departure_time=7200, e_amount=pv(20, "Wh", 3), ev_max_voltage=pv(400, "V"),
            ev_max_current=pv(16, "A"), ev_min_current=pv(6, "A"))), 1.0)
    needs = next(a for a in reply.actions if isinstance(a, PublishEvent)
                 and a.kind == "EVChargingNeeds").data
    request = needs_request("ab12", {**needs, "session_id": "ab12", "protocol": "iso2"}, WALL)
    assert request == {"session_id": "ab12", "charging_needs": {
        "requestedEnergyTransfer": "AC_three_phase", "departureTime": "2026-02-25T08:13:20Z",
        "acChargingParameters": {"energyAmount": 20000, "evMinCurrent": 6, "evMaxCurrent": 16,
                                 "evMaxVoltage": 400}}}
    reply, _ = d.send("PowerDeliveryReq", M.PowerDeliveryReqType(
        charge_progress="Start", sa_schedule_tuple_id=1, charging_profile=M.ChargingProfileType(
            profile_entry=[M.ProfileEntryType(charging_profile_entry_start=0,
                                              charging_profile_entry_max_power=pv(11, "W", 3),
                                              charging_profile_entry_max_number_of_phases_in_use=3
                                              )])), 2.0)
    chosen = next(a for a in reply.actions if isinstance(a, PublishEvent)
                  and a.kind == "EVChargingSchedule").data
    assert schedule_request("ab12", chosen, WALL)["charging_schedule"] == {
        "id": 1, "chargingRateUnit": "W",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11000.0, "numberPhases": 3}]}


def test_dc_needs_in_ocpp_words():
    p = M.DC_EVChargeParameterType(dc_ev_status=ev_status(soc=42),
                                   ev_maximum_current_limit=pv(200, "A"),
                                   ev_maximum_voltage_limit=pv(800, "V"),
                                   ev_maximum_power_limit=pv(150, "W", 3), full_soc=100)
    assert ev_charging_needs("DC_extended", p) == {
        "requestedEnergyTransfer": "DC", "dcChargingParameters": {
            "evMaxCurrent": 200, "evMaxVoltage": 800, "evMaxPower": 150000,
            "stateOfCharge": 42, "fullSoC": 100}}


# --- NotifyEVChargingNeeds before the schedule is offered ------------------------------------------
def dc_cpd(d, now):
    return d.send("ChargeParameterDiscoveryReq", M.ChargeParameterDiscoveryReqType(
        requested_energy_transfer_mode="DC_extended",
        dc_ev_charge_parameter=M.DC_EVChargeParameterType(
            dc_ev_status=ev_status(), ev_maximum_current_limit=pv(200, "A"),
            ev_maximum_voltage_limit=pv(800, "V"))), now)


def test_iso2_waits_for_the_csms_to_shape_the_first_schedule():
    d = make(limits=RATED, charging_needs_wait=2.0)
    s = d.session
    s.charging_limit_changed(None, WALL)
    setup(d)
    reply, res = dc_cpd(d, 1.0)
    assert res.evse_processing == "Ongoing" and res.sa_schedule_list is None
    assert res.dc_evse_charge_parameter is not None
    assert [a.kind for a in reply.actions if isinstance(a, PublishEvent)] == ["EVChargingNeeds"]
    s.charging_needs_answered(s.session_id.hex(), "Accepted")     # a profile will follow
    _, res = dc_cpd(d, 1.3)
    assert res.evse_processing == "Ongoing"
    s.charging_needs_answered("another-session", "Rejected")        # not ours: ignored
    s.charging_limit_changed(limit(4, (0, 25_000)), WALL + 1)      # ... here it is
    reply, res = dc_cpd(d, 1.6)
    assert res.evse_processing == "Finished" and pmax_entries(res) == [(0, 86400, 25_000)]
    assert not [a for a in reply.actions if isinstance(a, PublishEvent)]   # needs sent once
    assert s.state == "CableCheck"


def test_iso2_offers_at_once_when_the_csms_declines_and_after_the_wait():
    d = make(limits=RATED, charging_needs_wait=2.0)
    d.session.charging_limit_changed(None, WALL)
    setup(d)
    assert dc_cpd(d, 1.0)[1].evse_processing == "Ongoing"
    d.session.charging_needs_answered(d.session.session_id.hex(), "Rejected")
    assert dc_cpd(d, 1.2)[1].evse_processing == "Finished"
    late = make(limits=RATED, charging_needs_wait=2.0)
    late.session.charging_limit_changed(None, WALL)
    setup(late)
    assert dc_cpd(late, 1.0)[1].evse_processing == "Ongoing"
    assert dc_cpd(late, 2.9)[1].evse_processing == "Ongoing"
    _, res = dc_cpd(late, 3.1)                        # nobody answered: the present limit
    assert res.evse_processing == "Finished" and pmax_entries(res) == [(0, 86400, 50_000)]
