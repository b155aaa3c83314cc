"""The daemon's way in: board configuration -> started board."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from hal.board import LockState
from secc.boards import board_from_config
from hal.mcu_sim import PtyMcu, SimulatedMcu
from hal.serial_board import SerialBoard
from hal.sim import SimBoard
from secc.config import load_board_config

REPO = Path(__file__).resolve().parents[2]


async def test_sim_config_builds_a_simulated_board_with_its_ratings():
    config = load_board_config(REPO / "board_configs/sim.toml")
    board = board_from_config(config, realtime=False)
    assert isinstance(board, SimBoard)
    assert board.dc_capabilities.max_current_a == config.board.max_current_a
    assert board.dc_capabilities.bidirectional
    assert board.limits.unlock_max_voltage_v == 60
    assert board._debouncer.debounce_s == pytest.approx(0.03)


async def test_serial_config_builds_a_serial_board_that_connects_to_the_mcu():
    config = load_board_config(REPO / "board_configs/example-serial.toml")
    runner, path, slave_fd = PtyMcu.open_pty(SimulatedMcu())
    await runner.start()
    config = dataclasses.replace(config, serial=dataclasses.replace(config.serial, port=path))
    board = board_from_config(config)
    assert isinstance(board, SerialBoard)
    assert board.link.timing.mcu_timeout_s == pytest.approx(0.3)
    try:
        await board.start()
        await board.wait_connected(2.0)
        await board.lock()
        assert board.lock_state is LockState.LOCKED
    finally:
        await board.close()
        await runner.stop()
        os.close(runner.fd)
        os.close(slave_fd)
    assert runner.mcu.plant.lock_feedback is LockState.UNLOCKED   # close() went safe


async def test_gpio_kind_builds_a_gpio_board_that_claims_nothing_before_start():
    from hal.gpio_board import GpioBoard

    board = board_from_config(load_board_config(REPO / "board_configs/example-gpio.toml"))
    assert isinstance(board, GpioBoard)
    assert board.lines is None                # lines are requested by start(), not here
    assert board.wiring.relays == ("relay0",) and board.wiring.emergency_stop
