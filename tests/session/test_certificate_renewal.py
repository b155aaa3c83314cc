"""SECC leaf renewal and root installation from the CSMS, end to end and without a restart.

The whole charger in the SECC's namespace (broker, test CSMS, OCPP bridge process, SECC daemon
with its TLS server): the CSMS sends TriggerMessage(SignV2GCertificate); the SECC makes key and
CSR (bus create_csr), the bridge sends SignCertificate, the CSMS answers CertificateSigned with
a chain under the V2G PKI, the bridge hands it to the SECC (install_certificate), which installs
it and rebuilds its TLS contexts. A car connecting afterwards gets the new leaf from the *same*
running server. InstallCertificate(MORootCertificate) reaches the SECC's store and the settings
of the next session at once.
"""

from __future__ import annotations

import asyncio

import pytest
from cryptography import x509

from secc.certstore import CertificateStore, RootKind
from secc.tls import iso2_client_context
from sim.charger import SIM_BOARD, STATION_ID, ChargerBackend, wait_until
from sim.ev_transport import connect_v2gtp, run_secc_and_ev, wait_for_event
from sim.testing.pki import TestPKI


@pytest.mark.netns
def test_renewed_leaf_is_served_by_the_running_tls_server_and_roots_apply_at_once(
        veth_link, tmp_path, test_pki):
    from secc.boards import board_from_config
    from secc.config import loads_board_config
    from secc.daemon import SeccDaemon, bus_from_config, server_tls_context

    certs = tmp_path / "certs"
    test_pki.write_secc_files(certs)
    other_mo = TestPKI().mo_root
    other_mo_pem = other_mo.cert_pem.decode()
    seen: dict = {}

    async def secc_main(ready, ev_done):
        stack = await ChargerBackend(tmp_path).start()
        try:
            stack.csms.v2g_signer = test_pki.sign_secc_csr
            config = loads_board_config(SIM_BOARD.format(
                output="dc", max_current=200, iface=veth_link.ifnames["secc"], certs=certs,
                pnc="true") + stack.board_bus_section())
            bus, authorizer = bus_from_config(config)
            daemon = SeccDaemon(config, board_from_config(config), veth_link.ifnames["secc"],
                                authorizer=authorizer, bus=bus,
                                tls_context=server_tls_context(config))
            await daemon.start()
            try:
                tls = daemon.transport.tls
                generation = daemon.tls_selector.generation
                answer = await stack.csms.call(STATION_ID, "TriggerMessage",
                                               {"requestedMessage": "SignV2GCertificate"})
                assert answer["status"] == "Accepted"
                assert await wait_until(lambda: daemon.tls_selector.generation > generation,
                                        20), "the SECC never reloaded its TLS chains"
                seen["signed"] = stack.csms.messages("CertificateSigned")
                mo_roots_before = len(daemon.settings.core_options["iso2"]["mo_roots"])
                seen["install"] = await stack.csms.call(STATION_ID, "InstallCertificate", {
                    "certificateType": "MORootCertificate", "certificate": other_mo_pem})
                await wait_until(lambda: len(daemon.settings.core_options["iso2"]["mo_roots"])
                                 > mo_roots_before, 10)
                seen["mo_roots"] = daemon.settings.core_options["iso2"]["mo_roots"]
                ready.set_result((tls.link.address, tls.port, id(tls)))
                await wait_for_event(ev_done)
                seen["same_server"] = daemon.transport.tls is tls
            finally:
                await daemon.stop()
        finally:
            await stack.stop()
        return seen

    async def ev_main(info):
        address, port, _ = info
        conn = await connect_v2gtp(veth_link.ifnames["ev"], address, port,
                                   ssl_context=iso2_client_context(certs / "v2g_root.pem"))
        der = conn.ssl_object.getpeercert(binary_form=True)
        await conn.close()
        await asyncio.sleep(0)
        return x509.load_der_x509_certificate(der)

    seen, served = run_secc_and_ev(veth_link, secc_main, ev_main, timeout=60)
    store = CertificateStore(certs)
    new_leaf = store.secc_chains()[0].leaf
    assert served.public_key() != test_pki.secc_leaf.cert.public_key()  # not the old leaf
    assert served.public_key() == new_leaf.public_key()                 # the renewed one
    assert served.issuer == test_pki.cpo_sub2.cert.subject
    assert seen["same_server"]                                          # no restart
    assert store.verify() == []
    assert not (certs / "pending_key.pem").exists()
    assert seen["install"]["status"] == "Accepted"
    assert other_mo.cert in store.roots(RootKind.MO) and other_mo.cert in seen["mo_roots"]
