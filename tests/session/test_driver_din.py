"""The session driver over a real TCP connection with the simulated board: SupportedAppProtocol,
then a DIN 70121 session to the end; malformed input ends in safe state."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import pytest

import exi_schemas
from exi_schemas.generated import appprotocol as AP
from exi_schemas.generated import din as M
from hal.sim import SimBoard
from secc.session import SessionSettings, run_v2g_session
from secc.session.controller import BoardController
from secc.v2gtp import PayloadType, V2GTPConnection
from tests.din.conftest import ev_status as din_ev_status
from tests.session.din_script import DIN_NS, ScriptedEv, direct, sap_request

async def loopback_pair(handler):
    done = asyncio.get_running_loop().create_future()

    async def on_client(reader, writer):
        conn = V2GTPConnection(reader, writer)
        try:
            done.set_result(await handler(conn))
        except BaseException as exc:  # surface to the test
            done.set_exception(exc)

    server = await asyncio.start_server(on_client, "::1", 0, family=socket.AF_INET6)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("::1", port)
    return server, V2GTPConnection(reader, writer), done


@pytest.fixture
async def board():
    b = SimBoard(realtime=True)
    await b.start()
    b.ev_set_pilot("B")
    yield b
    await b.close()


async def test_din_session_end_to_end_over_tcp(board):
    controller = BoardController(board)
    settings = SessionSettings(evse_id="00", protocols=("iso2", "din"))
    server, ev_conn, done = await loopback_pair(
        lambda conn: run_v2g_session(conn, settings, controller))
    async with server:
        ev = ScriptedEv(ev_conn)
        sap = await ev.negotiate(("urn:tesla:din:2018:MsgDef", 2, 1), (DIN_NS, 1, 2))
        assert sap.response_code == "OK_SuccessfulNegotiation" and sap.schema_id == 1
        await ev.charge(board, direct, loops=20)
        out = await board.read_dc_output()
        assert out.current_a > 1.0  # the simulated power module really delivers current
        res = await ev.stop(board, direct)
        assert res.response_code == "OK"
        summary = await asyncio.wait_for(done, 5)
    assert summary.protocol == "din" and summary.final_state == "Terminated"
    assert summary.requests >= 12 and summary.session_id == ev.sid.hex()
    assert board.contactors_closed is False
    kinds = [e.kind for e in controller.events]
    assert kinds[0] == "SessionStarted" and "ChargingStarted" in kinds and "SessionStopped" in kinds


@contextlib.asynccontextmanager
async def din_session_set_up(board, settings=None):
    """A DIN session through the driver, set up, contactors closed: yields (EV side, the
    driver's summary future)."""
    settings = settings or SessionSettings(evse_id="00", protocols=("din",))
    server, ev_conn, done = await loopback_pair(
        lambda conn: run_v2g_session(conn, settings, BoardController(board)))
    async with server:
        ev = ScriptedEv(ev_conn)
        await ev.negotiate((DIN_NS, 1, 1))
        await ev.request("SessionSetupReq", M.SessionSetupReqType(evccid=b"\x02" * 6))
        await board.close_contactors()
        yield ev_conn, done


async def test_garbage_exi_mid_session_closes_and_goes_safe(board):
    async with din_session_set_up(board) as (ev_conn, done):
        await ev_conn.send(PayloadType.EXI, b"\x80\xff\xff\xff\x00")
        summary = await asyncio.wait_for(done, 5)
    assert "undecodable" in summary.end_reason
    assert board.contactors_closed is False


async def test_no_common_protocol_answers_failed_and_ends(board):
    settings = SessionSettings(protocols=("din",))
    server, ev_conn, done = await loopback_pair(
        lambda conn: run_v2g_session(conn, settings, BoardController(board)))
    async with server:
        await ev_conn.send(PayloadType.EXI, exi_schemas.encode(sap_request(
            ("urn:tesla:din:2018:MsgDef", 1, 1))))
        sap = exi_schemas.decode((await ev_conn.receive(5)).payload, "appprotocol")
        assert sap.response_code == "Failed_NoNegotiation"
        summary = await asyncio.wait_for(done, 5)
    assert summary.protocol is None and summary.end_reason == "no common protocol"


async def test_ev_reset_mid_session_opens_contactors(board):
    async with din_session_set_up(board) as (ev_conn, done):
        ev_conn.abort("test reset")
        summary = await asyncio.wait_for(done, 5)
    assert "connection closed" in summary.end_reason
    assert board.contactors_closed is False


async def test_iso20_is_not_chosen_without_tls_1_3(board):
    """-20 requires TLS 1.3: an EV offering -20 first over plain TCP gets DIN."""
    pytest.importorskip("secc.iso20.adapter", reason="ISO 15118-20 package not in this build")
    settings = SessionSettings(evse_id="00", protocols=("iso20-dc", "din"))
    server, ev_conn, done = await loopback_pair(
        lambda conn: run_v2g_session(conn, settings, BoardController(board)))
    async with server:
        await ev_conn.send(PayloadType.EXI, exi_schemas.encode(AP.supportedAppProtocolReq(
            app_protocol=[AP.AppProtocolType(protocol_namespace="urn:iso:std:iso:15118:-20:DC",
                                             version_number_major=1, version_number_minor=0,
                                             schema_id=1, priority=1),
                          AP.AppProtocolType(protocol_namespace=DIN_NS, version_number_major=2,
                                             version_number_minor=0, schema_id=2, priority=2)])))
        sap = exi_schemas.decode((await ev_conn.receive(5)).payload, "appprotocol")
        assert sap.schema_id == 2
        ev_conn.abort("done")
        summary = await asyncio.wait_for(done, 5)
    assert summary.protocol == "din"


async def test_sequence_timeout_closes_the_connection_and_goes_safe(board):
    from secc.v2g.timers import V2GTimerConfig
    settings = SessionSettings(evse_id="00", protocols=("din",),
                               timers=V2GTimerConfig(sequence_timeout=0.3))
    async with din_session_set_up(board, settings) as (_, done):
        started = asyncio.get_running_loop().time()
        summary = await asyncio.wait_for(done, 5)  # the EV stays silent
        waited = asyncio.get_running_loop().time() - started
    assert 0.25 <= waited < 2.0
    assert "sequence timeout" in summary.end_reason
    assert board.contactors_closed is False


async def charged_then_stopped(board, settings):
    """A DIN session charging over TCP through the driver, then PowerDelivery(Stop) with the
    car's pilot still in C: yields nothing, returns (ev, done, loop time of the Stop answer)."""
    server, ev_conn, done = await loopback_pair(
        lambda conn: run_v2g_session(conn, settings, BoardController(board)))
    ev = ScriptedEv(ev_conn)
    await ev.negotiate((DIN_NS, 1, 1))
    await ev.charge(board, direct, loops=3)
    res = await ev.request("PowerDeliveryReq", M.PowerDeliveryReqType(ready_to_charge_state=False))
    assert res.response_code == "OK"
    stopped_at = asyncio.get_running_loop().time()
    board.ev_close_contactors(False)
    return server, ev, done, stopped_at


async def test_driver_holds_welding_detection_until_the_pilot_shows_b(board):
    """The car sends WeldingDetectionReq before its pilot shows B: the driver holds the
    answer and releases it, OK, when the pilot changes (well before the 1.5 s limit)."""
    settings = SessionSettings(evse_id="00", protocols=("din",))
    server, ev, done, stopped_at = await charged_then_stopped(board, settings)
    async with server:
        pending = asyncio.create_task(ev.request(
            "WeldingDetectionReq", M.WeldingDetectionReqType(dc_ev_status=din_ev_status())))
        await asyncio.sleep(0.3)    # the car's S2 opens a little later (its behaviour)
        assert not pending.done(), "answered while the pilot still showed C"
        board.ev_set_pilot("B")
        res = await asyncio.wait_for(pending, 2)
        answered_after = asyncio.get_running_loop().time() - stopped_at
        assert res.response_code == "OK" and answered_after < 1.5
        res = await ev.request("SessionStopReq", M.SessionStopType())
        assert res.response_code == "OK"
        summary = await asyncio.wait_for(done, 5)
    assert summary.final_state == "Terminated" and board.contactors_closed is False


async def test_driver_fails_welding_detection_when_the_pilot_stays_c(board):
    """The car keeps its pilot in C after PowerDelivery(Stop): FAILED at the CP state detection
    time (1.5 s after the Stop answer, never before), the connection closes, power off."""
    settings = SessionSettings(evse_id="00", protocols=("din",))
    server, ev, done, stopped_at = await charged_then_stopped(board, settings)
    async with server:
        res = await ev.request("WeldingDetectionReq",
                               M.WeldingDetectionReqType(dc_ev_status=din_ev_status()))
        answered_after = asyncio.get_running_loop().time() - stopped_at
        assert res.response_code == "FAILED"
        assert 1.5 <= answered_after < 5.0
        summary = await asyncio.wait_for(done, 5)
    assert summary.final_state == "Terminated" and summary.requests >= 10
    assert board.contactors_closed is False
    out = await board.read_dc_output()
    assert abs(out.current_a) < 1.0
