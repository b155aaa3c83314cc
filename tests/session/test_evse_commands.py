"""The SECC side of CSMS commands without a network: availability kept across a restart, and
a V2G connection refused while the EVSE is inoperative."""

from __future__ import annotations

import asyncio

from hal.pilot import PilotSignalKind
from hal.sim import SimBoard
from secc.bus.client import SeccBusClient, SeccBusConfig
from secc.common.mqtt import BrokerConfig
from secc.config import loads_board_config
from secc.daemon import SeccDaemon
from secc.session.evse_commands import EvseCommands


class StateRecorder:
    """Stands in for the bus client: records the published states."""

    def __init__(self) -> None:
        self.states: list[str] = []

    async def publish_state(self, state: str, **_) -> None:
        self.states.append(state)


async def test_inoperative_survives_a_restart(tmp_path):
    board = SimBoard(realtime=True)
    await board.start()
    try:
        path = tmp_path / "availability.json"
        bus = StateRecorder()
        first = EvseCommands(board, bus, hlc_duty_percent=5.0, session_active=lambda: False,
                             stop_session=lambda cause: None, state_path=path)
        assert first.operative
        assert (await first.on_change_availability({"operational": False}))["status"] == \
            "Accepted"
        assert bus.states[-1] == "Unavailable"
        again = EvseCommands(board, bus, hlc_duty_percent=5.0, session_active=lambda: False,
                             stop_session=lambda cause: None, state_path=path)
        assert not again.operative and not again.may_offer_charging()
        await again.on_change_availability({"operational": True})
        assert EvseCommands(board, bus, hlc_duty_percent=5.0, session_active=lambda: False,
                            stop_session=lambda cause: None, state_path=path).operative
        path.write_text("{not json")
        assert EvseCommands(board, bus, hlc_duty_percent=5.0, session_active=lambda: False,
                            stop_session=lambda cause: None, state_path=path).operative
    finally:
        await board.close()


class FakeConnection:
    def __init__(self) -> None:
        self.aborted: str | None = None

    def abort(self, reason: str) -> None:
        self.aborted = reason


BOARD = """
[board]
name = "cmd-test"
kind = "sim"
evse_id = "DE*PYS*E00001*1"
[plc]
interface = "lo"
start_at_sdp = true
[bus]
enabled = true
state_dir = "{state}"
"""


async def test_daemon_refuses_a_v2g_connection_while_inoperative(tmp_path):
    config = loads_board_config(BOARD.format(state=tmp_path))
    board = SimBoard(realtime=True)
    await board.start()
    bus = SeccBusClient(SeccBusConfig(BrokerConfig("127.0.0.1", 1), evse_id=1,
                                      outbox_path=tmp_path / "outbox.db"))
    try:
        daemon = SeccDaemon(config, board, "lo", bus=bus)
        daemon.commands.publish_state = _no_bus
        await daemon.commands.on_change_availability({"operational": False})
        assert board.plant.pilot_signal.kind is PilotSignalKind.X1
        conn = FakeConnection()
        await daemon._serve(conn)
        assert conn.aborted == "EVSE inoperative" and daemon.summaries == []
        board.ev_set_pilot("B")             # plugged in while inoperative: no PWM offered
        async with asyncio.timeout(5):
            while board.pilot_state.value != "B":
                await asyncio.sleep(0.01)
        await daemon._plugged_in()
        assert board.plant.pilot_signal.kind is PilotSignalKind.X1
        await daemon.commands.on_change_availability({"operational": True})
        assert board.plant.pilot_signal.kind is PilotSignalKind.PWM   # re-offered on its own
    finally:
        bus.outbox.close()
        await board.close()


async def _no_bus(*_, **__) -> None:
    return None
