"""Typed V2GTP errors and the one table that maps each to the standard's reaction.

ISO 15118-2 §7.8.3 (and DIN 70121, which copies it) validates every received header in
order: protocol version and its inverse, then payload type, then payload length. A
"negative acknowledgement" is named for failures but no such message exists on the TCP
connection, so the reactions that are left are: close the connection (the framing can no
longer be trusted), or discard exactly this one message and go on (the framing is intact
because the header was well formed and its length is known).
"""

from __future__ import annotations

import enum


class Reaction(enum.Enum):
    CLOSE_CONNECTION = "close_connection"
    DISCARD_MESSAGE = "discard_message"


class V2GTPError(Exception):
    """Base of everything the V2GTP layer reports about bad input from the peer."""

    @property
    def reaction(self) -> Reaction:
        return REACTIONS[type(self)]


class InvalidProtocolVersion(V2GTPError):
    """Version is not 0x01 or the inverse version is not its complement (0xFE)."""

    def __init__(self, version: int, inverse_version: int) -> None:
        super().__init__(f"protocol version {version:#04x}/inverse {inverse_version:#04x}, "
                         f"expected 0x01/0xfe")
        self.version = version
        self.inverse_version = inverse_version


class UnknownPayloadType(V2GTPError):
    """A well-formed header whose payload type this endpoint does not accept here."""

    def __init__(self, payload_type: int, payload_length: int) -> None:
        super().__init__(f"payload type {payload_type:#06x} not accepted "
                         f"({payload_length} payload bytes discarded)")
        self.payload_type = payload_type
        self.payload_length = payload_length


class PayloadTooLarge(V2GTPError):
    """The header announces more bytes than our configured buffer limit."""

    def __init__(self, payload_length: int, limit: int) -> None:
        super().__init__(f"payload length {payload_length} exceeds the limit of {limit} bytes")
        self.payload_length = payload_length
        self.limit = limit


class IncompleteMessageTimeout(V2GTPError):
    """A started message did not complete in time (slow sender or slow-loris attack)."""

    def __init__(self, received: int, expected: int | None, timeout: float) -> None:
        want = "header" if expected is None else f"{expected} bytes"
        super().__init__(f"message incomplete after {timeout:.3f} s: {received} bytes of {want}")
        self.received = received
        self.expected = expected
        self.timeout = timeout


class TruncatedMessage(V2GTPError):
    """The peer closed or reset the connection in the middle of a message."""

    def __init__(self, received: int) -> None:
        super().__init__(f"connection ended inside a message ({received} bytes buffered)")
        self.received = received


#: The one mapping from error to reaction. Oversized messages close the connection: ISO
#: 15118-2 asks to discard them, but discarding means reading up to 4 GiB from a peer that
#: is either broken or hostile; no conformant V2G message comes near our limit.
REACTIONS: dict[type[V2GTPError], Reaction] = {
    InvalidProtocolVersion: Reaction.CLOSE_CONNECTION,
    UnknownPayloadType: Reaction.DISCARD_MESSAGE,
    PayloadTooLarge: Reaction.CLOSE_CONNECTION,
    IncompleteMessageTimeout: Reaction.CLOSE_CONNECTION,
    TruncatedMessage: Reaction.CLOSE_CONNECTION,
}


class ConnectionClosed(Exception):
    """The V2GTP connection is closed (by the peer, by us, or after a fatal error)."""


class ReceiveTimeout(TimeoutError):
    """No complete message arrived within the receive timeout. The connection stays open:
    what a timeout means (FAILED_SequenceError, stop, ...) is the session's decision."""
