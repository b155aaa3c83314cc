"""SerialBoard over a real pseudo-terminal: pyserial on the slave, the simulated MCU firmware on
the master. Frames really cross the tty; faults are injected in the firmware or the host."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from hal.board import (
    BoardError,
    BoardLinkChanged,
    ContactorFault,
    ContactorFaultKind,
    DcCapabilities,
    LinkDown,
    LockState,
    McuReset,
    PilotStateChanged,
    SafeStateEntered,
    SafeStateReason,
)
from hal.mcu_protocol import Frame, LinkTiming, MsgType, encode_frame
from hal.mcu_sim import PtyMcu, SimulatedMcu
from hal.pilot import PilotSignal, PilotSignalKind, PilotState
from hal.serial_board import SerialBoard
from sim.testing.waits import wait_until

TIMING = dict(heartbeat_s=0.05, link_timeout_s=0.4, mcu_timeout_s=0.2, ack_timeout_s=0.05,
              max_retries=3)


class Rig:
    def __init__(self, board: SerialBoard, mcu: SimulatedMcu, runner: PtyMcu) -> None:
        self.board, self.mcu, self.runner = board, mcu, runner

    async def until(self, predicate, timeout: float = 2.0) -> float:
        """Wait for ``predicate`` on the running loop; returns the time it took."""
        start = time.monotonic()
        await wait_until(predicate, timeout, "a condition of the serial board rig")
        return time.monotonic() - start

    async def next_event(self, queue: asyncio.Queue, kind: type, timeout: float = 2.0):
        deadline = time.monotonic() + timeout
        while True:
            event = await asyncio.wait_for(queue.get(), max(0.01, deadline - time.monotonic()))
            if isinstance(event, kind):
                return event


@pytest.fixture
async def rig():
    mcu = SimulatedMcu()
    runner, path, slave_fd = PtyMcu.open_pty(mcu)
    await runner.start()
    board = SerialBoard(path, timing=LinkTiming(**TIMING),
                        capabilities=DcCapabilities(1000, 200, 150_000), pilot_debounce_s=0.02)
    await board.start()
    await board.wait_connected(2.0)
    try:
        yield Rig(board, mcu, runner)
    finally:
        await board.close(safe=False)
        await runner.stop()
        os.close(runner.fd)
        os.close(slave_fd)


async def test_connects_and_reads_hello(rig):
    assert rig.board.link_up
    assert rig.board.hello.boot_counter == 1
    assert rig.board.hello.sensors == ("connector", "power_module")
    temps = await rig.board.read_temperatures()
    assert temps == {"connector": 25.0, "power_module": 30.0}


async def test_pilot_change_from_mcu_is_debounced_and_published(rig):
    queue = rig.board.subscribe()
    rig.mcu.plant.pilot_raw = PilotState.B
    event = await rig.next_event(queue, PilotStateChanged)
    assert (event.previous, event.state) == (PilotState.A, PilotState.B)
    assert rig.board.pilot_state is PilotState.B


async def test_commands_reach_the_hardware_and_feedback_comes_back(rig):
    board, plant = rig.board, rig.mcu.plant
    await board.set_pilot(PilotSignal.hlc())
    assert plant.pilot_signal == PilotSignal.hlc()
    await board.lock()
    assert board.lock_state is LockState.LOCKED
    await board.close_contactors()
    assert plant.contactors_feedback and board.contactors_closed is True
    await board.set_dc_setpoint(400, 2)
    await rig.until(lambda: board._status and board._status.voltage_mv >= 399_000)
    out = await board.read_dc_output()
    assert out.voltage_v == pytest.approx(400, abs=1)


async def test_signed_meter_value_crosses_the_link(rig):
    reading = await rig.board.read_meter(signed=True)
    assert reading.signed.format == "OCMF" and reading.signed.data.startswith(b"OCMF|")
    assert reading.signed.public_key


async def test_lost_command_frames_are_retried_and_executed_once(rig):
    rig.mcu.faults.drop_rx = 2            # the next two frames to the MCU vanish
    await rig.board.close_contactors()
    assert rig.mcu.faults.dropped == 2
    assert rig.board.link.stats.retransmissions >= 1
    executed = [c for c in rig.mcu.commands if c[0] == MsgType.SET_CONTACTORS]
    assert executed == [(MsgType.SET_CONTACTORS, b"\x01")]


async def test_crc_errors_are_counted_and_the_command_still_succeeds(rig):
    rig.mcu.faults.corrupt_tx = 3          # the MCU's next frames (ACK, STATUS) are damaged
    await rig.board.lock()
    assert rig.board.link.stats.crc_errors >= 1
    assert sum(c[0] == MsgType.SET_LOCK for c in rig.mcu.commands) == 1
    assert rig.board.link_up


async def test_mcu_refusal_surfaces_as_board_error(rig):
    rig.mcu.plant.emergency_stop = True
    # bypass the host-side refusal to prove the MCU refuses on its own
    with pytest.raises(BoardError, match="REFUSED"):
        await rig.board._drive_contactors(True)
    assert rig.mcu.plant.contactors_command is False


async def test_emergency_stop_reported_by_mcu_triggers_safe_state(rig):
    board = rig.board
    await board.lock()
    await board.close_contactors()
    queue = board.subscribe()
    rig.mcu.plant.emergency_stop = True
    entered = await rig.next_event(queue, SafeStateEntered)
    assert entered.report.reason is SafeStateReason.EMERGENCY_STOP
    assert entered.report.contactors_open and not rig.mcu.plant.contactors_feedback
    assert rig.mcu.plant.pilot_signal.kind is PilotSignalKind.STATE_F


async def test_host_heartbeat_loss_makes_the_mcu_open_contactors(rig):
    await rig.board.close_contactors()
    await rig.board.set_dc_setpoint(400, 2)
    assert rig.mcu.plant.contactors_feedback
    stopped = asyncio.get_running_loop().time()
    await rig.board.close(safe=False)      # the host process dies without a safe state
    await rig.until(lambda: rig.mcu.watchdog_trips, timeout=2.0)
    assert rig.mcu.watchdog_trips[0] - stopped < TIMING["mcu_timeout_s"] + 0.1
    plant = rig.mcu.plant
    assert not plant.contactors_feedback and not plant.dc_enabled
    assert plant.pilot_signal.kind is PilotSignalKind.STATE_F


async def test_silent_mcu_is_reported_as_link_loss_and_board_goes_safe(rig):
    board = rig.board
    await board.close_contactors()
    queue = board.subscribe()
    rig.mcu.silent = True                  # the MCU's TX line dies: nothing comes back
    lost = await rig.next_event(queue, BoardLinkChanged)
    assert lost.up is False and "no frame from the MCU" in lost.reason
    entered = await rig.next_event(queue, SafeStateEntered)
    report = entered.report
    assert report.reason is SafeStateReason.LINK_LOST
    assert not report.contactors_open and report.pilot is None and report.problems
    with pytest.raises(LinkDown):
        await board.close_contactors()
    # the host's blind ENTER_SAFE_STATE still reached the MCU, which opened the contactors
    await rig.until(lambda: not rig.mcu.plant.contactors_feedback)
    assert rig.mcu.watchdog_trips == []     # heartbeats kept arriving: not the watchdog
    rig.mcu.silent = False                 # TX repaired: link comes back, same boot counter
    back = await rig.next_event(queue, BoardLinkChanged)
    assert back.up is True and board.hello.boot_counter == 1


async def test_mcu_reset_is_detected_and_board_enters_safe_state(rig):
    board = rig.board
    await board.close_contactors()
    queue = board.subscribe()
    rig.runner.reboot()
    reset = await rig.next_event(queue, McuReset)
    assert reset.boot_counter == 2
    entered = await rig.next_event(queue, SafeStateEntered)
    assert entered.report.reason in (SafeStateReason.MCU_RESET, SafeStateReason.CONTACTOR_FAULT)
    await board.wait_background()
    # the link keeps working after the reset
    await board.lock()
    assert board.lock_state is LockState.LOCKED


async def test_contactor_opened_by_mcu_is_an_unexpected_open_fault(rig):
    board = rig.board
    await board.close_contactors()
    queue = board.subscribe()
    rig.mcu.plant.command_contactors(False)   # opens without a host command
    fault = await rig.next_event(queue, ContactorFault)
    assert fault.kind is ContactorFaultKind.UNEXPECTED_OPEN
    entered = await rig.next_event(queue, SafeStateEntered)
    assert entered.report.reason is SafeStateReason.CONTACTOR_FAULT


async def test_over_temperature_reported_by_mcu_triggers_safe_state(rig):
    await rig.board.close_contactors()
    queue = rig.board.subscribe()
    rig.mcu.plant.temperatures["power_module"] = 104.5
    entered = await rig.next_event(queue, SafeStateEntered)
    assert entered.report.reason is SafeStateReason.OVER_TEMPERATURE
    assert not rig.mcu.plant.contactors_feedback
    assert (await rig.board.read_temperatures())["power_module"] == 104.5


async def test_line_noise_and_malformed_payloads_are_dropped_without_harm(rig):
    board = rig.board
    noise = bytes(range(1, 256)) * 3 + b"\x00\xff\xfe\x00"
    bad_status = encode_frame(Frame(MsgType.STATUS, 0, b"\x09short"))   # valid CRC, bad body
    os.write(rig.runner.fd, noise + bad_status)
    await rig.until(lambda: board.link.stats.framing_errors + board.link.stats.crc_errors > 0)
    frames = board.link.stats.frames_in
    await rig.until(lambda: board.link.stats.frames_in >= frames + 3)   # valid frames go on
    assert board.link_up
    await board.lock()                      # and the link still works
    assert board.lock_state is LockState.LOCKED


async def test_readings_while_link_is_down_raise_link_down(rig):
    queue = rig.board.subscribe()
    rig.mcu.silent = True
    await rig.next_event(queue, BoardLinkChanged)
    with pytest.raises(LinkDown):
        await rig.board.read_dc_output()
    with pytest.raises(LinkDown):
        await rig.board.read_meter()
    assert rig.board.contactors_closed is None and rig.board.lock_state is LockState.UNKNOWN


async def test_welded_contactor_detected_through_the_mcu(rig):
    board = rig.board
    await board.lock()
    await board.close_contactors()
    rig.mcu.plant.welded = True
    report = await board.safe_state(SafeStateReason.SESSION_END)
    assert report.welded and not report.unlocked
    assert board.lock_state is LockState.LOCKED
