"""SDP (SECC Discovery Protocol) messages, ISO 15118-2 §7.10.1 / ISO 15118-20 / DIN 70121.

The EV multicasts a request to ``[ff02::1]:15118`` on the PLC link; the SECC answers unicast
with where its V2G server listens. Both are V2GTP messages over UDP::

    request  (0x9000): security (1) | transport protocol (1)
    response (0x9001): SECC IPv6 address (16) | SECC port (2, BE) | security (1) | transport (1)

ISO 15118-20 adds 0x9002/0x9003, the SDP variant for wireless and automated connection
devices (ACDP, WPT) with extra fields (P2PS/PPD flags, coupling type, EV and EVSE ids, per
other implementations; we have not checked the standard's text). A conductive charger does
not answer them: we recognise and log them. There is no EMSP- or W-extension variant in the
-20 payload type table (0x9004-0x9FFF are reserved).
"""

from __future__ import annotations

import enum
import ipaddress
import struct
from dataclasses import dataclass

from secc.v2gtp.header import HEADER_LENGTH, PayloadType, V2GTPHeader, encode_message

SDP_PORT = 15118
ALL_NODES = "ff02::1"
REQUEST_PAYLOAD_LENGTH = 2
RESPONSE_PAYLOAD_LENGTH = 20
_RESPONSE = struct.Struct(">16sHBB")


class Security(enum.IntEnum):
    TLS = 0x00
    NO_TLS = 0x10


class TransportProtocol(enum.IntEnum):
    TCP = 0x00
    UDP = 0x10  # reserved: no V2G message is defined over UDP


class SDPError(ValueError):
    """A datagram that is not a usable SDP message; the reason is in the text."""


class NotAnSDPRequest(SDPError):
    """Valid V2GTP, but another payload type (e.g. a stray response, or 0x9002)."""

    def __init__(self, payload_type: int) -> None:
        super().__init__(f"payload type {payload_type:#06x} is not an SDP request (0x9000)")
        self.payload_type = payload_type


@dataclass(frozen=True, slots=True)
class SDPRequest:
    security: Security
    transport: TransportProtocol = TransportProtocol.TCP

    def to_bytes(self) -> bytes:
        return encode_message(PayloadType.SDP_REQUEST, bytes([self.security, self.transport]))


@dataclass(frozen=True, slots=True)
class SDPResponse:
    address: str  # the SECC's link-local address, text form without scope
    port: int
    security: Security
    transport: TransportProtocol = TransportProtocol.TCP

    def to_bytes(self) -> bytes:
        packed = ipaddress.IPv6Address(self.address).packed
        return encode_message(PayloadType.SDP_RESPONSE,
                              _RESPONSE.pack(packed, self.port, self.security, self.transport))


def _split(datagram: bytes, expected_type: int, expected_length: int) -> bytes:
    """Validate the V2GTP header of an SDP datagram and return its payload."""
    if len(datagram) < HEADER_LENGTH:
        raise SDPError(f"datagram of {len(datagram)} bytes is shorter than a V2GTP header")
    header = V2GTPHeader.unpack(datagram)
    if not header.version_ok:
        raise SDPError(f"bad V2GTP version {header.version:#04x}/"
                       f"{header.inverse_version:#04x}")
    if header.payload_type != expected_type:
        raise NotAnSDPRequest(header.payload_type) if expected_type == PayloadType.SDP_REQUEST \
            else SDPError(f"payload type {header.payload_type:#06x}, expected "
                          f"{expected_type:#06x}")
    if header.payload_length != expected_length:
        raise SDPError(f"payload length {header.payload_length}, expected {expected_length}")
    if len(datagram) != HEADER_LENGTH + expected_length:
        raise SDPError(f"datagram length {len(datagram)} does not match the header "
                       f"({HEADER_LENGTH + expected_length})")
    return datagram[HEADER_LENGTH:]


def parse_request(datagram: bytes) -> SDPRequest:
    payload = _split(datagram, PayloadType.SDP_REQUEST, REQUEST_PAYLOAD_LENGTH)
    try:
        security = Security(payload[0])
    except ValueError:
        raise SDPError(f"unknown security value {payload[0]:#04x}") from None
    try:
        transport = TransportProtocol(payload[1])
    except ValueError:
        raise SDPError(f"unknown transport protocol value {payload[1]:#04x}") from None
    return SDPRequest(security, transport)


def parse_response(datagram: bytes) -> SDPResponse:
    payload = _split(datagram, PayloadType.SDP_RESPONSE, RESPONSE_PAYLOAD_LENGTH)
    packed, port, security, transport = _RESPONSE.unpack(payload)
    try:
        return SDPResponse(str(ipaddress.IPv6Address(packed)), port, Security(security),
                           TransportProtocol(transport))
    except ValueError as exc:
        raise SDPError(f"bad SDP response field: {exc}") from None
