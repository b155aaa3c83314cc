"""XMLDSig over ISO 15118-20 EXI fragments (P-521, ECDSA-SHA512), and EV-made certificate and
signature content that must never crash the -20 SECC: random bytes, mutated DER, the shared
PnC vector (structurally right, cryptographically not)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import exi_schemas as exi
from exi_schemas.generated import iso20 as cm
from secc.pnc import xmldsig
from secc.pnc.iso20 import sign_authorization
from sim.testing.pki import TestPKI

from .conftest import Pump, make_evcc, make_secc

VECTOR_ID = "iso15118_20_common/AuthorizationReq/pnc"
WARNINGS_OR_SIGNATURE_ERROR = {
    "WARNING_CertificateValidationError", "WARNING_CertificateExpired",
    "WARNING_CertificateNotYetValid", "FAILED_SignatureError"}


@pytest.fixture(scope="module")
def pnc_vector(shared_dir):
    path = shared_dir / "exi_vectors" / "vectors.jsonl"
    if not path.exists():
        pytest.skip(f"{path} not present")
    for line in path.read_text().splitlines():
        vector = json.loads(line)
        if vector["id"] == VECTOR_ID:
            return vector
    pytest.skip(f"{VECTOR_ID} not in the shared vectors")


def pnc_mode(contract, challenge=bytes(16), leaf=None):
    return cm.PnC_AReqAuthorizationModeType(
        id="ID1", gen_challenge=challenge,
        contract_certificate_chain=cm.ContractCertificateChainType(
            certificate=contract.leaf.cert_der if leaf is None else leaf,
            sub_certificates=cm.SubCertificatesType(certificate=contract.sub_ca_ders)))


def through_the_codec(mode, signature):
    req = cm.AuthorizationReqType(
        header=cm.MessageHeaderType(session_id=bytes(8), time_stamp=1, signature=signature),
        selected_authorization_service="PnC", pn_c_a_req_authorization_mode=mode)
    name, back = exi.decode_element(exi.encode(req, element="AuthorizationReq"), "iso20")
    assert name == "AuthorizationReq"
    return back


# --- signature round trip ------------------------------------------------------------------------
def test_p521_signature_round_trips_through_the_codec_and_verifies(contract):
    signature = sign_authorization(pnc_mode(contract), contract.leaf.key)
    back = through_the_codec(pnc_mode(contract), signature)
    xmldsig.verify(back.header.signature, {"ID1": back.pn_c_a_req_authorization_mode},
                   contract.leaf.cert.public_key())
    assert len(back.header.signature.signature_value.value) == 132   # r || s, 66 bytes each


def test_digest_is_sha512_of_the_pnc_mode_element_fragment(contract):
    mode = pnc_mode(contract)
    signature = sign_authorization(mode, contract.leaf.key)
    (reference,) = signature.signed_info.reference
    assert reference.uri == "#ID1"
    fragment = exi.encode_fragment(mode)
    assert reference.digest_value == hashlib.sha512(fragment).digest()


def test_our_signature_has_the_algorithms_and_shape_of_the_shared_vector(contract, pnc_vector):
    _, vector = exi.decode_element(bytes.fromhex(pnc_vector["exi_hex"]), "iso20")
    theirs = vector.header.signature
    ours = sign_authorization(pnc_mode(contract), contract.leaf.key)
    assert ours.signed_info.signature_method.algorithm == \
        theirs.signed_info.signature_method.algorithm == xmldsig.ECDSA_SHA512
    assert ours.signed_info.canonicalization_method.algorithm == \
        theirs.signed_info.canonicalization_method.algorithm
    (our_ref,), (their_ref,) = ours.signed_info.reference, theirs.signed_info.reference
    assert our_ref.uri == their_ref.uri == "#ID1"
    assert our_ref.digest_method.algorithm == their_ref.digest_method.algorithm == xmldsig.SHA512
    assert [t.algorithm for t in our_ref.transforms.transform] == \
        [t.algorithm for t in their_ref.transforms.transform]
    assert len(ours.signature_value.value) == len(theirs.signature_value.value) == 132


def test_tampered_challenge_after_signing_is_a_bad_digest(contract):
    mode = pnc_mode(contract)
    signature = sign_authorization(mode, contract.leaf.key)
    tampered = dataclasses.replace(mode, gen_challenge=b"\x01" * 16)
    back = through_the_codec(tampered, signature)
    with pytest.raises(xmldsig.BadDigest):
        xmldsig.verify(back.header.signature, {"ID1": back.pn_c_a_req_authorization_mode},
                       contract.leaf.cert.public_key())


def test_signature_of_another_p521_key_is_a_bad_signature(contract):
    stranger = ec.generate_private_key(ec.SECP521R1())
    back = through_the_codec(pnc_mode(contract), sign_authorization(pnc_mode(contract), stranger))
    with pytest.raises(xmldsig.BadSignature):
        xmldsig.verify(back.header.signature, {"ID1": back.pn_c_a_req_authorization_mode},
                       contract.leaf.cert.public_key())


# --- through the session ------------------------------------------------------------------------
def authorization_pump(pki20) -> Pump:
    adapter, core = make_secc("dc", tls=True, mo_roots=[pki20.mo_root.cert],
                              wall_clock=time.time)
    pump = Pump(core, adapter, make_evcc("dc"))
    pump.until("Authorization")
    return pump


def send(pump, mode, signature):
    req = cm.AuthorizationReqType(
        header=cm.MessageHeaderType(session_id=pump.core.session_id, time_stamp=1,
                                    signature=signature),
        selected_authorization_service="PnC", pn_c_a_req_authorization_mode=mode)
    return pump.send(req, "AuthorizationReq")


def test_signature_tampered_after_signing_is_failed_signature_error(pki20, contract):
    pump = authorization_pump(pki20)
    mode = pnc_mode(contract, pump.core.gen_challenge)
    signature = sign_authorization(mode, contract.leaf.key)
    signature.signature_value.value = bytes(132)
    step = send(pump, mode, signature)
    assert step.response.response_code == "FAILED_SignatureError"
    assert pump.core.terminated


def test_shared_pnc_vector_is_refused_cleanly_never_a_crash(pki20, pnc_vector):
    """Its GenChallenge made ours, its signature (not crypto-valid) is the first thing to
    fail: FAILED_SignatureError, the session ends safe."""
    pump = authorization_pump(pki20)
    _, vector = exi.decode_element(bytes.fromhex(pnc_vector["exi_hex"]), "iso20")
    pump.core.gen_challenge = vector.pn_c_a_req_authorization_mode.gen_challenge
    step = send(pump, vector.pn_c_a_req_authorization_mode, vector.header.signature)
    assert step.response.response_code == "FAILED_SignatureError"
    assert step.reply.close


def _mutations(der: bytes) -> st.SearchStrategy[bytes]:
    flip = st.tuples(st.integers(0, len(der) - 1), st.integers(1, 255)).map(
        lambda t: der[:t[0]] + bytes([der[t[0]] ^ t[1]]) + der[t[0] + 1:])
    cut = st.integers(0, len(der) - 1).map(lambda n: der[:n])
    return st.one_of(st.binary(max_size=600), flip, cut)


def _same_certificate(candidate: bytes, original: bytes) -> bool:
    """A flip the parser tolerates can leave the very same signed certificate (seen: the
    unused-bits byte of the signature BIT STRING, 0x00 -> 0x01, still parses and verifies):
    accepting that is right, so such inputs are skipped."""
    try:
        parsed = x509.load_der_x509_certificate(candidate)
        reference = x509.load_der_x509_certificate(original)
        return (parsed.tbs_certificate_bytes == reference.tbs_certificate_bytes
                and parsed.signature == reference.signature)
    except Exception:  # noqa: BLE001 - not a certificate at all: a real mutation
        return False


_PKI = TestPKI.iso20()
_CONTRACT = _PKI.issue_contract()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(leaf=_mutations(_CONTRACT.leaf.cert_der))
def test_any_certificate_bytes_get_a_warning_or_signature_error_never_a_crash(leaf):
    """The EV signs correctly with its key, but the certificate it sends is garbage, cut
    short or bit-flipped: a -20 code, an encodable response, no exception."""
    assume(not _same_certificate(leaf, _CONTRACT.leaf.cert_der))
    pump = authorization_pump(_PKI)
    mode = pnc_mode(_CONTRACT, pump.core.gen_challenge, leaf=leaf)
    step = send(pump, mode, sign_authorization(mode, _CONTRACT.leaf.key))
    assert step.response.response_code in WARNINGS_OR_SIGNATURE_ERROR
    assert step.response.evse_processing == "Finished"
    assert pump.core.contract is None


@settings(max_examples=40, deadline=None)
@given(value=st.binary(max_size=200),
       method=st.sampled_from([xmldsig.ECDSA_SHA512, xmldsig.ECDSA_SHA256, "urn:x:unknown"]),
       uri=st.sampled_from(["#ID1", "#ID2", "", "ID1"]))
def test_any_signature_content_is_failed_signature_error_never_a_crash(value, method, uri):
    pump = authorization_pump(_PKI)
    mode = pnc_mode(_CONTRACT, pump.core.gen_challenge)
    signature = sign_authorization(mode, _CONTRACT.leaf.key)
    signature.signature_value.value = value
    signature.signed_info.signature_method.algorithm = method
    signature.signed_info.reference[0].uri = uri
    step = send(pump, mode, signature)
    assert step.response.response_code == "FAILED_SignatureError"


def test_a_tolerated_flip_that_keeps_the_signed_certificate_is_the_same_certificate():
    """The flip seen to survive parsing and the issuer check: the unused-bits byte of the
    signature BIT STRING (0x00 -> 0x01; tolerated when the last signature bit is 0). It is
    recognised as the same certificate; a flip inside the signed part is not."""
    der = _CONTRACT.leaf.cert_der
    cert = x509.load_der_x509_certificate(der)
    unused_bits_at = len(der) - len(cert.signature) - 1
    assert der[unused_bits_at] == 0
    flipped = der[:unused_bits_at] + b"\x01" + der[unused_bits_at + 1:]
    try:
        x509.load_der_x509_certificate(flipped).verify_directly_issued_by(
            _CONTRACT.sub_cas[0].cert)
    except Exception:  # noqa: BLE001 - last signature bit is 1: the parser refuses it
        assert cert.signature[-1] & 1
    else:
        assert _same_certificate(flipped, der)
    inside = der[:40] + bytes([der[40] ^ 1]) + der[41:]
    assert not _same_certificate(inside, der)
