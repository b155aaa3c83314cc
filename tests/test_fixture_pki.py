import datetime as dt

import pytest

from secc.common.pki import CertificateRejected, RejectReason, verify_chain
from sim.testing.pki import Defect


def test_secc_chain_verifies_to_v2g_root(test_pki):
    leaf, subs = test_pki.secc_chain()
    anchor = verify_chain(leaf, subs, [test_pki.mo_root.cert, test_pki.v2g_root.cert])
    assert anchor == test_pki.v2g_root.cert
    assert leaf.subject.get_attributes_for_oid(
        __import__("cryptography").x509.oid.NameOID.COMMON_NAME)[0].value == test_pki.secc_id


def test_contract_chain_verifies_to_mo_root(test_pki):
    leaf, subs = test_pki.contract_chain()
    assert verify_chain(leaf, subs, [test_pki.mo_root.cert]) == test_pki.mo_root.cert


def test_vehicle_chain_verifies_to_oem_root(test_pki):
    assert verify_chain(test_pki.vehicle_leaf.cert, [test_pki.oem_sub.cert],
                        [test_pki.oem_root.cert]) == test_pki.oem_root.cert


def test_missing_root_is_unknown_issuer(test_pki):
    leaf, subs = test_pki.contract_chain()
    with pytest.raises(CertificateRejected) as info:
        verify_chain(leaf, subs, [test_pki.v2g_root.cert])
    assert info.value.reason is RejectReason.UNKNOWN_ISSUER
    assert "MO Root CA" in str(info.value)


@pytest.mark.parametrize("defect, reason", [
    (Defect.EXPIRED, RejectReason.EXPIRED),
    (Defect.NOT_YET_VALID, RejectReason.NOT_YET_VALID),
    (Defect.WRONG_ISSUER, RejectReason.BAD_SIGNATURE),
    (Defect.WRONG_KEY_USAGE, RejectReason.KEY_USAGE),
])
def test_bad_leaf_is_rejected_with_its_reason(test_pki, defect, reason):
    bad = test_pki.issue_leaf(test_pki.mo_sub2, "DEPYSBAD000001", "pysecc eMSP", defect=defect)
    with pytest.raises(CertificateRejected) as info:
        verify_chain(bad.cert, [test_pki.mo_sub2.cert, test_pki.mo_sub1.cert],
                     [test_pki.mo_root.cert])
    assert info.value.reason is reason


def test_bad_sub_ca_key_usage_is_rejected(test_pki):
    bad_ca = test_pki.issue_ca(test_pki.mo_sub1, "MO Sub-CA 2", "pysecc eMSP", path_length=0,
                               defect=Defect.WRONG_KEY_USAGE)
    leaf = test_pki.issue_leaf(bad_ca, "DEPYSBAD000002", "pysecc eMSP")
    with pytest.raises(CertificateRejected) as info:
        verify_chain(leaf.cert, [bad_ca.cert, test_pki.mo_sub1.cert], [test_pki.mo_root.cert])
    assert info.value.reason is RejectReason.KEY_USAGE


def test_chain_out_of_order_is_rejected(test_pki):
    leaf, subs = test_pki.secc_chain()
    with pytest.raises(CertificateRejected) as info:
        verify_chain(leaf, list(reversed(subs)), [test_pki.v2g_root.cert])
    assert info.value.reason is RejectReason.UNKNOWN_ISSUER


def test_expiry_is_judged_at_the_given_time(test_pki):
    leaf, subs = test_pki.secc_chain()
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=3000)
    with pytest.raises(CertificateRejected) as info:
        verify_chain(leaf, subs, [test_pki.v2g_root.cert], now=later)
    assert info.value.reason is RejectReason.EXPIRED


def test_too_many_sub_cas_rejected(test_pki):
    leaf, subs = test_pki.secc_chain()
    with pytest.raises(CertificateRejected) as info:
        verify_chain(leaf, subs + [test_pki.v2g_root.cert], [test_pki.v2g_root.cert])
    assert info.value.reason is RejectReason.CHAIN_TOO_LONG


def test_secc_files_form_a_working_tls_server_context(test_pki, tmp_path):
    import ssl
    files = test_pki.write_secc_files(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(files["chain"], files["key"])
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(files["v2g_root"])
    assert client.cert_store_stats()["x509_ca"] == 1
