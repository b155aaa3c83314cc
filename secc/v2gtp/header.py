"""The V2GTP header (ISO 15118-2 §7.8.3, ISO 15118-20 §7.x, DIN 70121 §8.x): 8 bytes.

::

    0        1                2                4                        8
    | 0x01   | 0xFE (inverse) | payload type   | payload length (BE u32) | payload ...

Payload types by standard (ISO 15118-2 Table 10, ISO 15118-20 Table 12; DIN 70121 uses the
-2 values). The -20 SDP "wireless" pair 0x9002/0x9003 carries the extended SDP used by ACDP and
WPT; there is no EMSP variant. EVerest's libiso15118 also knows 0x8010/0x8011 (DER extensions
from a later amendment); we do not list them as known until we have the amendment text.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

HEADER_LENGTH = 8
PROTOCOL_VERSION = 0x01
INVERSE_PROTOCOL_VERSION = 0xFE
_HEADER = struct.Struct(">BBHI")


class PayloadType(enum.IntEnum):
    """All payload type values that ISO 15118-2 and ISO 15118-20 define."""

    EXI = 0x8001  # -2 / DIN: every EXI message; -20: SupportedAppProtocol ("SAP")
    ISO20_MAIN = 0x8002  # -20 common messages (SessionSetup, Authorization, ...)
    ISO20_AC = 0x8003
    ISO20_DC = 0x8004
    ISO20_ACDP = 0x8005
    ISO20_WPT = 0x8006
    ISO20_SCHEDULE_RENEGOTIATION = 0x8101
    ISO20_METERING_CONFIRMATION = 0x8102
    ISO20_ACDP_SYSTEM_STATUS = 0x8103
    ISO20_PARKING_STATUS = 0x8104
    SDP_REQUEST = 0x9000
    SDP_RESPONSE = 0x9001
    SDP_REQUEST_WIRELESS = 0x9002  # -20, ACDP/WPT
    SDP_RESPONSE_WIRELESS = 0x9003


# The -20 alias, so the -20 engine reads like its standard.
SAP = PayloadType.EXI

#: Payload types that travel on the V2G TCP/TLS connection (the SDP ones travel on UDP).
STREAM_PAYLOAD_TYPES: frozenset[int] = frozenset({
    PayloadType.EXI, PayloadType.ISO20_MAIN, PayloadType.ISO20_AC, PayloadType.ISO20_DC,
    PayloadType.ISO20_ACDP, PayloadType.ISO20_WPT, PayloadType.ISO20_SCHEDULE_RENEGOTIATION,
    PayloadType.ISO20_METERING_CONFIRMATION, PayloadType.ISO20_ACDP_SYSTEM_STATUS,
    PayloadType.ISO20_PARKING_STATUS,
})

#: Payload types that travel in SDP datagrams.
DATAGRAM_PAYLOAD_TYPES: frozenset[int] = frozenset({
    PayloadType.SDP_REQUEST, PayloadType.SDP_RESPONSE,
    PayloadType.SDP_REQUEST_WIRELESS, PayloadType.SDP_RESPONSE_WIRELESS,
})


@dataclass(frozen=True, slots=True)
class V2GTPHeader:
    payload_type: int
    payload_length: int
    version: int = PROTOCOL_VERSION
    inverse_version: int = INVERSE_PROTOCOL_VERSION

    @classmethod
    def unpack(cls, data: bytes | bytearray | memoryview) -> "V2GTPHeader":
        """Read the 8 header bytes; no validation (see ``decoder.validate_header``)."""
        version, inverse, payload_type, length = _HEADER.unpack_from(data)
        return cls(payload_type, length, version, inverse)

    def pack(self) -> bytes:
        return _HEADER.pack(self.version, self.inverse_version, self.payload_type,
                            self.payload_length)

    @property
    def version_ok(self) -> bool:
        return (self.version == PROTOCOL_VERSION
                and self.inverse_version == INVERSE_PROTOCOL_VERSION)


@dataclass(frozen=True, slots=True)
class V2GTPMessage:
    """One complete V2GTP message: the payload type and exactly payload-length bytes."""

    payload_type: int
    payload: bytes

    def to_bytes(self) -> bytes:
        return encode_message(self.payload_type, self.payload)


def encode_message(payload_type: int, payload: bytes) -> bytes:
    """Header + payload, ready for the socket."""
    if not 0 <= payload_type <= 0xFFFF:
        raise ValueError(f"payload type {payload_type:#x} does not fit 16 bits")
    if len(payload) > 0xFFFFFFFF:
        raise ValueError("payload longer than 2**32-1 bytes")
    return _HEADER.pack(PROTOCOL_VERSION, INVERSE_PROTOCOL_VERSION, payload_type,
                        len(payload)) + bytes(payload)


def payload_type_name(value: int) -> str:
    """A readable name for logs, also for unknown values."""
    try:
        return PayloadType(value).name
    except ValueError:
        kind = "manufacturer" if value >= 0xA000 else "reserved"
        return f"{kind}_{value:#06x}"
