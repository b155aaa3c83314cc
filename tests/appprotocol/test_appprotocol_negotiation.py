"""SupportedAppProtocol negotiation with the offers real cars send.

The offers below were read by hand from the supportedAppProtocolReq EXI streams in
shared/realcar/messages.jsonl (bit-level decode of the AppProtocol grammar):

* Hyundai Ioniq, pyPLC, Josev: DIN 2.0 schema 1 prio 1
* Tesla Model 3/Y: DIN 2.0 schema 1 prio 2, urn:tesla:din:2018:MsgDef 0.7 schema 2 prio 1
* Tesla Model X Plaid: DIN 2.0 schema 1 prio 3, Tesla 0.7 schema 2 prio 2
* Polestar 2, Audi Q4, VW: DIN 2.0 schema 1 prio 1, ISO 15118-2 2.0 schema 0 prio 2
"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secc.appprotocol import (
    DIN_2_0,
    ISO2_2_0,
    ISO20_AC_1_0,
    ISO20_DC_1_0,
    TESLA_NAMESPACE,
    AppProtocol,
    Preference,
    Protocol,
    ResponseCode,
    SupportedVersion,
    negotiate,
)

DIN = Protocol.DIN70121.namespace
ISO2 = Protocol.ISO15118_2.namespace
ISO20_DC = Protocol.ISO15118_20_DC.namespace

IONIQ = [AppProtocol(DIN, 2, 0, 1, 1)]
TESLA_MODEL_Y = [AppProtocol(DIN, 2, 0, 1, 2), AppProtocol(TESLA_NAMESPACE, 0, 7, 2, 1)]
TESLA_MODEL_X = [AppProtocol(DIN, 2, 0, 1, 3), AppProtocol(TESLA_NAMESPACE, 0, 7, 2, 2)]
POLESTAR_AUDI_VW = [AppProtocol(DIN, 2, 0, 1, 1), AppProtocol(ISO2, 2, 0, 0, 2)]
ALL = [ISO20_DC_1_0, ISO20_AC_1_0, ISO2_2_0, DIN_2_0]


def test_namespaces_are_the_schemas_target_namespaces(shared_dir):
    schemas = shared_dir / "exi_schemas"
    found = set()
    for xsd in schemas.rglob("*.xsd"):
        found |= set(re.findall(r'targetNamespace="([^"]+)"', xsd.read_text(errors="replace")))
    for protocol in Protocol:
        assert protocol.namespace in found, protocol


def test_hand_decoded_offers_match_the_captured_bytes(shared_dir):
    """The byte-aligned namespace strings really are in the captured requests."""
    requests = [json.loads(line) for line in (shared_dir / "realcar/messages.jsonl").open()
                if '"supportedAppProtocolReq"' in line]
    producers = {p: r["exi_hex"] for r in requests for p in r["producers"]}
    assert TESLA_NAMESPACE.encode().hex() in producers["Tesla Model Y (real)"]
    assert TESLA_NAMESPACE.encode().hex() in producers["Tesla Model X Plaid (real)"]
    assert ISO2.encode().hex() in producers["Polestar 2 (real)"]
    assert ISO2.encode().hex() not in producers["Hyundai Ioniq (real)"]


def test_tesla_vendor_namespace_first_still_gets_din():
    for offers in (TESLA_MODEL_Y, TESLA_MODEL_X):
        result = negotiate(offers, ALL)
        assert result.response_code is ResponseCode.OK_SUCCESSFUL_NEGOTIATION
        assert result.schema_id == 1 and result.protocol is Protocol.DIN70121


def test_ioniq_gets_din_with_its_schema_id():
    result = negotiate(IONIQ, ALL)
    assert (result.response_code, result.schema_id) == (ResponseCode.OK_SUCCESSFUL_NEGOTIATION, 1)


def test_ev_priority_decides_by_default_and_secc_preference_can_override():
    assert negotiate(POLESTAR_AUDI_VW, ALL).protocol is Protocol.DIN70121
    result = negotiate(POLESTAR_AUDI_VW, ALL, Preference.SECC)
    assert result.protocol is Protocol.ISO15118_2 and result.schema_id == 0


def test_only_protocols_we_support_are_chosen():
    result = negotiate(POLESTAR_AUDI_VW, [ISO2_2_0])
    assert result.protocol is Protocol.ISO15118_2 and result.schema_id == 0
    result = negotiate(TESLA_MODEL_Y, [ISO2_2_0])
    assert result.response_code is ResponseCode.FAILED_NO_NEGOTIATION
    assert result.schema_id is None and not result.ok


def test_minor_deviation_is_reported_and_major_mismatch_is_refused():
    result = negotiate([AppProtocol(ISO2, 2, 1, 7, 1)], ALL)
    assert result.response_code is ResponseCode.OK_SUCCESSFUL_NEGOTIATION_WITH_MINOR_DEVIATION
    assert result.schema_id == 7
    assert not negotiate([AppProtocol(ISO2, 3, 0, 7, 1)], ALL).ok


def test_exact_minor_is_preferred_over_deviation_in_our_list():
    ours = [SupportedVersion(Protocol.ISO15118_2, 2, 1), ISO2_2_0]
    result = negotiate([AppProtocol(ISO2, 2, 0, 4, 1)], ours)
    assert result.response_code is ResponseCode.OK_SUCCESSFUL_NEGOTIATION
    assert result.supported == ISO2_2_0


def test_iso20_dc_offer_is_chosen_when_the_ev_prefers_it():
    offers = [AppProtocol(ISO20_DC, 1, 0, 1, 1), AppProtocol(ISO2, 2, 0, 2, 2),
              AppProtocol(DIN, 2, 0, 3, 3)]
    result = negotiate(offers, ALL)
    assert result.protocol is Protocol.ISO15118_20_DC and result.protocol.is_iso20
    assert result.schema_id == 1


def test_empty_offer_and_unknown_namespaces_fail_cleanly():
    assert negotiate([], ALL).response_code is ResponseCode.FAILED_NO_NEGOTIATION
    assert not negotiate([AppProtocol("urn:nonsense", 1, 0, 1, 1)], ALL).ok


def test_duplicate_priorities_fall_back_to_list_order():
    offers = [AppProtocol(ISO2, 2, 0, 5, 1), AppProtocol(DIN, 2, 0, 6, 1)]
    assert negotiate(offers, ALL).schema_id == 5


@settings(max_examples=200, deadline=None)
@given(st.lists(st.builds(AppProtocol,
                          st.sampled_from([DIN, ISO2, ISO20_DC, TESLA_NAMESPACE, "", "x"]),
                          st.integers(0, 3), st.integers(0, 3), st.integers(0, 255),
                          st.integers(-1, 30)), max_size=25))
def test_negotiation_never_raises_and_picks_an_offered_supported_entry(offers):
    result = negotiate(offers, ALL)
    if result.ok:
        assert result.chosen in offers
        assert result.schema_id == result.chosen.schema_id
        assert result.supported in ALL
        assert result.supported.protocol.namespace == result.chosen.namespace
    else:
        assert all(o.namespace not in {s.protocol.namespace for s in ALL}
                   or all(o.major != s.major for s in ALL
                          if s.protocol.namespace == o.namespace) for o in offers)


@pytest.mark.parametrize("value", [code.value for code in ResponseCode])
def test_response_codes_are_the_schema_enumeration(shared_dir, value):
    text = (shared_dir / "exi_schemas/appprotocol/V2G_CI_AppProtocol.xsd").read_text()
    assert f'value="{value}"' in text


def test_each_protocol_names_the_payload_types_its_session_uses():
    from secc.v2gtp import PayloadType

    assert Protocol.DIN70121.payload_types == {PayloadType.EXI}
    assert Protocol.ISO15118_2.payload_types == {PayloadType.EXI}
    assert Protocol.ISO15118_20_DC.payload_types == {0x8002, 0x8004}
    assert Protocol.ISO15118_20_AC.payload_types == {0x8002, 0x8003}
    assert all(p.payload_types for p in Protocol)
