"""Build the board a board configuration describes: ``board = board_from_config(config)``.

The daemon's only entry into ``hal``: it never names a board class itself.
"""

from __future__ import annotations

from hal.base import BaseBoard
from hal.board import BoardError, DcCapabilities, SafetyLimits
from secc.config import BoardConfig


def capabilities_from_config(config: BoardConfig) -> DcCapabilities:
    b = config.board
    return DcCapabilities(
        max_voltage_v=b.max_voltage_v, max_current_a=b.max_current_a,
        max_power_w=b.max_power_w, min_voltage_v=b.min_voltage_v,
        max_discharge_current_a=b.max_discharge_current_a,
        max_discharge_power_w=b.max_discharge_power_w)


def limits_from_config(config: BoardConfig) -> SafetyLimits:
    b = config.board
    return SafetyLimits(
        contactor_feedback_timeout_s=b.contactor_feedback_timeout,
        lock_feedback_timeout_s=b.lock_feedback_timeout,
        unlock_max_current_a=b.unlock_max_current_a,
        unlock_max_voltage_v=b.unlock_max_voltage_v,
        discharge_timeout_s=b.discharge_timeout,
        max_temperature_c=b.max_temperature_c,
        insulation_test_hold_s=b.insulation_test_hold)


def serial_link(config: BoardConfig) -> dict:
    """SerialBoard's link arguments (port, baud, timing) from ``[serial]``."""
    from hal.mcu_protocol import LinkTiming

    serial = config.serial
    assert serial.port is not None          # the config loader requires it where needed
    timing = LinkTiming(heartbeat_s=serial.heartbeat_ms / 1000,
                        link_timeout_s=serial.link_timeout_ms / 1000,
                        mcu_timeout_s=3 * serial.heartbeat_ms / 1000,
                        ack_timeout_s=serial.ack_timeout_ms / 1000,
                        max_retries=serial.max_retries)
    return {"port": serial.port, "baud": serial.baud, "timing": timing}


def board_from_config(config: BoardConfig, *, realtime: bool = True) -> BaseBoard:
    """A not-yet-started board; ``await board.start()`` (serial: then ``wait_connected()``).

    ``realtime=False`` gives a simulated board on virtual time (tests); real boards ignore it.
    """
    common = dict(capabilities=capabilities_from_config(config),
                  limits=limits_from_config(config),
                  pilot_debounce_s=config.pilot.debounce_ms / 1000)
    kind = config.board.kind
    if kind == "sim":
        from hal.sim import SimBoard, SimPlant

        return SimBoard(plant=SimPlant(ac=config.board.output == "ac",
                                       meter_signs=config.sim.signed_meter),
                        realtime=realtime, **common)
    if kind == "serial":
        from hal.serial_board import SerialBoard

        return SerialBoard(**serial_link(config), **common)
    if kind == "gpio":
        from hal.gpio_board import GpioBoardSpec

        g = config.gpio
        assert g.contactor is not None          # the config loader requires it for "gpio"
        return GpioBoardSpec(
            chip=g.chip, contactor=g.contactor, pwm=g.pwm, cp_adc=g.cp_adc,
            cp_adc_scale=g.cp_adc_scale, cp_adc_offset=g.cp_adc_offset,
            contactor_feedback=g.contactor_feedback, lock=g.lock, lock_feedback=g.lock_feedback,
            relays=g.relays, emergency_stop=g.emergency_stop, active_low=g.active_low,
            pilot=g.pilot, pp_adc=g.pp_adc, pp_adc_scale=g.pp_adc_scale,
            pp_pullup_ohm=g.pp_pullup_ohm, pp_reference_v=g.pp_reference_v,
        ).build(serial=serial_link(config) if g.pilot == "mcu" else None, **common)
    raise BoardError(f'board kind "{kind}" is not implemented in this build (use "sim", '
                     '"serial" or "gpio")')
