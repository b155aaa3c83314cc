"""ScheduleExchange: the car's charging needs go out as an event, the SECC may wait (Ongoing)
for the grid/CSMS limit, and that limit shapes the schedule and the loop set-points."""

from __future__ import annotations

import pytest

from secc.iso20 import Iso20Config
from secc.v2g.timers import V2GTimerConfig


def test_charging_needs_are_published_once(pump_for):
    pump = pump_for("dc", loops=2, misbehaviour=None)
    pump.run()
    needs = [e for e in pump.charger.events if e.kind == "EVChargingNeeds"]
    assert len(needs) == 1
    assert needs[0].data["control_mode"] == "SCHEDULED"
    assert needs[0].data["ev_target_energy_request"] == pytest.approx(30_000, rel=0.01)
    assert needs[0].data["departure_time"] == 3600


def test_schedule_exchange_waits_for_the_grid_limit_then_applies_it(pump_for):
    pump = pump_for("dc", loops=3, target_current=[300],
                    core_kwargs={"config": Iso20Config(wait_for_schedule=True)})
    pump.until("ScheduleExchange")
    for _ in range(4):
        step = pump.step()
        assert step.response.evse_processing == "Ongoing"
    pump.core.provide_schedule_limit(22_000)
    step = pump.step()
    assert step.response.evse_processing == "Finished"
    tuple_ = step.response.scheduled_se_res_control_mode.schedule_tuple[0]
    power = tuple_.charging_schedule.power_schedule.power_schedule_entries.power_schedule_entry[0]
    assert power.power.value * 10 ** power.power.exponent == 22_000
    pump.until("DC_ChargeLoop")
    loop = pump.step()
    sp = pump.core.setpoint
    assert sp.power_limited and sp.voltage * sp.current == pytest.approx(22_000)
    mode = loop.response.scheduled_dc_cl_res_control_mode
    assert mode.evse_maximum_charge_power.value * 10 ** mode.evse_maximum_charge_power.exponent \
        == 22_000


def test_no_grid_limit_within_the_ongoing_limit_fails(pump_for):
    pump = pump_for("dc", core_kwargs={"config": Iso20Config(wait_for_schedule=True),
                                       "timers": V2GTimerConfig(ongoing_timeout=1.0)})
    pump.run()
    assert pump.codes()[-1] == ("ScheduleExchangeReq", "FAILED")
    assert pump.core.terminated
