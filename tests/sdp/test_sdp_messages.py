"""SDP message formats and the security-selection rule (sans-I/O, no sockets)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secc.sdp import (
    NotAnSDPRequest,
    SDPError,
    SDPOffer,
    SDPRequest,
    SDPResponder,
    SDPResponse,
    Security,
    TransportProtocol,
    UnsupportedTransport,
    parse_request,
    parse_response,
)
from secc.v2gtp import PayloadType, encode_message

SECC = "fe80::1234:56ff:fe78:9abc"


def test_request_bytes_are_header_plus_security_and_transport():
    assert SDPRequest(Security.NO_TLS).to_bytes() == bytes.fromhex("01fe9000000000021000")
    assert parse_request(bytes.fromhex("01fe9000000000020000")) == SDPRequest(Security.TLS)


def test_response_bytes_carry_address_port_security_transport():
    data = SDPResponse(SECC, 50000, Security.TLS).to_bytes()
    assert data[:8] == bytes.fromhex("01fe900100000014")
    assert data[8:24] == bytes.fromhex("fe80000000000000123456fffe789abc")
    assert data[24:] == bytes.fromhex("c350") + b"\x00\x00"
    assert parse_response(data) == SDPResponse(SECC, 50000, Security.TLS)


@pytest.mark.parametrize("datagram, why", [
    (b"", "shorter"),
    (bytes.fromhex("02fd9000000000021000"), "version"),
    (bytes.fromhex("01fe9000000000031000ff"), "payload length"),
    (bytes.fromhex("01fe90000000000210"), "datagram length"),
    (bytes.fromhex("01fe9000000000021000ff"), "datagram length"),
    (bytes.fromhex("01fe9000000000022000"), "security"),
    (bytes.fromhex("01fe9000000000021020"), "transport"),
])
def test_malformed_requests_are_typed_errors(datagram, why):
    with pytest.raises(SDPError, match=why):
        parse_request(datagram)


def test_other_payload_types_are_not_requests():
    for payload_type in (PayloadType.SDP_RESPONSE, PayloadType.SDP_REQUEST_WIRELESS,
                         PayloadType.EXI):
        with pytest.raises(NotAnSDPRequest):
            parse_request(encode_message(payload_type, b"\x00\x00"))


@pytest.mark.parametrize("tcp, tls, asked, expected", [
    (50000, 50001, Security.TLS, (Security.TLS, 50001)),
    (50000, 50001, Security.NO_TLS, (Security.NO_TLS, 50000)),
    (None, 50001, Security.NO_TLS, (Security.TLS, 50001)),  # TLS enforced: EV decides
    (50000, None, Security.TLS, (Security.NO_TLS, 50000)),  # no TLS here: EV decides
])
def test_security_selection(tcp, tls, asked, expected):
    responder = SDPResponder(SDPOffer(SECC, tcp, tls))
    response = responder.respond(SDPRequest(asked))
    assert (response.security, response.port) == expected
    assert response.address == SECC and response.transport is TransportProtocol.TCP


def test_udp_transport_request_is_refused_and_offer_needs_a_port():
    with pytest.raises(UnsupportedTransport):
        SDPResponder(SDPOffer(SECC, 50000)).respond(SDPRequest(Security.NO_TLS,
                                                               TransportProtocol.UDP))
    with pytest.raises(ValueError):
        SDPOffer(SECC)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_responder_never_crashes_on_garbage(data):
    responder = SDPResponder(SDPOffer(SECC, 50000, 50001))
    try:
        request, response = responder.handle_datagram(data)
    except SDPError:
        return
    assert response.port in (50000, 50001)
    assert request.security in (Security.TLS, Security.NO_TLS)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=16, max_size=16), st.integers(0, 65535),
       st.sampled_from(list(Security)), st.sampled_from(list(TransportProtocol)))
def test_response_round_trips(address, port, security, transport):
    import ipaddress

    response = SDPResponse(str(ipaddress.IPv6Address(address)), port, security, transport)
    assert parse_response(response.to_bytes()) == response
