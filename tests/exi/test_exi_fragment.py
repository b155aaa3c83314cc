"""EXI element fragments for XMLDSig digests (ISO 15118-2 §7.9.2.4.2 / -20 §8.3.4).

Expected bytes are libcbv2g's ``encode_iso2_exiFragment`` output for the same content (as
published in the OpenChargingCloud/WWCP_ISO15118 conformance tests): if our fragment grammar
(all element declarations sorted by qname, 8-bit event codes for ISO-2) or a type grammar
differed, every signature we make or check would fail verification.
"""

from __future__ import annotations

import hashlib

import pytest

import exi_schemas as exi
from exi_schemas.generated import iso2, iso20

DSIG = "http://www.w3.org/2000/09/xmldsig#"


def signed_info(mod, uri: str, digest: bytes):
    return mod.SignedInfoType(
        canonicalization_method=mod.CanonicalizationMethodType(
            algorithm="http://www.w3.org/TR/canonical-exi/"),
        signature_method=mod.SignatureMethodType(
            algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"),
        reference=[mod.ReferenceType(
            uri=uri,
            digest_method=mod.DigestMethodType(algorithm="http://www.w3.org/2001/04/xmlenc#sha256"),
            digest_value=digest)])


CBV2G_ISO2 = [
    ("AuthorizationReq",
     iso2.AuthorizationReqType(gen_challenge=bytes(range(1, 17))),
     "8004420020406080a0c0e10121416181a1c1e207a0"),
    ("MeteringReceiptReq",
     iso2.MeteringReceiptReqType(session_id=bytes(8), sa_schedule_tuple_id=1,
                                 meter_info=iso2.MeterInfoType(meter_id="M1")),
     "80 79 41 00 00 00 00 00 00 00 00 00 00 00 89 a6 28 f4".replace(" ", "")),
    ("SalesTariff",
     iso2.SalesTariffType(sales_tariff_id=1, sales_tariff_entry=[iso2.SalesTariffEntryType(
         relative_time_interval=iso2.RelativeTimeIntervalType(start=0))]),
     "80ae4008000cfa00"),
]


@pytest.mark.parametrize(("name", "element", "expected"), CBV2G_ISO2,
                         ids=[c[0] for c in CBV2G_ISO2])
def test_iso2_fragment_matches_libcbv2g(name, element, expected):
    data = exi.encode_fragment(element)
    assert data.hex() == expected
    assert exi.decode_fragment(data, "iso2") == (name, element)


#: libcbv2g ``encode_iso2_exiFragment`` of a SignedInfo: the *message* schema's fragment grammar
#: (event 0x0d of the 8-bit iso2 fragment grammar). Not what ISO 15118-2 signs (below).
ISO2_GRAMMAR_SIGNED_INFO = (
    "80d044ad0e8e8e0745e5eeeeeee5cee665cdee4ce5ea8a45ec6c2dcdedcd2c6c2d85acaf0d25e86ad0e8e8e074"
    "5e5eeeeeee5cee665cdee4ce5e646060625e60685ef0dad8c8e6d2ce5adadee4ca46cac6c8e6c25ae6d0c264"
    "6a6c88188d2510c514b43a3a381d1797bbbbbb973b999737b933979918181897981a17bc36b632b73191b9b4"
    "30991a9b2100081018202830384048505860687078808890"
    "98a0a8b0b8c0c8d0d8e0e8f0f900fa00")


def test_iso2_signed_info_defaults_to_the_xmldsig_fragment_grammar():
    """ISO 15118-2 Annex J signs SignedInfo encoded with the xmldsig schema's fragment grammar
    (first bytes 80 81 12 b4, as Josev's codec and libcbv2g's xmldsig fragment encoder make),
    not with the iso2 message grammar (80 d0 44 ...): issue 11, docs/pnc.md."""
    si = signed_info(iso2, "#ID1", bytes(range(1, 33)))
    data = exi.encode_fragment(si)
    assert data.hex().startswith("808112b4")
    assert exi.decode_fragment(data, "iso2", xmldsig=True) == ("SignedInfo", si)
    # the same content with the message grammar is still there on request, byte-exact
    forced = exi.encode_fragment(si, xmldsig=False)
    assert forced.hex() == ISO2_GRAMMAR_SIGNED_INFO
    assert exi.decode_fragment(forced, "iso2") == ("SignedInfo", si)
    # the xmldsig grammar is one schema: -2 and -20 SignedInfo of equal content are equal bytes
    assert data == exi.encode_fragment(signed_info(iso20, "#ID1", bytes(range(1, 33))))


def test_signature_digest_is_over_the_fragment_not_the_document():
    req = iso2.AuthorizationReqType(id="ID1", gen_challenge=bytes(16))
    fragment = exi.encode_fragment(req)
    body = iso2.BodyType(authorization_req=req)
    document = exi.encode(iso2.V2G_Message(header=iso2.MessageHeaderType(session_id=bytes(8)),
                                           body=body))
    assert fragment != document
    assert hashlib.sha256(fragment).digest() != hashlib.sha256(document).digest()
    # SignedInfo carrying that digest is itself a fragment that decodes back.
    si = signed_info(iso2, "#ID1", hashlib.sha256(fragment).digest())
    assert exi.decode_fragment(exi.encode_fragment(si), "iso2", xmldsig=True) == ("SignedInfo", si)


def test_iso20_signed_info_uses_the_xmldsig_fragment_grammar():
    # libcbv2g encode_iso20_xmldsigFragment: 45 xmldsig elements, SignedInfo = event 32 of 6
    # bits, End Fragment = 46
    si = signed_info(iso20, "#ID1", bytes(32))
    data = exi.encode_fragment(si)
    assert data[0] == 0x80 and data[1] >> 2 == 32
    assert len(iso20.XMLDSIG_FRAGMENT_ELEMENTS) == 45
    assert exi.decode_fragment(data, "iso20", xmldsig=True) == ("SignedInfo", si)
    # the full CommonMessages fragment grammar is still available on request; SignedInfoType
    # is shared by every -20 schema (generated.iso20_types), so the request names the schema
    full = exi.encode_fragment(si, xmldsig=False, schema="iso20")
    assert exi.decode_fragment(full, "iso20") == ("SignedInfo", si)
    with pytest.raises(exi.ExiEncodeError, match="schema="):
        exi.encode_fragment(si, xmldsig=False)


def test_iso20_fragment_grammar_matches_libcbv2g_event_numbering():
    names = [row[1] for row in iso20.FRAGMENT_ELEMENTS]
    assert len(names) == 281  # events 0..280, End Fragment 282, 9-bit codes
    assert names.index("SignedInstallationData") == 231
    assert names[280] == "shortValue"
    keys = [(row[1], row[0]) for row in iso20.FRAGMENT_ELEMENTS]
    assert keys == sorted(keys)  # sorted by local name, then namespace


def test_fragment_of_unknown_type_is_an_encode_error():
    with pytest.raises(exi.ExiEncodeError):
        exi.encode_fragment(object())
