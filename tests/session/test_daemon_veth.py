"""The daemon across the simulated PLC link: SDP, TCP or TLS, SupportedAppProtocol and a
DIN 70121 session, the EV in its own network namespace; unplugging mid-session is safe."""

from __future__ import annotations

import asyncio

from secc.boards import board_from_config
from secc.config import loads_board_config
from secc.daemon import SeccDaemon, server_tls_context
from secc.sdp.messages import Security
from secc.tls.context import iso2_client_context
from secc.v2gtp import PayloadType
from sim.ev_transport import connect_to_discovered, discover_secc, run_secc_and_ev, wait_for_event
from sim.testing.waits import wait_until
from tests.session.din_script import DIN_NS, ScriptedEv

BOARD = """
[board]
name = "veth-test"
kind = "sim"
evse_id = "DE*PYS*E00001*1"
[plc]
interface = "{iface}"
start_at_sdp = true
[v2g]
protocols = ["iso2", "din"]
tls = "{tls}"
certificate_dir = "{certs}"
"""


def daemon_runner(link, tls, certs, script):
    """SECC daemon in the secc namespace; ``script(ev_conn, board, loop)`` in the ev one."""
    config = loads_board_config(BOARD.format(iface=link.ifnames["secc"], tls=tls, certs=certs))
    holder = {}

    async def secc_main(ready, ev_done):
        board = board_from_config(config)
        daemon = SeccDaemon(config, board, link.ifnames["secc"],
                            tls_context=server_tls_context(config))
        await daemon.start()
        board.ev_set_pilot("B")
        holder.update(board=board, loop=asyncio.get_running_loop(), daemon=daemon)
        ready.set_result(True)
        await wait_for_event(ev_done)
        await wait_until(lambda: daemon.summaries, 10, "the session's summary")
        summaries = list(daemon.summaries)
        closed = board.contactors_closed
        await daemon.stop()
        return summaries, closed

    async def ev_main(_):
        security = Security.TLS if tls != "none" else Security.NO_TLS
        response = await discover_secc(link.ifnames["ev"], security)
        ctx = iso2_client_context(certs / "v2g_root.pem") if response.security is Security.TLS \
            else None
        conn = await connect_to_discovered(link.ifnames["ev"], response, ctx)
        try:
            return await script(conn, holder["board"], holder["loop"], response)
        finally:
            await conn.close()

    return run_secc_and_ev(link, secc_main, ev_main, timeout=60)


async def din_until_current_demand(conn, board, loop):
    ev = ScriptedEv(conn)
    sap = await ev.negotiate((DIN_NS, 1, 1))
    assert sap.response_code == "OK_SuccessfulNegotiation"
    await ev.charge(board, loop.call_soon_threadsafe)
    return ev


async def full_din_session(conn, board, loop, response):
    ev = await din_until_current_demand(conn, board, loop)
    res = await ev.stop(board, loop.call_soon_threadsafe)
    return response.security, res.response_code


async def unplug_mid_session(conn, board, loop, response):
    await din_until_current_demand(conn, board, loop)
    loop.call_soon_threadsafe(board.ev_set_pilot, "A")
    try:
        await conn.receive(5)  # the SECC aborts the connection
    except Exception as exc:
        return type(exc).__name__
    return "still open"


def test_din_session_over_tcp_across_the_plc_link(veth_link, tmp_path, test_pki):
    test_pki.write_secc_files(tmp_path)
    (summaries, closed), (security, code) = daemon_runner(veth_link, "none", tmp_path,
                                                          full_din_session)
    assert security is Security.NO_TLS and code == "OK"
    assert summaries[0].protocol == "din" and summaries[0].final_state == "Terminated"
    assert closed is False


def test_the_daemon_starts_one_transport_one_pilot_watch_and_one_ready(veth_link, tmp_path,
                                                                       test_pki, caplog):
    """Start-up brings up the SDP/V2G servers and the pilot watch once: a second SDP server
    would still answer after the communication set-up time has closed the first."""
    caplog.set_level("INFO", logger="pysecc")
    test_pki.write_secc_files(tmp_path)
    daemon_runner(veth_link, "none", tmp_path, full_din_session)
    said = [record.getMessage() for record in caplog.records]
    assert said.count("SDP server listening") == 1
    assert said.count("V2G server listening") == 1
    assert said.count("SECC ready") == 1


def test_din_session_over_tls_across_the_plc_link(veth_link, tmp_path, test_pki):
    test_pki.write_secc_files(tmp_path)
    (summaries, closed), (security, code) = daemon_runner(veth_link, "optional", tmp_path,
                                                          full_din_session)
    assert security is Security.TLS and code == "OK"
    assert summaries[0].requests >= 12


def test_unplug_mid_session_aborts_and_opens_contactors(veth_link, tmp_path, test_pki):
    test_pki.write_secc_files(tmp_path)
    (summaries, closed), outcome = daemon_runner(veth_link, "none", tmp_path, unplug_mid_session)
    assert outcome == "ConnectionClosed"
    assert closed is False
    assert "connection closed" in summaries[0].end_reason




SLAC_BOARD = BOARD.replace("start_at_sdp = true", "start_at_sdp = false")


def test_slac_then_din_session_across_the_plc_link(veth_link, tmp_path, test_pki):
    """Plug-in as on a real charger: 5 % PWM, SLAC with the (simulated) modem, then SDP and
    a DIN session; the EV runs EV-side SLAC first."""
    import threading

    from sim.ev_slac import run_ev
    from sim.modem import SimModem, run_modem

    config = loads_board_config(SLAC_BOARD.format(iface=veth_link.ifnames["secc"], tls="none",
                                                  certs=tmp_path))
    holder = {}
    stop_modem = threading.Event()

    async def secc_main(ready, ev_done):
        board = board_from_config(config)
        daemon = SeccDaemon(config, board, veth_link.ifnames["secc"])
        modem_ready = asyncio.get_running_loop().create_future()
        modem_task = asyncio.create_task(run_modem(
            veth_link.ifnames["secc"], SimModem(), stop_modem.is_set, timeout=60,
            on_ready=lambda: modem_ready.set_result(True)))
        await modem_ready
        await daemon.start()
        board.ev_set_pilot("B")
        holder.update(board=board, loop=asyncio.get_running_loop())
        ready.set_result(True)
        await wait_for_event(ev_done)
        await wait_until(lambda: daemon.summaries, 10, "the session's summary")
        stop_modem.set()
        await modem_task
        result = (list(daemon.summaries), list(daemon.slac_matches), board.pilot_signal)
        await daemon.stop()
        return result

    async def ev_main(_):
        slac = await run_ev(veth_link.ifnames["ev"])
        assert slac.matched, slac.reason
        response = await discover_secc(veth_link.ifnames["ev"])
        conn = await connect_to_discovered(veth_link.ifnames["ev"], response)
        try:
            return await full_din_session(conn, holder["board"], holder["loop"], response)
        finally:
            await conn.close()

    (summaries, matches, _), (_, code) = run_secc_and_ev(veth_link, secc_main, ev_main,
                                                         timeout=60)
    assert code == "OK" and summaries[0].final_state == "Terminated"
    assert len(matches) == 1 and matches[0].attenuation_db is not None


def test_din_only_board_offers_no_tls(tmp_path, test_pki):
    test_pki.write_secc_files(tmp_path)
    text = BOARD.format(iface="eth9", tls="optional", certs=tmp_path)
    assert server_tls_context(loads_board_config(text)) is not None
    din_only = text.replace('protocols = ["iso2", "din"]', 'protocols = ["din"]')
    assert server_tls_context(loads_board_config(din_only)) is None


def test_no_v2g_session_after_plug_in_ends_in_safe_state(veth_link, tmp_path, test_pki):
    """V2G_SECC_CommunicationSetup_Timeout: the car is plugged in, the link is up, but no
    session starts -> safe state with a communication error (pilot not in F)."""
    from hal.board import SafeStateReason

    text = BOARD.format(iface=veth_link.ifnames["secc"], tls="none", certs=tmp_path)
    config = loads_board_config(text + "[v2g.timers]\ncommunication_setup_timeout = 1\n")

    async def secc_side():
        from hal.board import SafeStateEntered

        board = board_from_config(config)
        daemon = SeccDaemon(config, board, veth_link.ifnames["secc"])
        await daemon.start()
        events = board.subscribe()
        loop = asyncio.get_running_loop()
        plugged = loop.time()
        board.ev_set_pilot("B")
        async with asyncio.timeout(10):
            while not isinstance(event := await events.get(), SafeStateEntered):
                pass
        waited = loop.time() - plugged
        await daemon.stop()
        return event.report, waited

    report, waited = veth_link.run_coroutine("secc", secc_side).result(30)
    assert report.reason is SafeStateReason.COMMUNICATION_ERROR
    assert waited >= 1.0   # not before the communication set-up time


def test_the_next_session_works_after_a_failed_one(veth_link, tmp_path, test_pki):
    """Garbage EXI ends the first connection in safe state; a second plug-in charges."""
    test_pki.write_secc_files(tmp_path)
    config = loads_board_config(BOARD.format(iface=veth_link.ifnames["secc"], tls="none",
                                             certs=tmp_path))
    holder = {}

    async def secc_main(ready, ev_done):
        board = board_from_config(config)
        daemon = SeccDaemon(config, board, veth_link.ifnames["secc"])
        await daemon.start()
        board.ev_set_pilot("B")
        holder.update(board=board, loop=asyncio.get_running_loop())
        ready.set_result(True)
        await wait_for_event(ev_done)
        await wait_until(lambda: len(daemon.summaries) >= 2, 10, "both sessions' summaries")
        summaries = list(daemon.summaries)
        await daemon.stop()
        return summaries

    async def ev_main(_):
        response = await discover_secc(veth_link.ifnames["ev"])
        first = await connect_to_discovered(veth_link.ifnames["ev"], response)
        ev = ScriptedEv(first)
        await ev.negotiate((DIN_NS, 1, 1))
        await first.send(PayloadType.EXI, b"\x80\x9a\xff\xff\xff\xff")
        try:
            await first.receive(5)
        except Exception:
            pass
        await first.close()
        second = await connect_to_discovered(veth_link.ifnames["ev"], response)
        try:
            return await full_din_session(second, holder["board"], holder["loop"], response)
        finally:
            await second.close()

    summaries, (_, code) = run_secc_and_ev(veth_link, secc_main, ev_main, timeout=60)
    assert "undecodable" in summaries[0].end_reason
    assert code == "OK" and summaries[1].final_state == "Terminated"
