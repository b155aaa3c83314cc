"""``BoardController.events`` keeps the present session's events only, and at most
``EVENTS_KEPT`` of them: a daemon that runs for months must not grow with every session."""

from __future__ import annotations

import asyncio

from secc.session import SessionSettings, run_v2g_session
from secc.session.controller import EVENTS_KEPT, BoardController
from secc.v2g.evse import PublishEvent
from tests.session.din_script import DIN_NS, ScriptedEv, direct
from tests.session.test_driver_din import board, loopback_pair  # noqa: F401 (fixture)


async def test_events_are_bounded_and_keep_the_newest():
    controller = BoardController(board=None)
    for n in range(EVENTS_KEPT * 3):
        await controller.perform(PublishEvent("MeterValues", {"n": n}))
    assert len(controller.events) == EVENTS_KEPT
    assert [e.data["n"] for e in controller.events] == list(range(EVENTS_KEPT * 2, EVENTS_KEPT * 3))


async def test_published_events_still_reach_the_publisher_when_dropped_from_the_list():
    published = []
    controller = BoardController(board=None, publish=published.append)
    for n in range(EVENTS_KEPT + 10):
        await controller.perform(PublishEvent("MeterValues", {"n": n}))
    assert len(published) == EVENTS_KEPT + 10 and len(controller.events) == EVENTS_KEPT


async def test_each_session_starts_with_an_empty_list(board):  # noqa: F811
    controller = BoardController(board)
    settings = SessionSettings(evse_id="00", protocols=("din",))
    for _ in range(2):
        server, ev_conn, done = await loopback_pair(
            lambda conn: run_v2g_session(conn, settings, controller))
        async with server:
            ev = ScriptedEv(ev_conn)
            await ev.negotiate((DIN_NS, 1, 1))
            await ev.charge(board, direct, loops=3)
            res = await ev.stop(board, direct)
            assert res.response_code == "OK"
            await asyncio.wait_for(done, 5)
        board.ev_set_pilot("B")
    kinds = [e.kind for e in controller.events]
    # the second session's events only: one start, one stop
    assert kinds.count("SessionStarted") == 1 and kinds[0] == "SessionStarted"
    assert kinds.count("SessionStopped") == 1 and "ChargingStarted" in kinds
