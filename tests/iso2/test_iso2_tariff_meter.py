"""ISO 15118-2 core: the board's optional SalesTariff in the SAScheduleTuple, its bounds (the
PMaxSchedule's period, the car's MaxEntriesSAScheduleTuple, EIM only), MeterInfo in the loop,
and the ``[v2g.tariff]`` / ``[v2g].meter_info`` settings' validation."""

from __future__ import annotations

import pytest

from exi_schemas.generated import iso2 as M
from secc.config import ConfigError, loads_board_config
from secc.iso2 import Iso2Adapter
from secc.v2g.tariff import SalesTariffConfig, tariff_entries
from tests.iso2.test_iso2_session import ac_parameters, dc_parameters, ev_status, make, pv, setup

TARIFF = SalesTariffConfig(enabled=True, sales_tariff_id=7, description="day/night",
                           price_levels=3, entry_starts_s=(0, 3600, 7200),
                           entry_price_levels=(2, 0, 1),
                           entry_relative_prices_percent=(120, 80, 100))


def tuple_of(res):
    [tup] = res.sa_schedule_list.sa_schedule_tuple
    return tup


def test_eim_schedule_carries_the_unsigned_tariff_over_the_pmax_period():
    d = make(sales_tariff=TARIFF)
    setup(d)
    res = dc_parameters(d)
    tup = tuple_of(res)
    tariff = tup.sales_tariff
    assert tariff is not None and tariff.sales_tariff_id == 7 and tariff.id is None
    assert tariff.num_e_price_levels == 3 and tariff.sales_tariff_description == "day/night"
    starts = [e.relative_time_interval.start for e in tariff.sales_tariff_entry]
    assert starts == [0, 3600, 7200]
    assert [e.e_price_level for e in tariff.sales_tariff_entry] == [2, 0, 1]
    assert tariff.sales_tariff_entry[0].consumption_cost[0].cost[0].amount == 120
    # same end as the PMaxSchedule: start + duration of both last entries
    pmax_last = tup.p_max_schedule.p_max_schedule_entry[-1].relative_time_interval
    tariff_last = tariff.sales_tariff_entry[-1].relative_time_interval
    assert tariff_last.start + tariff_last.duration == pmax_last.start + pmax_last.duration
    assert all(e.relative_time_interval.duration is None for e in tariff.sales_tariff_entry[:-1])
    # it encodes (schema-valid) and decodes to the same tariff
    adapter = Iso2Adapter()
    _, data = adapter.encode("ChargeParameterDiscoveryRes", res, d.session.session_id)
    import exi_schemas
    back = exi_schemas.decode(data, "iso2")
    assert back.body.charge_parameter_discovery_res.sa_schedule_list.sa_schedule_tuple[0] \
        .sales_tariff == tariff


def test_tariff_entries_and_pmax_entries_stay_within_max_entries():
    d = make(sales_tariff=TARIFF)
    setup(d)
    _, res = d.send("ChargeParameterDiscoveryReq", M.ChargeParameterDiscoveryReqType(
        requested_energy_transfer_mode="DC_extended", max_entries_sa_schedule_tuple=2,
        dc_ev_charge_parameter=M.DC_EVChargeParameterType(
            dc_ev_status=ev_status(), ev_maximum_current_limit=pv(200, "A"),
            ev_maximum_voltage_limit=pv(800, "V"))), 1.0)
    tup = tuple_of(res)
    n_pmax = len(tup.p_max_schedule.p_max_schedule_entry)
    n_tariff = len(tup.sales_tariff.sales_tariff_entry) if tup.sales_tariff else 0
    assert n_pmax == 1 and n_tariff == 1 and n_pmax + n_tariff <= 2
    last = tup.sales_tariff.sales_tariff_entry[-1].relative_time_interval
    assert last.start == 0 and last.duration == 86400    # the cut tariff still covers the day


def test_no_room_left_means_no_tariff():
    assert tariff_entries(TARIFF, 86400, 0) == []
    assert tariff_entries(SalesTariffConfig(), 86400, None) == []   # disabled


def test_long_departure_repeats_the_last_entry_within_one_day_intervals():
    entries = tariff_entries(TARIFF, 3 * 86400, None)
    assert [e.start for e in entries] == [0, 3600, 7200, 2 * 86400]
    assert entries[-1].duration == 86400 and entries[-1].price_level == 1


def test_no_tariff_configured_no_tariff_sent():
    d = make()
    setup(d)
    assert tuple_of(dc_parameters(d)).sales_tariff is None


def test_contract_session_gets_no_unsigned_tariff():
    d = make(sales_tariff=TARIFF)
    setup(d)
    d.session.payment_option = "Contract"   # as after PaymentServiceSelection(Contract)
    assert tuple_of(dc_parameters(d)).sales_tariff is None


def test_ac_schedule_carries_the_tariff_too():
    d = make(modes=("AC_three_phase_core",), sales_tariff=TARIFF)
    setup(d)
    assert tuple_of(ac_parameters(d)).sales_tariff.sales_tariff_id == 7


def _to_current_demand(d):
    from secc.v2g.evse import Isolation
    from tests.v2g_harness import finish_insulation_test
    s = d.session
    setup(d)
    dc_parameters(d)
    d.send("CableCheckReq", M.CableCheckReqType(dc_ev_status=ev_status()), 2.0)
    finish_insulation_test(s)
    s.evse.isolation = Isolation.VALID
    d.send("CableCheckReq", M.CableCheckReqType(dc_ev_status=ev_status()), 3.0)
    s.evse.present_voltage = 400.0
    d.send("PreChargeReq", M.PreChargeReqType(dc_ev_status=ev_status(),
                                              ev_target_voltage=pv(400, "V"),
                                              ev_target_current=pv(2, "A")), 3.5)
    _, res = d.send("PowerDeliveryReq", M.PowerDeliveryReqType(
        charge_progress="Start", sa_schedule_tuple_id=1, dc_ev_power_delivery_parameter=
        M.DC_EVPowerDeliveryParameterType(dc_ev_status=ev_status(), charging_complete=False)),
        4.0)
    assert res.response_code == "OK", res
    s.evse.meter_wh = 4321
    return d.send("CurrentDemandReq", M.CurrentDemandReqType(
        dc_ev_status=ev_status(), ev_target_current=pv(10, "A"), ev_target_voltage=pv(400, "V"),
        charging_complete=False), 4.5)[1]


@pytest.mark.parametrize("always", [True, False])
def test_current_demand_meter_info_per_setting(always):
    res = _to_current_demand(make(meter_info_always=always))
    assert res.response_code == "OK" and res.receipt_required is False
    if always:
        assert res.meter_info.meter_id == "PYSECC-METER" and res.meter_info.meter_reading == 4321
    else:
        assert res.meter_info is None


BOARD = '[board]\nname = "t"\nevse_id = "DE*PNX*E12345*1"\n'


def test_tariff_settings_load_and_default_off():
    config = loads_board_config(BOARD)
    assert config.v2g.tariff.enabled is False and config.v2g.meter_info == "always"
    config = loads_board_config(BOARD + '[v2g.tariff]\nenabled = true\nsales_tariff_id = 3\n'
                                'price_levels = 2\nentry_starts_s = [0, 600]\n'
                                'entry_price_levels = [1, 0]\n')
    assert config.v2g.tariff.entry_starts_s == (0, 600)


@pytest.mark.parametrize("table,key,words", [
    ("sales_tariff_id = 0", "[v2g.tariff].sales_tariff_id", "1..255"),
    ("entry_starts_s = [5]\nentry_price_levels = [0]", "[v2g.tariff].entry_starts_s",
     "starting at 0"),
    ("entry_starts_s = [0, 10, 10]\nentry_price_levels = [0, 0, 0]",
     "[v2g.tariff].entry_starts_s", "increasing"),
    ("entry_starts_s = [0, 10]", "[v2g.tariff].entry_price_levels", "one level per"),
    ("price_levels = 2\nentry_price_levels = [2]", "[v2g.tariff].entry_price_levels", "0..1"),
    ("description = '" + "x" * 33 + "'", "[v2g.tariff].description", "32"),
])
def test_bad_tariff_settings_name_the_key(table, key, words):
    with pytest.raises(ConfigError) as info:
        loads_board_config(BOARD + "[v2g.tariff]\nenabled = true\n" + table + "\n", "b.toml")
    text = "\n".join(str(i) for i in info.value.issues)
    assert key in text and words in text, text


def test_sighup_applies_a_new_tariff_to_the_next_session():
    from secc.daemon import session_settings
    from secc.iso2 import PausedSessions
    from secc.service import merged_config, reload_plan

    old = loads_board_config(BOARD)
    new = loads_board_config(BOARD + '[v2g]\nmeter_info = "with_receipt"\n'
                             '[v2g.tariff]\nenabled = true\nsales_tariff_id = 9\n')
    plan = reload_plan(old, new)
    assert set(plan.apply) == {"[v2g].tariff", "[v2g].meter_info"} and not plan.refuse
    options = session_settings(merged_config(old, new, plan), PausedSessions()).core_options
    assert options["iso2"]["sales_tariff"].sales_tariff_id == 9
    assert options["iso2"]["meter_info_always"] is False
