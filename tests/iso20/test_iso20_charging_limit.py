"""The CSMS's composite limit in ISO 15118-20: the offered power schedule, a new limit in the
scheduled charge loop (ScheduleRenegotiation), dynamic mode following it at once."""

from __future__ import annotations

import pytest

from secc.v2g.charging_limit import ChargingLimit, LimitPeriod

from .conftest import WALL


def limit(revision: int, *periods: tuple[float, float]) -> ChargingLimit:
    return ChargingLimit(revision, "W", tuple(LimitPeriod(WALL + s, w) for s, w in periods),
                         WALL + 86400)


def power_schedule(response):
    tuples = response.scheduled_se_res_control_mode.schedule_tuple
    entries = tuples[0].charging_schedule.power_schedule.power_schedule_entries
    return [(e.duration, e.power.value * 10 ** e.power.exponent)
            for e in entries.power_schedule_entry]


def test_schedule_exchange_offers_the_csms_schedule(pump_for):
    pump = pump_for("dc", loops=3)
    pump.core.charging_limit_changed(limit(1, (0, 30_000), (3600, 10_000)), WALL)
    pump.until("ScheduleExchange")
    pump.step()
    total = pump.core.config.schedule_duration
    assert power_schedule(pump.steps[-1].response) == [(3600, 30_000), (total - 3600, 10_000)]
    pump.run()
    assert pump.evcc.record.failure is None


def test_new_limit_in_the_scheduled_loop_asks_for_renegotiation(pump_for):
    pump = pump_for("dc", loops=8)
    pump.core.charging_limit_changed(None, WALL)
    pump.until("DC_ChargeLoop")
    pump.step()
    pump.core.charging_limit_changed(limit(5, (0, 20_000)), WALL + 1)
    voltage = pump.core.evse.present_voltage
    step = pump.step()
    assert step.response.evse_status.evse_notification == "ScheduleRenegotiation"
    assert pump.core.setpoint.current * voltage <= 20_000 * 1.001
    pump.until("ScheduleExchange")
    pump.step()
    assert power_schedule(pump.steps[-1].response)[0][1] == 20_000
    pump.run()
    assert pump.evcc.record.failure is None and pump.evcc.record.renegotiations == 1


def test_dynamic_mode_follows_a_new_limit_without_renegotiation(pump_for):
    pump = pump_for("dc", loops=6, control_mode=2, max_charge_power=[40_000] * 6)
    pump.core.charging_limit_changed(None, WALL)
    pump.until("DC_ChargeLoop")
    powers = []
    for i in range(4):
        if i == 2:
            pump.core.charging_limit_changed(limit(2, (0, 15_000)), WALL + 1)
        voltage = pump.core.evse.present_voltage
        step = pump.step()
        powers.append(pump.core.setpoint.current * voltage)
        assert step.response.evse_status is None or \
            step.response.evse_status.evse_notification != "ScheduleRenegotiation"
    assert powers[1] == pytest.approx(40_000, rel=0.01)
    assert powers[2] == pytest.approx(15_000, rel=0.01)
    pump.run()
    assert pump.evcc.record.failure is None and pump.evcc.record.renegotiations == 0


def test_schedule_exchange_waits_for_the_csms_answer(pump_for):
    pump = pump_for("dc", loops=3, core_kwargs={"charging_needs_wait": 5.0})
    core = pump.core
    core.charging_limit_changed(None, WALL)
    pump.until("ScheduleExchange")
    first = pump.step()
    assert first.response.evse_processing == "Ongoing"
    assert any(e.kind == "EVChargingNeeds" for e in first.reply.actions if hasattr(e, "kind"))
    core.charging_needs_answered(core.session_id.hex(), "Accepted")
    core.charging_limit_changed(limit(2, (0, 12_000)), WALL + 1)
    pump.until("ScheduleExchange")
    pump.step()
    done = pump.steps[-1].response
    assert done.evse_processing == "Finished" and power_schedule(done)[0][1] == 12_000
    pump.run()
    assert pump.evcc.record.failure is None and pump.evcc.record.renegotiations == 0
