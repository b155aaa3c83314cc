"""The session driver over a real TCP connection with the simulated board: SupportedAppProtocol,
then a DIN 70121 session to the end; malformed input ends in safe state."""

from __future__ import annotations

import asyncio
import socket

import pytest

import exi_schemas
from exi_schemas.generated import appprotocol as AP
from exi_schemas.generated import din as M
from hal.sim import SimBoard
from secc.session import SessionSettings, run_v2g_session
from secc.session.controller import BoardController
from secc.v2gtp import PayloadType, V2GTPConnection
from tests.din.conftest import REQ_FIELD, ev_status, pv  # noqa: F401

DIN_NS = "urn:din:70121:2012:MsgDef"


def sap_request(*offers):
    return AP.supportedAppProtocolReq(app_protocol=[
        AP.AppProtocolType(protocol_namespace=ns, version_number_major=2, version_number_minor=0,
                           schema_id=sid, priority=prio) for ns, sid, prio in offers])


def din_message(name, body, sid):
    return exi_schemas.encode(M.V2G_Message(header=M.MessageHeaderType(session_id=sid),
                                            body=M.BodyType(**{REQ_FIELD[name]: body})))


class ScriptedEv:
    def __init__(self, conn):
        self.conn = conn
        self.sid = bytes(8)

    async def request(self, name, body):
        await self.conn.send(PayloadType.EXI, din_message(name, body, self.sid))
        msg = await self.conn.receive(5)
        decoded = exi_schemas.decode(msg.payload, "din")
        self.sid = decoded.header.session_id
        return next(getattr(decoded.body, k) for k in decoded.body.__slots__
                    if getattr(decoded.body, k) is not None)

    async def until_finished(self, name, body):
        for _ in range(100):
            res = await self.request(name, body)
            if getattr(res, "evse_processing", "Finished") == "Finished":
                return res
            await asyncio.sleep(0.02)
        raise AssertionError(f"{name} never finished")


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
        await ev_conn.send(PayloadType.EXI, exi_schemas.encode(sap_request(
            ("urn:tesla:din:2018:MsgDef", 2, 1), (DIN_NS, 1, 2))))
        sap = exi_schemas.decode((await ev_conn.receive(5)).payload, "appprotocol")
        assert sap.response_code == "OK_SuccessfulNegotiation" and sap.schema_id == 1
        res = await ev.request("SessionSetupReq", M.SessionSetupReqType(evccid=b"\x02" * 6))
        assert res.response_code == "OK_NewSessionEstablished" and ev.sid != bytes(8)
        await ev.request("ServiceDiscoveryReq", M.ServiceDiscoveryReqType())
        await ev.request("ServicePaymentSelectionReq", M.ServicePaymentSelectionReqType(
            selected_payment_option="ExternalPayment",
            selected_service_list=M.SelectedServiceListType(
                selected_service=[M.SelectedServiceType(service_id=1)])))
        await ev.until_finished("ContractAuthenticationReq", M.ContractAuthenticationReqType())
        await ev.until_finished("ChargeParameterDiscoveryReq", M.ChargeParameterDiscoveryReqType(
            ev_requested_energy_transfer_type="DC_extended",
            dc_ev_charge_parameter=M.DC_EVChargeParameterType(
                dc_ev_status=ev_status(), ev_maximum_current_limit=pv(125, "A"),
                ev_maximum_voltage_limit=pv(450, "V"))))
        board.ev_set_pilot("C")
        await ev.until_finished("CableCheckReq", M.CableCheckReqType(dc_ev_status=ev_status()))
        board.ev_set_battery_voltage(380.0)
        for _ in range(100):
            res = await ev.request("PreChargeReq", M.PreChargeReqType(
                dc_ev_status=ev_status(), ev_target_voltage=pv(380, "V"),
                ev_target_current=pv(2, "A")))
            if abs(res.evse_present_voltage.value * 10 ** res.evse_present_voltage.multiplier
                   - 380) < 20:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("pre-charge never reached the target")
        await ev.request("PowerDeliveryReq", M.PowerDeliveryReqType(ready_to_charge_state=True))
        board.ev_close_contactors(True)
        for _ in range(20):
            res = await ev.request("CurrentDemandReq", M.CurrentDemandReqType(
                dc_ev_status=ev_status(), ev_target_current=pv(50, "A"),
                ev_target_voltage=pv(400, "V"), charging_complete=False))
            assert res.response_code == "OK"
            await asyncio.sleep(0.01)
        out = await board.read_dc_output()
        assert out.current_a > 1.0  # the simulated power module really delivers current
        await ev.request("PowerDeliveryReq", M.PowerDeliveryReqType(ready_to_charge_state=False))
        board.ev_close_contactors(False)
        await ev.request("WeldingDetectionReq", M.WeldingDetectionReqType(dc_ev_status=ev_status()))
        res = await ev.request("SessionStopReq", M.SessionStopType())
        assert res.response_code == "OK"
        summary = await asyncio.wait_for(done, 5)
    assert summary.protocol == "din" and summary.final_state == "Terminated"
    assert summary.requests >= 12 and summary.session_id == ev.sid.hex()
    assert board.contactors_closed is False
    kinds = [e.kind for e in controller.events]
    assert kinds[0] == "SessionStarted" and "ChargingStarted" in kinds and "SessionStopped" in kinds


async def test_garbage_exi_mid_session_closes_and_goes_safe(board):
    controller = BoardController(board)
    settings = SessionSettings(evse_id="00", protocols=("din",))
    server, ev_conn, done = await loopback_pair(
        lambda conn: run_v2g_session(conn, settings, controller))
    async with server:
        ev = ScriptedEv(ev_conn)
        await ev_conn.send(PayloadType.EXI, exi_schemas.encode(sap_request((DIN_NS, 1, 1))))
        await ev_conn.receive(5)
        await ev.request("SessionSetupReq", M.SessionSetupReqType(evccid=b"\x02" * 6))
        await board.close_contactors()
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
    controller = BoardController(board)
    settings = SessionSettings(evse_id="00", protocols=("din",))
    server, ev_conn, done = await loopback_pair(
        lambda conn: run_v2g_session(conn, settings, controller))
    async with server:
        ev = ScriptedEv(ev_conn)
        await ev_conn.send(PayloadType.EXI, exi_schemas.encode(sap_request((DIN_NS, 1, 1))))
        await ev_conn.receive(5)
        await ev.request("SessionSetupReq", M.SessionSetupReqType(evccid=b"\x02" * 6))
        await board.close_contactors()
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
