"""``secc doctor``'s certificate-store and TLS checks: each fault is a real file set (from the
test PKI), the TLS findings come from real (in-memory) handshakes."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from secc.config import loads_board_config
from secc.doctor import Status, check_certs_and_tls
from sim.testing.pki import TestPKI

NOW = dt.datetime.now(dt.timezone.utc)


def board(certs, *, pnc: bool = True, tls: str = "optional",
          protocols: str = '["iso20", "iso2", "din"]'):
    return loads_board_config(f"""
[board]
name = "doctor"
evse_id = "DE*PNX*E00001*1"
[v2g]
protocols = {protocols}
tls = "{tls}"
plug_and_charge = {"true" if pnc else "false"}
certificate_dir = "{certs}"
""")


def findings(config, now=NOW) -> dict:
    return {f.check: f for f in check_certs_and_tls(config, now)}


@pytest.fixture(scope="module")
def good_store(tmp_path_factory, test_pki):
    path = tmp_path_factory.mktemp("certs")
    test_pki.write_secc_files(path)
    return path


def test_healthy_store_and_tls_as_both_standards_want(good_store):
    found = findings(board(good_store))
    assert {c: f.status for c, f in found.items() if f.status is not Status.OK} == {}
    assert "DEPYSE00001" in found["certs.secc_leaf"].summary
    assert "TLSv1.2 ECDHE-ECDSA-AES128-SHA256" in found["tls.iso2"].summary
    assert "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256" in found["tls.iso2"].summary  # not offerable
    assert "TLSv1.3" in found["tls.iso20"].summary
    assert {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"} <= set(
        found["tls.iso20"].details["ciphers"])


def test_missing_roots_name_the_install_certificate_that_fixes_them(tmp_path, test_pki):
    test_pki.write_secc_files(tmp_path)
    (tmp_path / "mo_root.pem").unlink()
    (tmp_path / "v2g_root.pem").unlink()
    (tmp_path / "oem_root.pem").unlink()
    found = findings(board(tmp_path))
    assert found["certs.mo_root"].status is Status.FAIL
    assert "InstallCertificate(certificateType=MORootCertificate)" in found["certs.mo_root"].fix
    assert "certificateType=V2GRootCertificate" in found["certs.v2g_root"].fix
    assert found["certs.oem_root"].status is Status.FAIL
    assert "no InstallCertificate type for OEM roots" in found["certs.oem_root"].fix
    # without Plug & Charge the same store only warns: nothing fails today
    relaxed = findings(board(tmp_path, pnc=False))
    assert relaxed["certs.mo_root"].status is Status.WARN


def test_expired_and_expiring_secc_leaf(tmp_path):
    old = TestPKI(now=NOW - dt.timedelta(days=400))    # leaf valid 365 days: expired
    old.write_secc_files(tmp_path / "expired")
    found = findings(board(tmp_path / "expired"))
    assert found["certs.secc_leaf"].status is Status.FAIL
    assert "expired" in found["certs.secc_leaf"].summary
    assert "SignCertificate (V2GCertificate)" in found["certs.secc_leaf"].fix

    soon = TestPKI(now=NOW - dt.timedelta(days=350))   # 15 days left
    soon.write_secc_files(tmp_path / "soon")
    found = findings(board(tmp_path / "soon"))
    assert found["certs.secc_leaf"].status is Status.WARN
    assert found["certs.secc_leaf"].details["days_left"] in (14, 15)


def test_key_of_another_certificate(tmp_path, test_pki):
    test_pki.write_secc_files(tmp_path)
    (tmp_path / "secc_key.pem").write_bytes(TestPKI().secc_leaf.key_pem)
    found = findings(board(tmp_path))
    assert found["certs.secc_leaf"].status is Status.FAIL
    assert "does not belong" in found["certs.secc_leaf"].summary
    assert found["tls.server"].status is Status.FAIL    # the context cannot load either


def test_rsa_leaf_breaks_iso2_tls_but_not_iso20(tmp_path):
    """A leaf the -2 suite (ECDHE-ECDSA) cannot use: a -2 car cannot connect."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "RSA SECC")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=300)).sign(key, hashes.SHA256()))
    (tmp_path / "secc_chain.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "secc_key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    found = findings(board(tmp_path, pnc=False))
    assert found["tls.iso2"].status is Status.FAIL
    assert "ISO 15118-2" in found["tls.iso2"].summary
    assert found["tls.iso20"].status is Status.OK
    assert found["certs.secc_leaf"].status is Status.WARN   # not an ISO 15118 curve


def test_tls_off_with_iso20_offered_and_missing_store(tmp_path):
    found = findings(board(tmp_path, tls="none", pnc=False))
    assert found["tls.server"].status is Status.FAIL
    assert '[v2g].tls = "optional"' in found["tls.server"].fix
    found = findings(board(tmp_path / "nowhere", pnc=True))
    assert found["certs.directory"].status is Status.FAIL
    assert found["tls.server"].status is Status.FAIL   # -20 offered: TLS is needed
    found = findings(board(tmp_path, tls="none", pnc=False, protocols='["iso2", "din"]'))
    assert [f.status for f in found.values()] == [Status.SKIP, Status.OK]


def test_secc_chain_that_does_not_lead_to_the_installed_v2g_root(tmp_path, test_pki):
    """The store's own verification (secc.certstore) shows up as certs.store."""
    test_pki.write_secc_files(tmp_path)
    (tmp_path / "v2g_root.pem").write_bytes(TestPKI().v2g_root.cert_pem)   # another PKI's
    found = findings(board(tmp_path))
    assert found["certs.store"].status is Status.FAIL
    assert "secc_chain.pem" in found["certs.store"].summary
    assert "secc certs import secc-chain" in found["certs.store"].fix
    healthy = tmp_path / "healthy"
    test_pki.write_secc_files(healthy)
    assert "certs.store" not in findings(board(healthy))
