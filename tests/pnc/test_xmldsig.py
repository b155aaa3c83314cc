"""XML signatures over EXI (ISO 15118-2 §7.9.2.4): our own keys for the crypto, the shared
vectors for the structure (their digests and signature values are not real)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

import exi_schemas as exi
from exi_schemas.generated import iso2 as M
from secc.pnc import xmldsig


@pytest.fixture(scope="module")
def key():
    return ec.generate_private_key(ec.SECP256R1())


def auth_req(challenge=bytes(range(16)), id_="id1"):
    return M.AuthorizationReqType(id=id_, gen_challenge=challenge)


def test_signature_has_the_iso15118_2_structure_and_raw_64_byte_value(key):
    sig = xmldsig.sign([auth_req()], key)
    info = sig.signed_info
    assert info.canonicalization_method.algorithm == "http://www.w3.org/TR/canonical-exi/"
    assert info.signature_method.algorithm == \
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
    (ref,) = info.reference
    assert ref.uri == "#id1"
    assert [t.algorithm for t in ref.transforms.transform] == \
        ["http://www.w3.org/TR/canonical-exi/"]
    assert ref.digest_method.algorithm == "http://www.w3.org/2001/04/xmlenc#sha256"
    assert len(ref.digest_value) == 32
    assert len(sig.signature_value.value) == 64  # r||s, not DER


def test_round_trip_through_the_codec_verifies(key):
    req = auth_req()
    msg = M.V2G_Message(header=M.MessageHeaderType(session_id=bytes(8),
                                                   signature=xmldsig.sign([req], key)),
                        body=M.BodyType(authorization_req=req))
    back = exi.decode(exi.encode(msg), "iso2")
    xmldsig.verify(back.header.signature, {"id1": back.body.authorization_req},
                   key.public_key())


def test_tampered_body_is_a_bad_digest(key):
    sig = xmldsig.sign([auth_req()], key)
    with pytest.raises(xmldsig.BadDigest):
        xmldsig.verify(sig, {"id1": auth_req(challenge=bytes(16))}, key.public_key())


def test_tampered_signed_info_or_other_key_is_a_bad_signature(key):
    sig = xmldsig.sign([auth_req()], key)
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(xmldsig.BadSignature):
        xmldsig.verify(sig, {"id1": auth_req()}, other)
    flipped = bytes([sig.signature_value.value[0] ^ 1]) + sig.signature_value.value[1:]
    sig.signature_value.value = flipped
    with pytest.raises(xmldsig.BadSignature):
        xmldsig.verify(sig, {"id1": auth_req()}, key.public_key())


def test_der_encoded_signature_value_is_rejected_not_misread(key):
    sig = xmldsig.sign([auth_req()], key)
    r_s = sig.signature_value.value
    sig.signature_value.value = xmldsig.raw_to_der(r_s, 32)
    with pytest.raises(xmldsig.BadSignature, match="r\\|\\|s"):
        xmldsig.verify(sig, {"id1": auth_req()}, key.public_key())


def test_der_raw_conversion_round_trips_small_r_and_s():
    der = xmldsig.raw_to_der(bytes(31) + b"\x01" + bytes(30) + b"\x01\x02", 32)
    assert xmldsig.der_to_raw(der, 32) == bytes(31) + b"\x01" + bytes(30) + b"\x01\x02"


def test_reference_to_a_missing_element_and_unreferenced_element(key):
    sig = xmldsig.sign([auth_req()], key)
    with pytest.raises(xmldsig.MissingReference):
        xmldsig.verify(sig, {"other": auth_req(id_="other")}, key.public_key())
    with pytest.raises(xmldsig.MissingReference):
        xmldsig.verify(sig, {"id1": auth_req(), "id2": auth_req(id_="id2")}, key.public_key())
    with pytest.raises(xmldsig.MissingReference):
        xmldsig.verify(None, {"id1": auth_req()}, key.public_key())


def test_unsupported_algorithms_are_named(key):
    sig = xmldsig.sign([auth_req()], key)
    sig.signed_info.signature_method.algorithm = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
    with pytest.raises(xmldsig.UnsupportedAlgorithm, match="rsa-sha1"):
        xmldsig.verify(sig, {"id1": auth_req()}, key.public_key())
    sig = xmldsig.sign([auth_req()], key)
    sig.signed_info.reference[0].digest_method.algorithm = "http://www.w3.org/2000/09/xmldsig#sha1"
    with pytest.raises(xmldsig.UnsupportedAlgorithm):
        xmldsig.verify(sig, {"id1": auth_req()}, key.public_key())


def test_several_references_all_checked(key):
    receipt = M.MeteringReceiptReqType(id="mr", session_id=bytes(8),
                                       meter_info=M.MeterInfoType(meter_id="M1"))
    sig = xmldsig.sign({"id1": auth_req(), "mr": receipt}, key)
    assert [r.uri for r in sig.signed_info.reference] == ["#id1", "#mr"]
    xmldsig.verify(sig, {"id1": auth_req(), "mr": receipt}, key.public_key())
    changed = dataclasses.replace(receipt, meter_info=M.MeterInfoType(meter_id="M2"))
    with pytest.raises(xmldsig.BadDigest, match="#mr"):
        xmldsig.verify(sig, {"id1": auth_req(), "mr": changed}, key.public_key())


def _signed_vectors(shared_dir):
    for line in (shared_dir / "exi_vectors" / "vectors.jsonl").read_text().splitlines():
        vector = json.loads(line)
        if vector["protocol"] == "iso15118_2" and "SignedInfo" in vector["xml"]:
            yield vector


def test_vector_signatures_have_the_structure_we_build(shared_dir, key):
    """Our SignedInfo for a vector's signed elements has the vector's structure and EXI
    layout (only the digest bytes differ: the vectors' digests are not real)."""
    checked = 0
    for vector in _signed_vectors(shared_dir):
        message = exi.decode(bytes.fromhex(vector["exi_hex"]), "iso2")
        theirs = message.header.signature
        if theirs.signed_info.signature_method.algorithm != xmldsig.ECDSA_SHA256:
            continue
        _, body = exi.body_element(message)
        elements = {body.id: body} if len(theirs.signed_info.reference) == 1 else None
        if elements is None:
            continue
        ours = xmldsig.signed_info(elements)
        for mine, their in zip(ours.reference, theirs.signed_info.reference, strict=True):
            mine.digest_value = their.digest_value
        assert exi.encode_fragment(ours) == exi.encode_fragment(theirs.signed_info), vector["id"]
        assert len(theirs.signature_value.value) == 64  # r||s on the wire, as we write
        with pytest.raises(xmldsig.BadDigest):  # structurally fine, digest not real
            xmldsig.verify(theirs, elements, key.public_key())
        checked += 1
    assert checked >= 3


@settings(max_examples=80, deadline=None)
@given(value=st.binary(max_size=80), uri=st.text(max_size=8), method=st.sampled_from(
    [xmldsig.SHA256, xmldsig.SHA512, "urn:x"]))
def test_arbitrary_signature_content_only_raises_xmldsig_errors(value, uri, method):
    key = ec.generate_private_key(ec.SECP256R1())
    sig = xmldsig.sign([auth_req()], key)
    sig.signature_value.value = value
    sig.signed_info.reference[0].digest_method.algorithm = method
    if uri:
        sig.signed_info.reference[0].uri = uri
    with pytest.raises(xmldsig.XmlDsigError):
        xmldsig.verify(sig, {"id1": auth_req()}, key.public_key())
