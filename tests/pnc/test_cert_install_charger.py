"""Contract installation end to end: a car with only its OEM provisioning credential, over
SDP and TLS 1.2 across the veth pair, to the whole charger (SECC daemon -> MQTT bus -> OCPP
bridge process -> test CSMS, whose eMSP/CPS issues a contract). The car installs the contract
(CertificateInstallation), then authorizes with it; the CSMS receives Get15118EVCertificate,
then Authorize with the new eMAID, and the car charges."""

from __future__ import annotations

import base64

import exi_schemas
from sim.charger import run_charger_session
from sim.csms import ContractProvisioning
from sim.evcc.battery import Battery
from sim.evcc.core import EvccConfig, ProvisioningCredential
from sim.evcc.runner import EvSessionConfig, sim_board_signals


def test_car_installs_a_contract_through_the_csms_then_charges_with_it(
        veth_link, tmp_path, test_pki):
    test_pki.write_secc_files(tmp_path)

    def car(board, loop):
        return EvSessionConfig(
            on_signals=sim_board_signals(board, loop), interface=veth_link.ifnames["ev"],
            protocol="iso2", mode="dc", tls=True, v2g_root=tmp_path / "v2g_root.pem",
            battery=Battery(soc=30, target_soc=80, max_iterations=3),
            evcc=EvccConfig(loop_interval=0.05, repeat_interval=0.05,
                            seconds_per_iteration=20.0,
                            provisioning=ProvisioningCredential.from_credential(
                                test_pki.vehicle_leaf, test_pki.v2g_root)))

    def provisioning(csms):
        csms.provisioning = ContractProvisioning(test_pki, emaid_prefix="DEPYSI")

    run, ev = run_charger_session(veth_link, tmp_path, car, pnc=True,
                                  prepare_csms=provisioning)
    received = [a for a in run.received if a in ("Get15118EVCertificate", "Authorize")]
    certificate_requests = run.messages.get("Get15118EVCertificate", [])
    authorize, summaries = run.messages.get("Authorize", []), run.summaries
    assert ev.ok, ev.summary()
    assert ev.tls_version == "TLSv1.2" and ev.protocol == "iso2"
    (record,) = ev.sessions
    assert record.steps_sent[:5] == ["SessionSetup", "ServiceDiscovery", "PaymentServiceSelection",
                                     "CertificateInstallation", "PaymentDetails"]
    assert record.installed_emaid == "DEPYSI0000001X"
    installation = next(e for e in record.exchanges if e.step == "CertificateInstallation")
    print(f"CertificateInstallation round trip (car -> CSMS -> car): "
          f"{installation.seconds * 1000:.0f} ms")
    assert installation.response_code == "OK" and installation.seconds < 4.5
    assert record.loop_iterations == 3 and summaries[0].final_state == "Terminated"
    # the CSMS saw the certificate request first, then Authorize with the installed eMAID
    assert received == ["Get15118EVCertificate", "Authorize"]
    (request,) = certificate_requests
    assert request["action"] == "Install"
    assert request["iso15118SchemaVersion"] == "urn:iso:15118:2:2013:MsgDef"
    forwarded = exi_schemas.decode(base64.b64decode(request["exiRequest"]), "iso2")
    assert forwarded.body.certificate_installation_req.oem_provisioning_cert == \
        test_pki.vehicle_leaf.cert_der
    (auth,) = authorize
    assert auth["idToken"] == {"idToken": "DEPYSI0000001X", "type": "eMAID"}
