"""The contract chain of PaymentDetailsReq: bad bytes and bad certificates become the right
FAILED reason (never an exception), and the OCPP OCSP request data is complete or absent."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

import exi_schemas as exi
from secc.pnc.contract import (
    check_contract,
    normalize_emaid,
    ocsp_request_data,
    parse_contract_chain,
    same_emaid,
)
from sim.testing.pki import MO_OCSP_URL, Defect
from secc.v2g.failures import Failure, SessionFailure

# the test PKI issues certificates valid around the real today
NOW = dt.datetime.now(dt.timezone.utc)


@pytest.fixture(scope="module")
def contract(test_pki):
    return test_pki.issue_contract()


def parsed(credential):
    return parse_contract_chain(credential.leaf.cert_der, credential.sub_ca_ders)


def failure_of(fn, *args, **kwargs) -> Failure:
    with pytest.raises(SessionFailure) as info:
        fn(*args, **kwargs)
    return info.value.failure


def test_valid_chain_parses_and_names_the_emaid(contract, test_pki):
    chain = parsed(contract)
    assert chain.emaid == test_pki.emaid
    check_contract(chain, test_pki.emaid, now=NOW, mo_roots=[test_pki.mo_root.cert])
    check_contract(chain, "de-pys-c1234567x", now=NOW)  # hyphens and case do not matter
    assert chain.pem.count("BEGIN CERTIFICATE") == 3


@pytest.mark.parametrize("garbage", [b"", b"\x30\x82\x01", b"not a certificate" * 20,
                                     bytes(range(256))])
def test_garbage_certificate_bytes_get_cert_chain_error(garbage, contract):
    assert failure_of(parse_contract_chain, garbage, []) is Failure.CERT_CHAIN_ERROR
    assert failure_of(parse_contract_chain, contract.leaf.cert_der, [garbage]) \
        is Failure.CERT_CHAIN_ERROR


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_never_crash_the_parser(data):
    try:
        parse_contract_chain(data)
    except SessionFailure as failure:
        assert failure.failure is Failure.CERT_CHAIN_ERROR


def test_truncated_real_certificate_gets_cert_chain_error(contract):
    der = contract.leaf.cert_der
    assert failure_of(parse_contract_chain, der[: len(der) // 2], []) is Failure.CERT_CHAIN_ERROR


def test_expired_contract_cert_gets_FAILED_CertificateExpired(test_pki):
    expired = test_pki.issue_contract(defect=Defect.EXPIRED)
    assert failure_of(check_contract, parsed(expired), test_pki.emaid, now=NOW) \
        is Failure.CERTIFICATE_EXPIRED
    assert failure_of(check_contract, parsed(expired), test_pki.emaid, now=NOW,
                      mo_roots=[test_pki.mo_root.cert]) is Failure.CERTIFICATE_EXPIRED


def test_emaid_not_matching_the_certificate_is_rejected(contract):
    assert failure_of(check_contract, parsed(contract), "DEPYSC9999999X", now=NOW) \
        is Failure.CERT_CHAIN_ERROR


def test_forged_leaf_and_foreign_root_are_chain_errors(test_pki, contract):
    forged = test_pki.issue_contract(defect=Defect.WRONG_ISSUER)
    assert failure_of(check_contract, parsed(forged), test_pki.emaid,
                      now=NOW) is Failure.CERT_CHAIN_ERROR
    # an installed root of the same name that did not sign the chain
    impostor = test_pki.make_root("MO Root CA", "pysecc eMSP", "V2G")
    assert failure_of(check_contract, parsed(contract), test_pki.emaid, now=NOW,
                      mo_roots=[impostor.cert]) is Failure.CERT_CHAIN_ERROR


def test_chain_under_a_root_we_do_not_have_is_left_to_the_csms(test_pki):
    other_root = test_pki.make_root("Other MO Root", "other eMSP", "V2G")
    check_contract(parsed(test_pki.issue_contract()), test_pki.emaid, now=NOW,
                   mo_roots=[other_root.cert])  # no matching root: not rejected locally


def test_ocsp_request_data_per_ocpp_for_leaf_and_sub_cas(contract, test_pki):
    chain = parsed(contract)
    entries = ocsp_request_data(chain, [test_pki.mo_root.cert])
    assert len(entries) == 3
    issuers = [contract.sub_cas[0], contract.sub_cas[1], test_pki.mo_root]
    for entry, cert, issuer in zip(entries, chain.certificates, issuers, strict=True):
        assert entry["hashAlgorithm"] == "SHA256"
        assert entry["serialNumber"] == format(cert.serial_number, "x")
        assert entry["issuerNameHash"] == hashlib.sha256(cert.issuer.public_bytes()).hexdigest()
        point = issuer.cert.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        assert entry["issuerKeyHash"] == hashlib.sha256(point).hexdigest()
        assert entry["responderURL"] == MO_OCSP_URL


def test_ocsp_data_absent_without_url_or_root_so_the_chain_is_sent(test_pki, contract):
    assert ocsp_request_data(parsed(contract)) == []  # top sub-CA's issuer key unknown
    no_url = test_pki.issue_contract(ocsp_url=None)
    assert ocsp_request_data(parsed(no_url), [test_pki.mo_root.cert]) == []


def test_normalize_emaid():
    assert normalize_emaid("de-pys-c12345678-x ") == "DEPYSC12345678X"


@pytest.mark.parametrize("one, other, same", [
    ("DEABC123456789", "DE-ABC-123456789-0", True),   # check digit on one side only
    ("DEABC1234567890", "DEABC123456789", True),
    ("DEABC123456789", "DEABC123456780", False),
    ("DEABC12345678", "DEABC123456789", False),        # 13 + 1 is not a check digit
    ("DEABC1234567891", "DEABC1234567890", False),
])
def test_emaid_comparison_tolerates_only_the_check_digit(one, other, same):
    assert same_emaid(one, other) is same


def _payment_details_vectors(shared_dir):
    for line in (shared_dir / "exi_vectors" / "vectors.jsonl").read_text().splitlines():
        vector = json.loads(line)
        if vector["protocol"] == "iso15118_2" and vector["message"] == "PaymentDetailsReq":
            message = exi.decode(bytes.fromhex(vector["exi_hex"]), "iso2")
            yield vector["id"], message.body.payment_details_req


def test_vector_contract_chains_get_the_right_failed_code(shared_dir):
    """The vectors' certificates are real DER but expired (2024); the tux-evse one is not a
    certificate at all."""
    outcomes = {}
    for vector_id, req in _payment_details_vectors(shared_dir):
        chain = req.contract_signature_cert_chain
        subs = chain.sub_certificates.certificate if chain.sub_certificates else []
        try:
            check_contract(parse_contract_chain(chain.certificate, subs), req.e_maid,
                           now=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
        except SessionFailure as failure:
            outcomes[vector_id.split("/")[-1]] = failure.failure
    assert outcomes["sub"] is Failure.CERTIFICATE_EXPIRED
    assert outcomes["nosub"] is Failure.CERTIFICATE_EXPIRED
    assert [f for k, f in outcomes.items() if k.startswith("repo-")] == \
        [Failure.CERT_CHAIN_ERROR]


def test_mo_roots_load_from_the_certificate_directory(test_pki, tmp_path):
    from secc.pnc.contract import load_mo_roots

    files = test_pki.write_secc_files(tmp_path)
    assert load_mo_roots(files["mo_root"]) == [test_pki.mo_root.cert]
    assert load_mo_roots(tmp_path / "absent.pem") == []
