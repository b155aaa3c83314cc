"""The daemon's side of a paused session (secc.v2g.sleep at the edge): oscillator off and no
communication while the car sleeps; the EVSE's wake-up time or the car's BCB toggle brings the
5 % PWM and SDP back; a woken car that does not come back within the communication set-up time
puts the EVSE to sleep again (not closed until re-plug). The whole pause over the wire, with
SessionStopReq(Pause) and the resumed session: tests/conformance/resume.py."""

from __future__ import annotations

import asyncio

from hal.board import SafeStateReason
from secc.boards import board_from_config
from secc.config import loads_board_config
from secc.daemon import SeccDaemon
from secc.v2g.evse import PublishEvent
from secc.v2g.paused import PausedSession
from sim.testing.waits import wait_until

BOARD = """
[board]
name = "sleep-test"
kind = "sim"
evse_id = "DE*PYS*E00001*1"
[plc]
interface = "{iface}"
start_at_sdp = true
[v2g]
protocols = ["iso2"]
tls = "none"
certificate_dir = "{certs}"
[v2g.timers]
pause_wake_up = {wake_up}
communication_setup_timeout = 1
"""


EVCCID = bytes.fromhex("00018700001A")


def five_percent(board) -> bool:
    signal = board.pilot_signal
    return signal.kind.value == "pwm" and abs(signal.duty_percent - 5.0) < 0.5


def oscillator_off(board) -> bool:
    return board.pilot_signal.kind.value == "x1"


async def paused_daemon(link, certs, wake_up):
    config = loads_board_config(BOARD.format(iface=link.ifnames["secc"], certs=certs,
                                             wake_up=wake_up))
    board = board_from_config(config)
    daemon = SeccDaemon(config, board, link.ifnames["secc"])
    await daemon.start()
    board.ev_set_pilot("B")
    await wait_until(lambda: five_percent(board), 3.0, "5 % PWM at plug-in")
    # what a session does on SessionStopReq(Pause): safe state (X1), then the event
    await board.safe_state(SafeStateReason.SESSION_END)
    await daemon._publish(PublishEvent("SessionPaused", {}))
    assert daemon.sleep.asleep and oscillator_off(board)
    assert not daemon.transport.sdp.open
    return daemon, board


def test_the_evse_wakes_the_car_and_sleeps_again_when_it_does_not_come_back(veth_link, tmp_path):
    async def run():
        loop = asyncio.get_running_loop()
        daemon, board = await paused_daemon(veth_link, tmp_path, 0.5)
        try:
            paused = loop.time()
            await wait_until(lambda: five_percent(board), 3.0, "the EVSE's wake-up")
            woke = loop.time() - paused
            assert daemon.transport.sdp.open and not daemon.sleep.asleep
            # nobody comes: communication set-up time (1 s), safe state, asleep again
            await wait_until(lambda: daemon.sleep.asleep, 5.0, "asleep again")
            assert oscillator_off(board) and not daemon.transport.sdp.open
            # ... and still woken by the car's toggle
            board.ev_set_pilot("C")
            await asyncio.sleep(0.2)
            board.ev_set_pilot("B")
            await wait_until(lambda: five_percent(board), 3.0, "woken by the toggle")
            return woke
        finally:
            await daemon.stop()

    woke = veth_link.run_coroutine("secc", run).result(30)
    assert woke >= 0.45


def test_without_a_wake_up_time_only_the_car_wakes_the_evse_and_unplugging_ends_the_sleep(
        veth_link, tmp_path):
    async def run():
        daemon, board = await paused_daemon(veth_link, tmp_path, 0)
        try:
            daemon.paused.put(PausedSession(bytes(range(1, 9)), EVCCID, paused_at=0.0))
            await asyncio.sleep(1.0)
            assert oscillator_off(board) and daemon.sleep.asleep
            board.ev_set_pilot("A")
            await wait_until(lambda: not daemon.sleep.asleep, 3.0, "sleep ended by unplug")
            assert oscillator_off(board) and daemon._sleep_timer is None
            assert len(daemon.paused) == 0     # no resume after a re-plug
        finally:
            await daemon.stop()

    veth_link.run_coroutine("secc", run).result(30)


async def _debounced(board, state: str) -> None:
    board.ev_set_pilot(state)
    await wait_until(lambda: board.pilot_state.value == state, 2.0, f"debounced {state}")
    await asyncio.sleep(0)   # the daemon's pilot watcher takes the event


def test_a_toggle_made_while_the_paused_session_is_still_closing_wakes_the_evse(veth_link,
                                                                                tmp_path):
    """SessionStopRes(Pause) goes out before the session's SessionPaused event reaches the
    daemon (events follow the response). A car that toggles at once can complete its B -> C
    -> B while the old connection is still closing, before the daemon fell asleep: the toggle
    was made with the oscillator off, after the pause, so it is a wake-up, not lost. A C -> B
    while the 5 % PWM was still on (the car's PowerDelivery(Stop)) is not."""
    async def run():
        config = loads_board_config(BOARD.format(iface=veth_link.ifnames["secc"],
                                                 certs=tmp_path, wake_up=0))
        board = board_from_config(config)
        daemon = SeccDaemon(config, board, veth_link.ifnames["secc"])
        await daemon.start()
        try:
            await _debounced(board, "B")
            await wait_until(lambda: five_percent(board), 3.0, "5 % PWM at plug-in")
            await _debounced(board, "C")    # charging, then PowerDelivery(Stop): C -> B
            await _debounced(board, "B")    # ... with the PWM on: no wake-up later
            await board.safe_state(SafeStateReason.SESSION_END)  # SessionStopReq(Pause)
            await _debounced(board, "C")    # the car's toggle, the pause not yet published
            await _debounced(board, "B")
            assert oscillator_off(board) and not daemon.sleep.asleep
            await daemon._publish(PublishEvent("SessionPaused", {}))
            await wait_until(lambda: five_percent(board), 2.0, "woken by the early toggle")
            assert not daemon.sleep.asleep and daemon.transport.sdp.open
            # without a toggle after the oscillator went off, a pause sleeps as before
            await board.safe_state(SafeStateReason.SESSION_END)
            await daemon._publish(PublishEvent("SessionPaused", {}))
            await asyncio.sleep(0.2)
            assert daemon.sleep.asleep and oscillator_off(board)
            assert not daemon.transport.sdp.open
        finally:
            await daemon.stop()

    veth_link.run_coroutine("secc", run).result(30)
