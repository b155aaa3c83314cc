"""The simulated board and the shared safety policy (virtual time: instant, deterministic)."""

from __future__ import annotations

import asyncio

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from hal.board import (
    BoardError,
    ContactorError,
    ContactorFault,
    ContactorFaultKind,
    DcCapabilities,
    EmergencyStopChanged,
    IsolationChanged,
    IsolationState,
    LockError,
    LockFault,
    LockState,
    OverTemperature,
    PilotStateChanged,
    SafeStateEntered,
    SafeStateReason,
    SafetyLimits,
    SetpointOutOfRange,
    UnsafeToUnlock,
)
from hal.pilot import PilotSignal, PilotSignalKind, PilotState
from hal.sim import SimBoard, sim_meter_public_key


def drain(queue: asyncio.Queue) -> list:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


async def charging_dc(board: SimBoard) -> None:
    """Bring the sim to CurrentDemand: plugged, locked, closed, EV battery on the inlet."""
    board.ev_set_pilot("B")
    board.advance(0.1)
    await board.set_pilot(PilotSignal.hlc())
    await board.lock()
    board.ev_set_pilot("C")
    board.advance(0.1)
    await board.close_contactors()
    await board.set_dc_setpoint(400, 2)
    board.advance(1.0)
    board.ev_close_contactors(True)
    await board.set_dc_setpoint(450, 100)
    board.advance(1.0)


async def test_pilot_change_is_published_once_after_debounce():
    board = SimBoard(pilot_debounce_s=0.05)
    queue = board.subscribe()
    board.ev_set_pilot("B")
    board.advance(0.049)
    assert drain(queue) == [] and board.pilot_state is PilotState.A
    board.advance(0.01)
    events = drain(queue)
    assert [(e.previous, e.state) for e in events] == [(PilotState.A, PilotState.B)]
    assert events[0].at == pytest.approx(0.05)


async def test_pilot_glitch_shorter_than_debounce_is_not_published():
    board = SimBoard(pilot_debounce_s=0.05)
    board.ev_set_pilot("B")
    board.advance(0.1)
    seen = []
    board.add_listener(seen.append)
    board.ev_set_pilot("A")
    board.advance(0.02)
    board.ev_set_pilot("B")
    board.advance(0.5)
    assert [e for e in seen if isinstance(e, PilotStateChanged)] == []


async def test_listeners_and_queues_see_the_same_events_in_order():
    board = SimBoard()
    queue = board.subscribe()
    seen = []
    board.add_listener(seen.append)
    board.ev_set_pilot("B")
    board.advance(0.1)
    board.ev_set_pilot("C")
    board.advance(0.1)
    assert drain(queue) == seen and len(seen) == 2


async def test_capacitive_inlet_ramps_towards_target_limited_by_current():
    board = SimBoard()
    board.ev_set_pilot("C")
    board.advance(0.1)
    await board.close_contactors()
    await board.set_dc_setpoint(500, 2)          # 2 A into 2 mF: 1000 V/s
    board.advance(0.25)
    mid = await board.read_dc_output()
    assert 200 < mid.voltage_v < 300 and mid.current_a == pytest.approx(2, rel=0.01)
    board.advance(1.0)
    end = await board.read_dc_output()
    assert end.voltage_v == pytest.approx(500) and abs(end.current_a) < 0.01


async def test_current_demand_delivers_current_and_meter_counts_energy():
    board = SimBoard()
    await charging_dc(board)
    out = await board.read_dc_output()
    assert out.current_a == pytest.approx(100) and out.voltage_v == pytest.approx(405)
    before = (await board.read_meter()).energy_wh
    board.advance(36.0)                            # 40.5 kW for 36 s = 405 Wh
    meter = await board.read_meter()
    assert meter.energy_wh - before == pytest.approx(405, rel=0.01)
    assert meter.power_w == pytest.approx(40500)


async def test_signed_meter_reading_is_ocmf_with_a_valid_signature():
    board = SimBoard()
    await charging_dc(board)
    reading = await board.read_meter(signed=True)
    assert reading.signed is not None and reading.signed.format == "OCMF"
    _, body, sig = reading.signed.data.decode().split("|")
    import json
    signature = bytes.fromhex(json.loads(sig)["SD"])
    sim_meter_public_key().verify(signature, body.encode(), ec.ECDSA(hashes.SHA256()))
    assert json.loads(body)["RD"][0]["RV"] == pytest.approx(reading.energy_wh / 1000, abs=1e-4)


async def test_signed_reading_is_deterministic():
    a, b = SimBoard(), SimBoard()
    for board in (a, b):
        await charging_dc(board)
    assert (await a.read_meter(True)).signed == (await b.read_meter(True)).signed


async def test_same_script_gives_identical_event_trace_and_readings():
    async def scripted() -> tuple[list, object]:
        board = SimBoard()
        trace: list = []
        board.add_listener(trace.append)
        await charging_dc(board)
        board.inject_isolation_resistance(50_000)
        await board.wait_background()
        return trace, await board.read_meter(signed=True)

    first, second = await scripted(), await scripted()
    assert first == second
    assert any(isinstance(e, SafeStateEntered) for e in first[0])


async def test_welded_contactor_is_detected_on_open():
    board = SimBoard(auto_safe_state=False)
    await charging_dc(board)
    seen = []
    board.add_listener(seen.append)
    board.inject_welded_contactor()
    await board.dc_off()
    with pytest.raises(ContactorError, match="welded"):
        await board.open_contactors()
    assert ContactorFault(at=seen[0].at, kind=ContactorFaultKind.WELDED) in seen
    assert board.contactors_closed is True


async def test_contactor_that_fails_to_close_is_reported_and_commanded_open_again():
    board = SimBoard(auto_safe_state=False)
    board.inject_contactor_fails_to_close()
    with pytest.raises(ContactorError, match="did not close"):
        await board.close_contactors()
    assert board.plant.contactors_command is False


async def test_unlock_refused_while_contactors_closed_or_voltage_present():
    board = SimBoard()
    await charging_dc(board)
    with pytest.raises(UnsafeToUnlock, match="contactors not proven open"):
        await board.unlock()
    await board.dc_off()
    board.advance(1.0)
    await board.open_contactors()
    # EV contactors still closed: battery voltage sits on the cable
    with pytest.raises(UnsafeToUnlock, match="output at 400 V"):
        await board.unlock()
    assert board.lock_state is LockState.LOCKED
    board.ev_close_contactors(False)
    board.advance(1.0)                              # bleeder discharges the cable
    await board.unlock()
    assert board.lock_state is LockState.UNLOCKED


async def test_jammed_lock_raises_and_publishes_lock_fault():
    board = SimBoard()
    seen = []
    board.add_listener(seen.append)
    board.inject_lock_failure()
    with pytest.raises(LockError):
        await board.lock()
    assert any(isinstance(e, LockFault) for e in seen)


async def test_safe_state_waits_for_discharge_then_unlocks():
    board = SimBoard()
    await charging_dc(board)
    board.ev_close_contactors(False)
    queue = board.subscribe()
    report = await board.safe_state(SafeStateReason.SESSION_END)
    assert report.safe and report.unlocked and report.problems == ()
    assert report.pilot == PilotSignal.x1() and board.pilot_signal == PilotSignal.x1()
    assert report.residual_voltage_v <= 60
    assert board.plant.dc_enabled is False and board.contactors_closed is False
    assert [type(e) for e in drain(queue)][-1] is SafeStateEntered


async def test_safe_state_with_welded_contactor_keeps_lock_and_signals_state_f():
    board = SimBoard()
    await charging_dc(board)
    board.inject_welded_contactor()
    report = await board.safe_state(SafeStateReason.CONTACTOR_FAULT)
    assert report.welded and not report.safe and not report.unlocked
    assert board.lock_state is LockState.LOCKED
    assert board.pilot_signal.kind is PilotSignalKind.STATE_F
    assert report.current_zeroed


async def test_isolation_fault_triggers_safe_state_by_itself():
    board = SimBoard(capabilities=DcCapabilities(1000, 200, 150_000))
    await charging_dc(board)
    queue = board.subscribe()
    board.inject_isolation_resistance(300_000)      # 300 ohm/V: warning only
    board.inject_isolation_resistance(50_000)       # 50 ohm/V: fault
    await board.wait_background()
    events = drain(queue)
    states = [e.reading.state for e in events if isinstance(e, IsolationChanged)]
    assert states == [IsolationState.WARNING, IsolationState.FAULT]
    entered = [e for e in events if isinstance(e, SafeStateEntered)]
    assert len(entered) == 1 and entered[0].report.reason is SafeStateReason.ISOLATION_FAULT
    assert board.contactors_closed is False
    assert board.pilot_signal == PilotSignal.state_f()
    with pytest.raises(ContactorError, match="isolation"):
        await board.close_contactors()


async def test_emergency_stop_opens_contactors_and_blocks_restart_until_released():
    board = SimBoard()
    await charging_dc(board)
    queue = board.subscribe()
    board.press_emergency_stop()
    await board.wait_background()
    events = drain(queue)
    assert isinstance(events[0], EmergencyStopChanged) and events[0].active
    report = board.last_safe_state
    assert report.reason is SafeStateReason.EMERGENCY_STOP and report.contactors_open
    assert board.pilot_signal == PilotSignal.state_f()
    with pytest.raises(ContactorError):
        await board.close_contactors()
    with pytest.raises(BoardError):
        await board.set_pilot(PilotSignal.hlc())
    board.release_emergency_stop()
    await board.close_contactors()
    assert board.contactors_closed is True


async def test_unplug_with_contactors_closed_enters_safe_state():
    board = SimBoard()
    await charging_dc(board)
    board.ev_close_contactors(False)
    board.ev_set_pilot("A")
    board.advance(0.1)
    await board.wait_background()
    assert board.last_safe_state.reason is SafeStateReason.EV_UNPLUGGED
    assert board.contactors_closed is False


async def test_setpoints_outside_capabilities_are_rejected():
    board = SimBoard(capabilities=DcCapabilities(500, 100, 30_000))
    with pytest.raises(SetpointOutOfRange, match="voltage"):
        await board.set_dc_setpoint(600, 10)
    with pytest.raises(SetpointOutOfRange, match="power"):
        await board.set_dc_setpoint(400, 100)
    with pytest.raises(SetpointOutOfRange, match="unidirectional"):
        await board.set_dc_setpoint(400, -10)


async def test_bidirectional_module_discharges_and_meter_counts_export():
    caps = DcCapabilities(1000, 200, 150_000, max_discharge_current_a=50,
                          max_discharge_power_w=20_000)
    board = SimBoard(capabilities=caps)
    await charging_dc(board)
    with pytest.raises(SetpointOutOfRange, match="discharge"):
        await board.set_dc_setpoint(450, -60)
    await board.set_dc_setpoint(450, -40)
    board.advance(2.0)
    assert (await board.read_dc_output()).current_a == pytest.approx(-40)
    meter = await board.read_meter()
    assert meter.power_w < 0 and meter.energy_exported_wh > 0


async def test_ac_basic_charging_current_follows_pwm_duty():
    from hal.sim import SimPlant
    board = SimBoard(plant=SimPlant(ac=True, ev_ac_current_draw_a=32))
    board.ev_set_pilot("B")
    board.advance(0.1)
    await board.set_pilot(PilotSignal.nominal(16))
    board.ev_set_pilot("C")
    board.advance(0.1)
    await board.close_contactors()
    board.advance(0.1)
    meter = await board.read_meter()
    assert meter.current_a == pytest.approx(16, abs=0.05) and meter.voltage_v == 230


async def test_temperatures_are_readable_and_injectable():
    board = SimBoard()
    board.inject_temperature("connector", 91.5)
    assert (await board.read_temperatures())["connector"] == 91.5


async def test_over_temperature_enters_safe_state_and_blocks_until_cooled():
    board = SimBoard(limits=SafetyLimits(max_temperature_c=90, temperature_hysteresis_c=5))
    await charging_dc(board)
    queue = board.subscribe()
    board.inject_temperature("connector", 95.0)
    await board.wait_background()
    events = drain(queue)
    assert OverTemperature(at=events[0].at, sensor="connector", celsius=95.0, active=True) \
        == events[0]
    assert board.last_safe_state.reason is SafeStateReason.OVER_TEMPERATURE
    assert board.contactors_closed is False
    board.inject_temperature("connector", 87.0)          # inside the hysteresis band
    with pytest.raises(ContactorError, match="over-temperature"):
        await board.close_contactors()
    board.inject_temperature("connector", 80.0)
    assert drain(queue)[-1] == OverTemperature(at=board.plant.now, sensor="connector",
                                               celsius=80.0, active=False)
    await board.close_contactors()


async def test_broken_listener_does_not_stop_the_safety_reaction():
    board = SimBoard()
    await charging_dc(board)

    def broken(event):
        raise RuntimeError("listener bug")

    board.add_listener(broken)
    board.press_emergency_stop()
    await board.wait_background()
    assert board.last_safe_state.reason is SafeStateReason.EMERGENCY_STOP


async def test_realtime_board_debounces_on_the_event_loop_clock():
    board = SimBoard(realtime=True, pilot_debounce_s=0.02)
    async with board:
        queue = board.subscribe()
        board.ev_set_pilot("B")
        event = await asyncio.wait_for(queue.get(), 1.0)
        assert event.state is PilotState.B


async def test_ac_car_draws_current_under_hlc_pwm():
    """At 5 % duty (ISO 15118 HLC) the car takes what the V2G messages allow; the simulated
    meter counts that energy."""
    from hal.pilot import PilotSignal
    from hal.sim import SimBoard, SimPlant

    board = SimBoard(plant=SimPlant(ac=True))
    await board.start()
    board.ev_set_pilot("B")
    board.advance(0.1)
    await board.set_pilot(PilotSignal.hlc())
    board.ev_set_pilot("C")
    board.advance(0.1)
    await board.close_contactors()
    board.advance(10.0)
    meter = await board.read_meter()
    assert meter.current_a > 0 and meter.energy_wh > 0
    await board.close()
