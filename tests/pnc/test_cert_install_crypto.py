"""Contract key transport (ISO 15118-2 §7.9.2.4.2) and the CertificateInstallationRes the
CPS builds: round trips through the real codec and cryptography, and every bad input typed."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from secc.pnc import key_transport, xmldsig
from secc.pnc.installation import (
    InstallationResponseError,
    build_installation_response,
    parse_response_exi,
    response_exi,
    verify_response_signature,
)


def test_contract_key_encrypted_for_the_oem_key_decrypts_to_the_same_key():
    contract, oem = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(
        ec.SECP256R1())
    dh_public, encrypted = key_transport.encrypt_contract_key(contract, oem.public_key())
    assert len(dh_public) == 65 and dh_public[0] == 4 and len(encrypted) == 48
    key = key_transport.decrypt_contract_key(dh_public, encrypted, oem)
    assert key.private_numbers().private_value == contract.private_numbers().private_value
    assert key_transport.matches(key, contract.public_key())


def test_both_sides_derive_the_same_session_key_and_it_depends_on_the_kdf_other_info():
    a, b = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    key = key_transport.session_key(a, b.public_key())
    assert key == key_transport.session_key(b, a.public_key()) and len(key) == 16
    assert key != a.exchange(ec.ECDH(), b.public_key())[:16]


def test_another_cars_key_does_not_recover_the_contract_key():
    contract, oem, stranger = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    dh_public, encrypted = key_transport.encrypt_contract_key(contract, oem.public_key())
    try:
        key = key_transport.decrypt_contract_key(dh_public, encrypted, stranger)
    except key_transport.KeyTransportError:
        return
    assert not key_transport.matches(key, contract.public_key())


@pytest.mark.parametrize("dh_public, encrypted", [
    (b"\x04" + bytes(64), bytes(48)),          # not a point on the curve
    (b"\x02" + bytes(32), bytes(48)),          # compressed point
    (None, bytes(47)),                         # truncated ciphertext
])
def test_malformed_key_transport_data_raises_key_transport_error(dh_public, encrypted):
    oem = ec.generate_private_key(ec.SECP256R1())
    if dh_public is None:
        dh_public, _ = key_transport.encrypt_contract_key(oem, oem.public_key())
    with pytest.raises(key_transport.KeyTransportError):
        key_transport.decrypt_contract_key(dh_public, encrypted, oem)


def _response(test_pki, contract):
    cps, cps_subs = test_pki.cps_chain()
    return build_installation_response(
        contract_der=contract.leaf.cert_der, contract_sub_ders=contract.sub_ca_ders,
        contract_key=contract.leaf.key, emaid=contract.emaid,
        recipient=test_pki.vehicle_leaf.key.public_key(), cps_der=cps.cert_der,
        cps_sub_ders=[c.cert_der for c in cps_subs], cps_key=cps.key)


def test_installation_response_survives_exi_signed_by_the_cps_and_decryptable_by_the_car(
        test_pki):
    contract = test_pki.issue_contract("DEPYSC7654321X")
    body, signature = _response(test_pki, contract)
    exi_response = response_exi(body, signature)
    assert 3000 < len(exi_response) < 17000
    decoded, decoded_signature = parse_response_exi(exi_response, "CertificateInstallationReq")
    cps, _ = test_pki.cps_chain()
    verify_response_signature(decoded, decoded_signature, cps.key.public_key())
    key = key_transport.decrypt_contract_key(
        decoded.d_hpublickey.value, decoded.contract_signature_encrypted_private_key.value,
        test_pki.vehicle_leaf.key)
    assert key_transport.matches(key, contract.leaf.key.public_key())
    assert decoded.e_maid.value == "DEPYSC7654321X"
    decoded.e_maid.value = "DEPYSC0000000X"
    with pytest.raises(xmldsig.BadDigest):
        verify_response_signature(decoded, decoded_signature, cps.key.public_key())


@pytest.mark.parametrize("exi_response, words", [
    ("not base64!", "base64"),
    ("", "empty"),
    (base64.b64encode(b"\x80\x98" * 64).decode(), "EXI"),
])
def test_garbage_exi_response_is_an_installation_response_error(exi_response, words):
    with pytest.raises(InstallationResponseError, match=words):
        parse_response_exi(exi_response, "CertificateInstallationReq")


def test_a_response_of_the_wrong_kind_is_rejected(test_pki):
    body, signature = _response(test_pki, test_pki.issue_contract())
    with pytest.raises(InstallationResponseError, match="CertificateUpdateRes"):
        parse_response_exi(response_exi(body, signature), "CertificateUpdateReq")
