"""The whole charger against the test CSMS: EV (ev namespace) -> SECC daemon -> MQTT bus ->
OCPP bridge process -> test CSMS (secc namespace, as on a CCU). Authorization comes from the
CSMS; every transaction event arrives in order; a remote stop from the CSMS ends charging."""

from __future__ import annotations

import re

from sim import session_demo
from sim.charger import STATION_ID, run_charger_session
from sim.evcc.battery import Battery
from sim.evcc.core import EvccConfig
from sim.evcc.runner import EvSessionConfig, sim_board_signals
from sim.testing.waits import wait_until


def test_iso2_session_authorized_by_the_csms_through_the_bridge(veth_link, tmp_path, test_pki):
    test_pki.write_secc_files(tmp_path)
    name, protocol, mode, tls = session_demo.SCENARIOS[1]
    result = session_demo.run_scenario(veth_link, name, protocol, mode, tls, tmp_path, test_pki,
                                       backend=True)
    assert result.ok, result.detail
    assert "Authorize" in result.detail
    assert "Started#0(EVDetected) Updated#1(Authorized)" in result.detail
    # the car ended its session normally: the CSMS hears so, not of an abnormal condition
    assert re.search(r"Ended#\d+\(ChargingStateChanged\)", result.detail), result.detail


def test_remote_stop_from_the_csms_stops_the_car(veth_link, tmp_path, test_pki):
    test_pki.write_secc_files(tmp_path)

    async def remote_stop_while_charging(stack, extra):
        def charging():
            return any(e.get("transactionInfo", {}).get("chargingState") == "Charging"
                       for e in stack.csms.messages("TransactionEvent"))
        assert await wait_until(charging, 30), stack.transaction_summary()
        tid = stack.csms.messages("TransactionEvent")[0]["transactionInfo"]["transactionId"]
        extra["stop_answer"] = await stack.csms.call(STATION_ID, "RequestStopTransaction",
                                                     {"transactionId": tid})

    def car(board, loop):
        return EvSessionConfig(
            on_signals=sim_board_signals(board, loop), interface=veth_link.ifnames["ev"],
            protocol="iso2", mode="dc", battery=Battery(soc=30, target_soc=95),
            evcc=EvccConfig(loop_interval=0.05, repeat_interval=0.05))

    run, ev = run_charger_session(veth_link, tmp_path, car, during=remote_stop_while_charging,
                                  timeout=120)
    events, box = run.messages["TransactionEvent"], run.extra
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


