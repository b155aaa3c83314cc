"""Plug & Charge end to end: the simulated car (ev namespace) with a contract credential,
over SDP and TLS 1.2 across the veth pair, to the whole charger in the secc namespace
(SECC daemon -> MQTT bus -> OCPP bridge process -> test CSMS). The CSMS must receive
Authorize with the eMAID (type eMAID) and the contract's OCSP hash data; the car charges."""

from __future__ import annotations

from sim.charger import pnc_car, run_charger_session


def test_plug_and_charge_over_tls_authorized_by_the_csms_with_emaid_and_ocsp_data(
        veth_link, tmp_path, test_pki):
    test_pki.write_secc_files(tmp_path)  # mo_root.pem is there: the SECC checks the chain
    contract = test_pki.issue_contract()

    car = pnc_car(veth_link, tmp_path, "iso2", contract)
    run, ev = run_charger_session(veth_link, tmp_path, car, pnc=True)
    authorize, summaries = run.messages.get("Authorize", []), run.summaries
    assert ev.ok, ev.summary()
    assert ev.tls_version == "TLSv1.2" and ev.protocol == "iso2"
    steps = [step for record in ev.sessions for step in record.steps_sent]
    assert steps[:4] == ["SessionSetup", "ServiceDiscovery", "PaymentServiceSelection",
                         "PaymentDetails"]
    assert ev.loop_iterations == 3 and summaries[0].final_state == "Terminated"
    (request,) = authorize
    assert request["idToken"] == {"idToken": test_pki.emaid, "type": "eMAID"}
    hashes = request["iso15118CertificateHashData"]
    assert [h["serialNumber"] for h in hashes] == [
        format(c.serial_number, "x") for c in
        (contract.leaf.cert, contract.sub_cas[0].cert, contract.sub_cas[1].cert)]
    assert all(h["hashAlgorithm"] == "SHA256" and h["responderURL"] for h in hashes)
