"""The simulated board's control-pilot hook (Unix socket, JSON lines) and the car that
follows the session by itself."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

from hal.pilot import PilotSignal, PilotState
from hal.sim import SimBoard
from hal.sim_control import SessionFollower, SimControlServer


async def ask(reader, writer, request) -> dict:
    writer.write((request if isinstance(request, bytes) else json.dumps(request).encode())
                 + b"\n")
    await writer.drain()
    return json.loads(await reader.readline())


async def test_a_tester_sets_the_cp_state_and_reads_pwm_contactors_and_lock(tmp_path):
    board = SimBoard()
    server = SimControlServer(board, str(tmp_path / "sim.sock"))
    await server.start()
    try:
        reader, writer = await asyncio.open_unix_connection(str(tmp_path / "sim.sock"))
        assert (await ask(reader, writer, {"cmd": "cp", "state": "b"})) == {"ok": True,
                                                                             "cp": "B"}
        board.advance(0.1)                                   # the board debounces
        await board.set_pilot(PilotSignal.hlc(5.0))
        await board.close_contactors()
        await board.lock()
        status = await ask(reader, writer, {"cmd": "status"})
        assert status["cp_raw"] == "B" and status["cp"] == "B"
        assert status["pwm"] == "pwm" and status["duty_percent"] == 5.0
        assert status["contactors_closed"] is True and status["lock"] == "locked"
        await ask(reader, writer, {"cmd": "cp", "state": "E"})
        board.advance(0.1)
        assert board.pilot_state is PilotState.E
        await board.wait_background()                        # state E: the board goes safe
        status = await ask(reader, writer, {"cmd": "status"})
        assert status["pwm"] == "state_f" and status["contactors_closed"] is False
        bad = await ask(reader, writer, {"cmd": "cp", "state": "Z"})
        assert bad["ok"] is False and "A B C D E F" in bad["error"]
        assert (await ask(reader, writer, b"{not json"))["ok"] is False
        assert (await ask(reader, writer, {"cmd": "fly"}))["ok"] is False
        writer.close()
    finally:
        await server.close()
    assert not (tmp_path / "sim.sock").exists()


def test_the_following_car_closes_s2_only_after_power_delivery_start():
    board = SimBoard()
    car = SessionFollower(board, battery_voltage_v=410.0)
    car.plug_in()
    assert board.plant.pilot_raw is PilotState.B
    for kind in ("SessionStarted", "Authorized"):
        car.on_session_event(SimpleNamespace(kind=kind))
        assert board.plant.pilot_raw is PilotState.B
    car.on_session_event(SimpleNamespace(kind="ChargingStarted"))
    assert board.plant.pilot_raw is PilotState.C and board.plant.ev_contactors_closed
    car.on_session_event(SimpleNamespace(kind="ChargingStopped"))
    assert board.plant.pilot_raw is PilotState.B and not board.plant.ev_contactors_closed
