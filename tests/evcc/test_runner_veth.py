"""The EV runner over real sockets: SDP, TCP/TLS, supportedAppProtocol and a whole session
against a tiny scripted SECC responder, across the netns veth pair (no SLAC peer: the EV
starts at SDP, as on a plain veth link)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import exi_schemas as exi
import pytest
from secc.appprotocol.negotiation import DIN_2_0, ISO2_2_0
from secc.tls import CertificateDirectory, iso2_server_context
from secc.v2gtp import ConnectionClosed, PayloadType, ReceiveTimeout
from secc.v2gtp.evse import EVSETransportConfig, start_evse_transport
from sim.ev_transport import run_secc_and_ev, wait_for_event
from sim.evcc import Battery, EvccConfig, MessageTimeout, Misbehaviour
from sim.evcc import protocols
from sim.evcc.protocols import TESLA_OFFER
from sim.evcc.runner import EvSessionConfig, run_ev_session
from tests.evcc.scripted_secc import SESSION_ID, Script, ScriptedSecc

pytestmark = pytest.mark.netns


def scripted_secc_side(link, schema: str, mode: str, supported: list, seen: dict,
                       script: Script | None = None, tls_context=None):
    """SECC namespace: start_evse_transport (V2G server + SDP) with a handler that negotiates
    among ``supported`` (the real negotiation code) and answers every request with the scripted SECC."""

    async def handler(connection):
        first = await connection.receive(timeout=5)
        seen.setdefault("offers", []).append(
            [e.protocol_namespace for e in exi.decode(first.payload, "appprotocol").app_protocol])
        await connection.send(PayloadType.EXI,
                              ScriptedSecc.app_protocol_response(first.payload, supported))
        secc = ScriptedSecc(schema, mode, script or Script(old_session_id=SESSION_ID))
        seen.setdefault("seccs", []).append(secc)
        seen.setdefault("tls", []).append(connection.tls_version)
        while True:
            try:
                message = await connection.receive(timeout=5)
            except (ConnectionClosed, ReceiveTimeout):
                return
            reply = secc.respond(message.payload)
            if reply is not None:
                await connection.send(PayloadType.EXI, reply)

    async def secc_main(ready, ev_done):
        transport = await start_evse_transport(EVSETransportConfig(
            interface=link.ifnames["secc"], offer_tcp=tls_context is None,
            tls_context=tls_context), handler)
        ready.set_result(None)
        await wait_for_event(ev_done)
        await transport.close()

    return secc_main


def test_din_dc_session_over_tcp_after_a_vendor_namespace_offer(veth_link):
    seen: dict = {}
    signals: list = []
    config = EvSessionConfig(interface=veth_link.ifnames["ev"], protocol="din", mode="dc",
                             vendor_first=True, battery=Battery(max_iterations=3),
                             evcc=EvccConfig(seconds_per_iteration=30.0),
                             on_signals=signals.append)

    async def ev_main(_):
        return await run_ev_session(config)

    _, result = run_secc_and_ev(veth_link, scripted_secc_side(veth_link, "din", "dc", [DIN_2_0],
                                                              seen), ev_main)
    assert result.ok, result.failure
    assert result.protocol == "din" and result.negotiation_code == "OK_SuccessfulNegotiation"
    assert seen["offers"][0][0] == TESLA_OFFER.namespace
    # preferred first, then every other registered protocol with DC (ISO-2, maybe -20)
    assert seen["offers"][0][1:3] == ["urn:din:70121:2012:MsgDef", "urn:iso:15118:2:2013:MsgDef"]
    secc = seen["seccs"][0]
    assert secc.log[-1] == "SessionStop" and secc.loops == 3
    assert secc.requests[0].evccid == veth_link.mac("ev")  # EVCCID = the EV's MAC
    assert result.loop_iterations == 3 and result.energy_wh > 0
    assert result.response_codes[0] == ("SupportedAppProtocol", "OK_SuccessfulNegotiation")
    steps = [step for step, _ in result.timings]
    assert steps == secc.log
    assert all(0 < seconds < 0.25 for _, seconds in result.timings)
    assert {"sdp", "connect"} <= set(result.setup_seconds)
    summary = result.summary()
    assert summary["ok"] and summary["sessions"] == [SESSION_ID.hex()]
    changes = [(s.pilot, s.contactors_closed) for s in signals]
    changes = [c for i, c in enumerate(changes) if i == 0 or c != changes[i - 1]]
    assert changes == [("B", False), ("C", False), ("C", True), ("B", False)]


def test_iso2_ac_over_tls_pauses_and_resumes_with_the_old_session_id(veth_link, test_pki,
                                                                     tmp_path):
    files = test_pki.write_secc_files(tmp_path)
    server_ctx = iso2_server_context(CertificateDirectory(tmp_path))
    seen: dict = {}
    config = EvSessionConfig(
        interface=veth_link.ifnames["ev"], protocol="iso2", mode="ac", tls=True,
        v2g_root=files["v2g_root"], battery=Battery(max_iterations=2),
        evcc=EvccConfig(seconds_per_iteration=60.0),
        misbehaviour=Misbehaviour(pause_instead_of_terminate=True), resume_after_pause=True)

    async def ev_main(_):
        return await run_ev_session(config)

    _, result = run_secc_and_ev(
        veth_link, scripted_secc_side(veth_link, "iso2", "ac", [ISO2_2_0], seen,
                                      tls_context=server_ctx), ev_main)
    assert result.ok, result.failure
    assert result.protocol == "iso2" and result.tls_version == "TLSv1.2"
    assert seen["tls"] == ["TLSv1.2", "TLSv1.2"]
    first, second = result.sessions
    assert first.paused and not first.resumed
    assert second.resumed and not second.paused
    assert seen["seccs"][1].session_ids[0] == first.session_id == SESSION_ID
    assert seen["seccs"][1].requests[-1].charging_session == "Terminate"
    assert result.loop_iterations == 4


def test_silent_secc_in_the_charge_loop_times_out_after_250_ms(veth_link):
    seen: dict = {}
    config = EvSessionConfig(interface=veth_link.ifnames["ev"], protocol="iso2", mode="dc",
                             battery=Battery(max_iterations=5))

    async def ev_main(_):
        started = time.monotonic()
        result = await run_ev_session(config)
        return result, time.monotonic() - started

    _, (result, _) = run_secc_and_ev(
        veth_link, scripted_secc_side(veth_link, "iso2", "dc", [ISO2_2_0], seen,
                                      Script(silent={"CurrentDemand"})), ev_main)
    assert isinstance(result.failure, MessageTimeout)
    assert result.failure.step == "CurrentDemand" and result.failure.timeout == 0.25
    last = result.sessions[0].exchanges[-1]
    assert last.step == "CurrentDemand" and last.received_at is None


def test_cli_runs_one_session_and_prints_a_json_summary(veth_link):
    seen: dict = {}
    argv = [sys.executable, "-m", "sim.ev", "--iface", veth_link.ifnames["ev"], "--protocol",
            "din", "--mode", "dc", "--no-slac", "--max-iterations", "2", "--loop-interval",
            "0.01"]

    async def ev_main(_):
        import asyncio

        process = await asyncio.to_thread(
            lambda: subprocess.run(["ip", "netns", "exec", veth_link.namespaces["ev"], *argv],
                                   capture_output=True, text=True, timeout=30,
                                   cwd=str(__import__("pathlib").Path(__file__).parents[2])))
        return process

    _, process = run_secc_and_ev(veth_link, scripted_secc_side(veth_link, "din", "dc", [DIN_2_0],
                                                               seen), ev_main)
    assert process.returncode == 0, process.stderr
    summary = json.loads(process.stdout)
    assert summary["ok"] and summary["protocol"] == "din" and summary["loop_iterations"] == 2
    assert "SessionSetup OK (new session 8a9b0c1d2e3f4051)" in process.stderr
    assert "CurrentDemand" in summary["response_ms_median"]


def test_slac_then_sdp_then_a_din_session_on_the_simulated_plc_link(veth_link):
    """The whole car: SLAC against the real SECC SLAC driver and the simulated modem, then
    SDP, TCP and a DIN session against the scripted responder."""
    import asyncio
    import threading

    from secc.slac.config import SlacConfig
    from secc.slac.driver import SlacDriver
    from secc.slac.evse import MatchFailed, MatchSucceeded, SetPwmDuty
    from sim.modem import SimModem, run_modem

    stop_modem = threading.Event()
    modem_ready = threading.Event()
    modem = veth_link.run_coroutine("secc", lambda: run_modem(
        veth_link.ifnames["secc"], SimModem(), stop_modem.is_set, timeout=60,
        on_ready=modem_ready.set))
    assert modem_ready.wait(5), "modem simulator did not start"
    seen: dict = {}
    respond = scripted_secc_side(veth_link, "din", "dc", [DIN_2_0], seen)

    async def secc_main(ready, ev_done):
        pwm_on = asyncio.Event()

        def on_action(action):
            if isinstance(action, SetPwmDuty) and action.percent < 100:
                pwm_on.set()

        async with SlacDriver(veth_link.ifnames["secc"], SlacConfig(), on_action) as driver:
            driver.pilot_state_b()
            await asyncio.wait_for(pwm_on.wait(), 10)
            matched = asyncio.ensure_future(driver.wait_for(MatchSucceeded, MatchFailed,
                                                            timeout=15))
            await respond(ready, ev_done)  # V2G transport + SDP until the EV is done
            seen["match"] = await matched

    config = EvSessionConfig(interface=veth_link.ifnames["ev"], protocol="din", slac=True,
                             battery=Battery(max_iterations=2))

    async def ev_main(_):
        return await run_ev_session(config)

    try:
        _, result = run_secc_and_ev(veth_link, secc_main, ev_main, timeout=40)
    finally:
        stop_modem.set()
        modem.result(timeout=5)
    assert result.ok, result.failure
    assert result.slac.matched and "slac" in result.setup_seconds
    assert isinstance(seen["match"], MatchSucceeded)
    assert seen["match"].nmk == result.slac.nmk
    assert seen["seccs"][0].log[-1] == "SessionStop" and result.loop_iterations == 2


def test_no_common_protocol_is_a_negotiation_failure_and_no_session(veth_link):
    from sim.evcc import NegotiationFailed

    seen: dict = {}
    config = EvSessionConfig(interface=veth_link.ifnames["ev"], protocol="din", mode="dc",
                             offers=protocols.default_offers(["din"], "dc"))

    async def ev_main(_):
        return await run_ev_session(config)

    _, result = run_secc_and_ev(veth_link, scripted_secc_side(veth_link, "iso2", "dc",
                                                              [ISO2_2_0], seen), ev_main)
    assert isinstance(result.failure, NegotiationFailed)
    assert "Failed_NoNegotiation" in str(result.failure)
    assert result.sessions == [] and seen["seccs"][0].log == []  # nothing sent after it


def test_garbage_request_over_tcp_ends_with_the_connection_lost_at_that_step(veth_link):
    from sim.evcc import ConnectionLost

    seen: dict = {}
    config = EvSessionConfig(interface=veth_link.ifnames["ev"], protocol="din",
                             misbehaviour=Misbehaviour(garbage=frozenset({"CableCheck"})))

    async def ev_main(_):
        return await run_ev_session(config)

    _, result = run_secc_and_ev(veth_link, scripted_secc_side(veth_link, "din", "dc", [DIN_2_0],
                                                              seen), ev_main)
    assert isinstance(result.failure, ConnectionLost) and result.failure.step == "CableCheck"
    assert seen["seccs"][0].log[-1] == "ChargeParameterDiscovery"  # garbage never decoded


def test_no_secc_on_the_link_is_a_setup_failure_at_sdp(veth_link):
    from sim.evcc import SetupFailed

    config = EvSessionConfig(interface=veth_link.ifnames["ev"], sdp_retries=2)
    result = veth_link.run_coroutine("ev", lambda: run_ev_session(config)).result(timeout=10)
    assert isinstance(result.failure, SetupFailed) and result.failure.step == "SDP"
    assert result.sessions == [] and result.protocol is None
