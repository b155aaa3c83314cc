"""The whole charger against the test CSMS: EV (ev namespace) -> SECC daemon -> MQTT bus ->
OCPP bridge process -> test CSMS (secc namespace, as on a CCU). Authorization comes from the
CSMS; every transaction event arrives in order; a remote stop from the CSMS ends charging."""

from __future__ import annotations

import asyncio

from hal.factory import board_from_config
from secc.config import loads_board_config
from secc.daemon import SeccDaemon, bus_from_config, server_tls_context
from sim import session_demo
from sim.charger import STATION_ID, ChargerBackend, wait_until
from sim.ev_transport import run_secc_and_ev, wait_for_event
from sim.evcc.battery import Battery
from sim.evcc.core import EvccConfig
from sim.evcc.runner import EvSessionConfig, run_ev_session, sim_board_signals


def test_iso2_session_authorized_by_the_csms_through_the_bridge(veth_link, tmp_path, test_pki):
    test_pki.write_secc_files(tmp_path)
    name, protocol, mode, tls = session_demo.SCENARIOS[1]
    result = session_demo.run_scenario(veth_link, name, protocol, mode, tls, tmp_path, test_pki,
                                       backend=True)
    assert result.ok, result.detail
    assert "Authorize" in result.detail
    assert "Started#0(EVDetected) Updated#1(Authorized)" in result.detail


def test_remote_stop_from_the_csms_stops_the_car(veth_link, tmp_path, test_pki):
    test_pki.write_secc_files(tmp_path)
    board_text = session_demo.BOARD.format(output="dc", max_current=200,
                                           iface=veth_link.ifnames["secc"], certs=tmp_path)
    board_text = board_text.replace("start_at_sdp = false", "start_at_sdp = true")
    box = {}

    async def secc_main(ready, ev_done):
        stack = await ChargerBackend(tmp_path).start()
        config = loads_board_config(board_text + stack.board_bus_section())
        bus, authorizer = bus_from_config(config)
        board = board_from_config(config)
        daemon = SeccDaemon(config, board, veth_link.ifnames["secc"], authorizer=authorizer,
                            bus=bus, tls_context=server_tls_context(config))
        await daemon.start()
        board.ev_set_pilot("B")
        ready.set_result((board, asyncio.get_running_loop()))

        def charging():
            return any(e.get("transactionInfo", {}).get("chargingState") == "Charging"
                       for e in stack.csms.messages("TransactionEvent"))
        assert await wait_until(charging, 30), stack.transaction_summary()
        tid = stack.csms.messages("TransactionEvent")[0]["transactionInfo"]["transactionId"]
        box["stop_answer"] = await stack.csms.call(STATION_ID, "RequestStopTransaction",
                                                   {"transactionId": tid})
        await wait_for_event(ev_done)
        await bus.flush(20)
        await wait_until(lambda: any(e.startswith("Ended") for e in stack.transaction_summary()),
                         10)
        events = stack.csms.messages("TransactionEvent")
        await daemon.stop()
        await stack.stop()
        return events

    async def ev_main(board_and_loop):
        return await run_ev_session(EvSessionConfig(
            on_signals=sim_board_signals(*board_and_loop), interface=veth_link.ifnames["ev"],
            protocol="iso2", mode="dc", battery=Battery(soc=30, target_soc=95),
            evcc=EvccConfig(loop_interval=0.05, repeat_interval=0.05)))

    events, ev = run_secc_and_ev(veth_link, secc_main, ev_main, timeout=120)
    assert box["stop_answer"]["status"] == "Accepted"
    assert ev.ok and ev.sessions[-1].stop_reason is not None
    ended = events[-1]
    assert ended["eventType"] == "Ended" and ended["triggerReason"] == "RemoteStop"
    assert ended["transactionInfo"]["stoppedReason"] == "Remote"
    assert [e["seqNo"] for e in events] == list(range(len(events)))
    # the meter signs the register at the transaction's begin and end (OCMF)
    for event in (events[0], ended):
        energy = next(v for v in event["meterValue"][0]["sampledValue"]
                      if v.get("measurand", "Energy.Active.Import.Register")
                      == "Energy.Active.Import.Register")
        assert energy["signedMeterValue"]["encodingMethod"] == "OCMF"
        assert energy["signedMeterValue"]["signingMethod"] == "ECDSA-secp256r1-SHA256"
        assert_ocmf_signature_valid(energy["signedMeterValue"])


def assert_ocmf_signature_valid(signed):
    """The CSMS can check the meter's signature with the key it was given."""
    import base64
    import json

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    _, payload, sig = base64.b64decode(signed["signedMeterData"]).decode().split("|")
    key = serialization.load_der_public_key(base64.b64decode(signed["publicKey"]))
    key.verify(bytes.fromhex(json.loads(sig)["SD"]), payload.encode(),
               ec.ECDSA(hashes.SHA256()))


