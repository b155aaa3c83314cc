"""The GPIO board (kind = "gpio"): lines through libgpiod on the kernel's gpio-sim where the
kernel has it, and the board's behaviour over a wiring model with the real sysfs file protocol
for the pilot PWM and the CP ADC (files in a temporary directory)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from hal.board import BoardError, ContactorError, LockState, PilotState, SafeStateReason
from hal.gpio_board import GpioBoard, GpioWiring, IioVoltage, SysfsPwm, classify_cp
from hal.pilot import PilotSignal
from secc.boards import board_from_config, capabilities_from_config, limits_from_config
from secc.config import load_board_config, loads_board_config

REPO = Path(__file__).resolve().parents[2]
GPIO_SIM = Path("/sys/kernel/config/gpio-sim")


@pytest.mark.parametrize("volts, state", [(12.0, "A"), (9.1, "B"), (6.0, "C"), (3.2, "D"),
                                          (0.0, "E"), (-12.0, "F"), (14.5, "E"), (-8.0, "E")])
def test_cp_voltage_classification(volts, state):
    assert classify_cp(volts) is PilotState(state)


class Wiring:
    """The cabinet behind the pins: a contactor coil whose auxiliary contact follows it, a lock
    motor with an end-stop switch, and a welded contactor on request."""

    def __init__(self) -> None:
        self.out: dict[str, bool] = {}
        self.welded = False
        self.estop = False

    def set(self, name: str, active: bool) -> None:
        self.out[name] = active

    def get(self, name: str) -> bool:
        if name == "contactor_feedback":
            return self.welded or self.out.get("contactor", False)
        if name == "lock_feedback":
            return self.out.get("lock", False)
        if name == "emergency_stop":
            return self.estop
        raise KeyError(name)

    def close(self) -> None:
        self.out["closed"] = True


@pytest.fixture
def rig(tmp_path):
    config = load_board_config(REPO / "board_configs" / "example-gpio.toml")
    pwm_dir = tmp_path / "pwm0"
    pwm_dir.mkdir()
    adc = tmp_path / "in_voltage0_raw"
    wiring = Wiring()

    def cp(volts: float) -> None:
        adc.write_text(f"{round((volts - config.gpio.cp_adc_offset) / config.gpio.cp_adc_scale)}\n")

    cp(12.0)
    board = GpioBoard(lambda: wiring, SysfsPwm(pwm_dir),
                      IioVoltage(adc, config.gpio.cp_adc_scale, config.gpio.cp_adc_offset),
                      wiring=GpioWiring(relays=("relay0",), emergency_stop="emergency_stop"),
                      capabilities=capabilities_from_config(config),
                      limits=limits_from_config(config),
                      pilot_debounce_s=config.pilot.debounce_ms / 1000)
    return board, wiring, cp, pwm_dir


async def wait_state(board, state: PilotState, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while board.pilot_state is not state:
        assert time.monotonic() < deadline, f"pilot stayed {board.pilot_state}"
        await asyncio.sleep(0.005)


async def test_pilot_contactors_relays_lock_and_unplug(rig):
    board, wiring, cp, pwm = rig
    await board.start()
    try:
        assert (pwm / "duty_cycle").read_text() == "1000000\n"     # X1: +12 V
        cp(9.0)
        await wait_state(board, PilotState.B)
        await board.set_pilot(PilotSignal.hlc())
        assert (pwm / "period").read_text() == "1000000\n"
        assert (pwm / "duty_cycle").read_text() == "50000\n"       # 5 %
        assert (pwm / "enable").read_text() == "1\n"
        await board.lock()
        assert board.lock_state is LockState.LOCKED
        cp(6.0)
        await wait_state(board, PilotState.C)
        await board.close_contactors()
        assert wiring.out["contactor"] and wiring.out["relay0"] and board.contactors_closed
        cp(12.0)                                                   # unplugged under load
        await wait_state(board, PilotState.A)
        await board.wait_background()
        assert not wiring.out["contactor"] and not wiring.out["relay0"]
        assert board.last_safe_state.reason is SafeStateReason.EV_UNPLUGGED
        assert board.lock_state is LockState.UNLOCKED
    finally:
        await board.close()
    assert wiring.out["closed"]


async def test_welded_contactor_and_emergency_stop(rig):
    board, wiring, cp, _ = rig
    await board.start()
    try:
        cp(6.0)
        await wait_state(board, PilotState.C)
        await board.close_contactors()
        wiring.welded = True
        with pytest.raises(ContactorError):
            await board.open_contactors()
        wiring.welded = False
        wiring.estop = True
        deadline = time.monotonic() + 2
        while not board.emergency_stop_active:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.005)
        await board.wait_background()
        assert board.last_safe_state.reason is SafeStateReason.EMERGENCY_STOP
        with pytest.raises(BoardError):
            await board.close_contactors()                        # refused while pressed
    finally:
        await board.close()


async def test_missing_gpiochip_is_a_clear_board_error(tmp_path):
    text = (REPO / "board_configs" / "example-gpio.toml").read_text().replace(
        '"/dev/gpiochip0"', '"/dev/gpiochip99"')
    board = board_from_config(loads_board_config(text))
    with pytest.raises(BoardError, match=r"/dev/gpiochip99.*\[gpio\]\.chip"):
        await board.start()


def test_gpio_board_file_needs_a_contactor_line_and_ac():
    from secc.config import ConfigError

    with pytest.raises(ConfigError) as failure:
        loads_board_config('[board]\nname = "g"\nkind = "gpio"\nevse_id = "DE*PNX*E1*1"\n')
    text = str(failure.value)
    assert "[gpio].contactor" in text and "[board].output" in text


def gpio_sim_unavailable() -> str | None:
    if not GPIO_SIM.is_dir():
        return (f"kernel gpio-sim not available ({GPIO_SIM} missing: no configfs mounted or "
                "module gpio-sim not loaded): GPIO lines are tested over the wiring model only")
    if os.geteuid() != 0:
        return "gpio-sim needs root"
    return None


@pytest.mark.skipif(gpio_sim_unavailable() is not None, reason=str(gpio_sim_unavailable()))
def test_libgpiod_lines_on_the_kernel_gpio_sim(tmp_path):
    """A simulated chip with 8 lines: our outputs show in the simulator's value files, its
    pulls show on our inputs (Documentation/admin-guide/gpio/gpio-sim.rst)."""
    from hal.gpio_board import GpiodLines

    device = GPIO_SIM / f"pysecc-{os.getpid()}"
    (device / "bank0").mkdir(parents=True)
    try:
        (device / "bank0" / "num_lines").write_text("8")
        (device / "live").write_text("1")
        chip = (device / "bank0" / "chip_name").read_text().strip()
        sysfs = Path("/sys/devices/platform") / (device / "dev_name").read_text().strip() / chip
        lines = GpiodLines(f"/dev/{chip}", {"contactor": 0, "lock": 1},
                           {"contactor_feedback": 2, "estop": 3}, frozenset({3}))
        try:
            lines.set("contactor", True)
            assert (sysfs / "sim_gpio0" / "value").read_text().strip() == "1"
            assert (sysfs / "sim_gpio1" / "value").read_text().strip() == "0"
            (sysfs / "sim_gpio2" / "pull").write_text("pull-up")
            assert lines.get("contactor_feedback") is True
            (sysfs / "sim_gpio3" / "pull").write_text("pull-down")
            assert lines.get("estop") is True                     # active low
        finally:
            lines.close()
    finally:
        (device / "live").write_text("0")
        (device / "bank0").rmdir()
        device.rmdir()


async def test_mcu_pilot_with_gpio_contactors_and_lock(tmp_path):
    """[gpio].pilot = "mcu": pilot from the simulated MCU over a pty, actuators on GPIO."""
    from hal.gpio_board import GpioMcuBoard
    from hal.mcu_sim import PtyMcu, SimulatedMcu

    runner, path, slave_fd = PtyMcu.open_pty(SimulatedMcu())
    await runner.start()
    text = (REPO / "board_configs" / "example-gpio.toml").read_text().replace(
        'pilot = "adc"', 'pilot = "mcu"') + f'\n[serial]\nport = "{path}"\n'
    config = loads_board_config(text)
    wiring = Wiring()
    assert isinstance(board_from_config(config), GpioMcuBoard)   # what the daemon would get
    board = GpioMcuBoard(lambda: wiring, path, wiring=GpioWiring(relays=("relay0",)),
                         capabilities=capabilities_from_config(config),
                         limits=limits_from_config(config), pilot_debounce_s=0.03)
    try:
        await board.start()
        await board.wait_connected(2.0)
        runner.mcu.plant.pilot_raw = PilotState.C
        await wait_state(board, PilotState.C)
        await board.lock()
        assert wiring.out["lock"] and board.lock_state is LockState.LOCKED
        await board.close_contactors()
        assert wiring.out["contactor"] and wiring.out["relay0"] and board.contactors_closed
        runner.mcu.plant.pilot_raw = PilotState.A                 # unplugged under load
        await wait_state(board, PilotState.A)
        await board.wait_background()
        assert not wiring.out["contactor"] and not wiring.out["relay0"]
        assert board.last_safe_state.reason is SafeStateReason.EV_UNPLUGGED
    finally:
        await board.close()
        await runner.stop()
        os.close(runner.fd)
        os.close(slave_fd)
    assert wiring.out["closed"]


@pytest.mark.parametrize("ohm, amps", [(1500, 13), (680, 20), (220, 32), (100, 63),
                                        (None, None), (20, None), (5000, None)])
def test_pp_resistor_to_cable_rating(ohm, amps):
    from hal.gpio_board import cable_rating

    assert cable_rating(ohm) == amps


async def test_pwm_never_offers_more_than_the_cable_carries(rig, tmp_path):
    """PP read through the ADC file: a 20 A cable caps a 32 A offer at 20 A (33.3 % duty);
    without a cable basic charging is refused; HLC (5 %) is not a current offer."""
    from hal.gpio_board import ProximitySense

    board, wiring, cp, pwm = rig
    pp_file = tmp_path / "in_voltage1_raw"
    sense = ProximitySense(IioVoltage(pp_file, 0.001), pullup_ohm=330.0, reference_v=3.3)
    board.proximity = sense

    def plug_cable(rc_ohm: float | None) -> None:
        volts = 3.3 if rc_ohm is None else 3.3 * rc_ohm / (rc_ohm + 330.0)
        pp_file.write_text(f"{round(volts / 0.001)}\n")

    plug_cable(680)
    assert board.cable_max_current_a() == 20
    await board.start()
    try:
        cp(9.0)
        await wait_state(board, PilotState.B)
        await board.set_pilot(PilotSignal.nominal(32))
        assert (pwm / "duty_cycle").read_text() == "333330\n"        # 20 A, not 32 A
        await board.set_pilot(PilotSignal.nominal(16))
        assert (pwm / "duty_cycle").read_text() == "266670\n"        # 16 A: under the rating
        await board.set_pilot(PilotSignal.hlc())
        assert (pwm / "duty_cycle").read_text() == "50000\n"
        plug_cable(None)
        with pytest.raises(BoardError, match="no charging cable detected on PP"):
            await board.set_pilot(PilotSignal.nominal(16))
    finally:
        await board.close()
