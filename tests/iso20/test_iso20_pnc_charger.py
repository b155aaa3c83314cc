"""ISO 15118-20 Plug & Charge end to end: the simulated car with a P-521 contract over SDP and
TLS 1.3 across the veth pair, to the whole charger in the secc namespace (SECC daemon -> MQTT
bus -> OCPP bridge process -> test CSMS). The CSMS must receive Authorize with the eMAID
(type eMAID) and the contract's OCSP hash data; the car charges.

The board turns PnC on with ``[v2g].plug_and_charge``; the MO root is in its certificate
directory; the driver tells the -20 core the connection is TLS.
"""

from __future__ import annotations

from sim.testing.pki import TestPKI
from sim.charger import pnc_car, run_charger_session


def test_iso20_plug_and_charge_over_tls13_authorized_by_the_csms_with_emaid_and_ocsp_data(
        veth_link, tmp_path, test_pki):
    import secc.iso20.adapter  # noqa: F401  (registers the -20 adapters)
    import sim.evcc.iso20  # noqa: F401  (registers the -20 EVCC)

    test_pki.write_secc_files(tmp_path)
    mo20 = TestPKI.iso20(emaid="DEPYSC2000001X")
    contract = mo20.issue_contract()
    (tmp_path / "mo_root.pem").write_bytes(mo20.mo_root.cert_pem)  # the daemon installs it

    vehicle = test_pki.write_vehicle_files(tmp_path / "vehicle")
    car = pnc_car(veth_link, tmp_path, "iso20", contract,
                  vehicle_tls=(vehicle["chain"], vehicle["key"]))
    run, ev = run_charger_session(veth_link, tmp_path, car, pnc=True)
    authorize, summaries = run.messages.get("Authorize", []), run.summaries
    assert ev.ok, ev.summary()
    assert ev.tls_version == "TLSv1.3" and ev.protocol == "iso20"
    record = ev.sessions[0]
    auth = [e for e in record.exchanges if e.step == "Authorization"]
    assert auth and auth[-1].evse_processing == "Finished"
    assert ev.loop_iterations == 3 and summaries[0].final_state == "Terminated"
    (request,) = authorize
    assert request["idToken"] == {"idToken": contract.emaid, "type": "eMAID"}
    hashes = request["iso15118CertificateHashData"]
    assert [h["serialNumber"] for h in hashes] == [
        format(c.serial_number, "x") for c in
        (contract.leaf.cert, contract.sub_cas[0].cert, contract.sub_cas[1].cert)]
    assert all(h["hashAlgorithm"] == "SHA256" and h["responderURL"] for h in hashes)
