"""ISO 15118-20 mutual TLS: the vehicle certificate against the installed OEM roots, and the
board's policy (``[v2g].without_oem_root``) when none is installed."""

from __future__ import annotations

import logging
import ssl

import pytest

from secc.config import loads_board_config
from secc.daemon import server_tls_context, tls_context_for
from secc.tls import CertificateDirectory, iso20_client_context
from secc.v2gtp import ConnectionClosed, PayloadType
from sim.ev_transport import connect_v2gtp, run_secc_and_ev
from sim.testing.pki import TestPKI
from tests.tls.test_tls_server import tls_echo_server, tls_log  # noqa: F401 - fixture

BOARD = """
[board]
name = "t"
kind = "sim"
evse_id = "DE*PYS*E00001*1"
output = "dc"
max_current_a = 100
[v2g]
protocols = ["iso20", "iso2"]
certificate_dir = "{certs}"
{extra}
"""


@pytest.fixture(autouse=True)
def _pysecc_records_reach_caplog(caplog):
    """caplog sees the pysecc loggers even after an in-process ``secc`` command (or the demo)
    turned their propagation off; each record once."""
    logger = logging.getLogger("pysecc")
    saved = logger.propagate
    logger.propagate = False
    logger.addHandler(caplog.handler)
    yield
    logger.removeHandler(caplog.handler)
    logger.propagate = saved


def config(certs, extra=""):
    return loads_board_config(BOARD.format(certs=certs, extra=extra))


@pytest.fixture
def certs(tmp_path, test_pki):
    test_pki.write_secc_files(tmp_path / "certs")
    return tmp_path / "certs"


def vehicle_files(tmp_path, pki):
    chain, key = tmp_path / f"v{id(pki)}.pem", tmp_path / f"k{id(pki)}.pem"
    chain.write_bytes(pki.vehicle_leaf.cert_pem + pki.oem_sub.cert_pem)
    key.write_bytes(pki.vehicle_leaf.key_pem)
    return chain, key


def test_with_oem_root_the_vehicle_certificate_is_asked_for_and_checked_against_it(certs):
    ctx = server_tls_context(config(certs))
    assert ctx.maximum_version is ssl.TLSVersion.TLSv1_3
    assert ctx.verify_mode is ssl.CERT_OPTIONAL
    names = [dict(i for rdn in c["subject"] for i in rdn)["commonName"]
             for c in ctx.get_ca_certs()]
    assert names and all("OEM" in n for n in names)  # not the V2G root


def test_without_oem_root_default_policy_serves_iso20_without_a_vehicle_certificate(
        certs, caplog):
    (certs / "oem_root.pem").unlink()
    with caplog.at_level(logging.WARNING, logger="pysecc"):
        ctx = tls_context_for(config(certs), CertificateDirectory(certs))
    assert ctx.maximum_version is ssl.TLSVersion.TLSv1_3
    assert ctx.verify_mode is ssl.CERT_NONE
    [record] = [r for r in caplog.records if "no OEM root installed" in r.getMessage()]
    assert record.missing.endswith("oem_root.pem") and "import oem-root" in record.fix


def test_without_oem_root_the_board_can_refuse_iso20_tls(certs, caplog):
    (certs / "oem_root.pem").unlink()
    with caplog.at_level(logging.WARNING, logger="pysecc"):
        ctx = tls_context_for(config(certs, 'without_oem_root = "no_iso20_tls"'),
                              CertificateDirectory(certs))
    assert ctx.maximum_version is ssl.TLSVersion.TLSv1_2
    assert any("TLS 1.3 not offered" in r.getMessage() for r in caplog.records)


def test_bad_policy_value_is_a_config_error(certs):
    from secc.config import ConfigError

    with pytest.raises(ConfigError, match="without_oem_root"):
        config(certs, 'without_oem_root = "accept_anything"')


@pytest.mark.netns
@pytest.mark.parametrize("same_oem", [True, False], ids=["installed-oem", "unknown-oem"])
def test_vehicle_certificate_of_an_unknown_oem_is_refused_naming_the_installed_roots(
        veth_link, certs, test_pki, tmp_path, tls_log, same_oem):  # noqa: F811
    results: dict = {}
    server_ctx = server_tls_context(config(certs))
    car = test_pki if same_oem else TestPKI(vin="WUNKNOWNOEM000001")
    chain, key = vehicle_files(tmp_path, car)
    client_ctx = iso20_client_context(certs / "v2g_root.pem", chain, key)

    async def ev_main(info):
        try:
            conn = await connect_v2gtp(veth_link.ifnames["ev"], *info, ssl_context=client_ctx)
            await conn.send(PayloadType.EXI, b"\x80")
            await conn.receive(timeout=3)
            await conn.close()
        except (ConnectionClosed, ssl.SSLError, OSError):
            return "rejected"
        return "accepted"

    _, outcome = run_secc_and_ev(veth_link, tls_echo_server(veth_link, server_ctx, results),
                                 ev_main)
    if same_oem:
        assert outcome == "accepted" and results["peer_cert"] is not None
        return
    assert outcome == "rejected"
    [failure] = results["handshake_failures"]
    assert "OEM Root CA" in failure["hint"] and "import oem-root" in failure["hint"]


class _FakeSsl:
    def __init__(self, verify_mode, cert):
        self.context = type("Ctx", (), {"verify_mode": verify_mode})()
        self._cert = cert

    def getpeercert(self, binary_form=False):
        return self._cert


@pytest.mark.parametrize("verify_mode,cert,missing", [
    (ssl.CERT_OPTIONAL, None, True),        # asked (OEM roots installed), none shown: no -20
    (ssl.CERT_OPTIONAL, b"der", False),
    (ssl.CERT_NONE, None, False),           # without_oem_root = "no_vehicle_certificate"
])
def test_iso20_needs_the_vehicle_certificate_when_asked(verify_mode, cert, missing):
    from secc.session.driver import vehicle_certificate_missing

    conn = type("Conn", (), {"ssl_object": _FakeSsl(verify_mode, cert)})()
    assert vehicle_certificate_missing(conn) is missing
    assert vehicle_certificate_missing(type("Plain", (), {"ssl_object": None})()) is False
