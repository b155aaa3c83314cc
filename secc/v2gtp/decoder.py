"""Sans-I/O incremental V2GTP decoder: feed bytes (and the time), get complete messages.

TCP and TLS deliver a byte stream, not messages: one read may hold half a header, three
messages, or the tail of one and the head of the next (RISE-V2G#85 broke on a message split
over TLS records; Josev assumed one read is one message). This decoder buffers exactly
header + payload_length bytes per message whatever the read boundaries are.

Time is an argument, as in aioquic: a message that has started must complete within
``message_timeout`` seconds, otherwise ``handle_timer`` reports ``IncompleteMessageTimeout``
(slow-loris protection). ``deadline()`` tells the driver when to call it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from secc.v2gtp.errors import (
    IncompleteMessageTimeout,
    InvalidProtocolVersion,
    PayloadTooLarge,
    Reaction,
    TruncatedMessage,
    UnknownPayloadType,
    V2GTPError,
)
from secc.v2gtp.header import HEADER_LENGTH, STREAM_PAYLOAD_TYPES, V2GTPHeader, V2GTPMessage

#: 64 KiB: far above the largest conformant message (CertificateInstallationRes, 4-6 kB,
#: so at least 8 KiB is needed) and small enough to keep a hostile peer from using memory.
DEFAULT_MAX_PAYLOAD_LENGTH = 64 * 1024
#: A started message must complete within this many seconds. Even a 64 KiB message takes
#: well under 100 ms on HomePlug Green PHY; 2 s leaves room for a congested link.
DEFAULT_MESSAGE_TIMEOUT = 2.0

DecoderEvent = V2GTPMessage | V2GTPError


class _State(enum.Enum):
    HEADER = "header"  # collecting the 8 header bytes
    PAYLOAD = "payload"  # collecting payload_length bytes
    DISCARD = "discard"  # skipping the payload of a message we do not accept
    CLOSED = "closed"  # a fatal error happened; nothing more is decoded


def validate_header(header: V2GTPHeader, *, accepted: Iterable[int],
                    max_payload_length: int) -> V2GTPError | None:
    """The header checks in the standard's order: version, payload type, length."""
    if not header.version_ok:
        return InvalidProtocolVersion(header.version, header.inverse_version)
    if header.payload_type not in accepted:
        return UnknownPayloadType(header.payload_type, header.payload_length)
    if header.payload_length > max_payload_length:
        return PayloadTooLarge(header.payload_length, max_payload_length)
    return None


class V2GTPDecoder:
    """Turns a byte stream into ``V2GTPMessage`` and ``V2GTPError`` events.

    Errors whose reaction is ``CLOSE_CONNECTION`` end decoding: the decoder reports the error
    once and then ignores further input (``closed`` is True). ``DISCARD_MESSAGE`` errors are
    reported and the announced payload is skipped.
    """

    def __init__(self, *, max_payload_length: int = DEFAULT_MAX_PAYLOAD_LENGTH,
                 accepted_payload_types: Iterable[int] = STREAM_PAYLOAD_TYPES,
                 message_timeout: float | None = DEFAULT_MESSAGE_TIMEOUT) -> None:
        if max_payload_length < 0:
            raise ValueError("max_payload_length must be >= 0")
        self.max_payload_length = max_payload_length
        self.accepted_payload_types = frozenset(accepted_payload_types)
        self.message_timeout = message_timeout
        self._state = _State.HEADER
        self._buffer = bytearray()
        self._header: V2GTPHeader | None = None
        self._discard_left = 0
        self._started_at: float | None = None  # when the first byte of this message came

    # --- queries ----------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._state is _State.CLOSED

    @property
    def buffered(self) -> int:
        """Bytes of the current, incomplete message held (header bytes included)."""
        if self._state is _State.HEADER:
            return len(self._buffer)
        return HEADER_LENGTH + len(self._buffer)

    @property
    def in_message(self) -> bool:
        """Whether a message has started and not yet completed."""
        return self._started_at is not None

    def deadline(self) -> float | None:
        """When the current partial message times out; None when idle or unlimited."""
        if self._started_at is None or self.message_timeout is None or self.closed:
            return None
        return self._started_at + self.message_timeout

    # --- input ------------------------------------------------------------------------------
    def feed(self, data: bytes | bytearray | memoryview, now: float) -> list[DecoderEvent]:
        """Consume ``data`` received at time ``now``; return the events it completes."""
        events: list[DecoderEvent] = []
        if self.closed:
            return events
        # A late chunk does not rescue a message whose deadline has already passed.
        events += self.handle_timer(now)
        view = memoryview(bytes(data)) if not isinstance(data, bytes) else memoryview(data)
        pos = 0
        while pos < len(view) and not self.closed:
            if self._started_at is None:
                self._started_at = now
            if self._state is _State.HEADER:
                take = min(HEADER_LENGTH - len(self._buffer), len(view) - pos)
                self._buffer += view[pos:pos + take]
                pos += take
                if len(self._buffer) == HEADER_LENGTH:
                    self._on_header(events)
            elif self._state is _State.PAYLOAD:
                assert self._header is not None
                take = min(self._header.payload_length - len(self._buffer), len(view) - pos)
                self._buffer += view[pos:pos + take]
                pos += take
                self._complete_payload_if_done(events)
            elif self._state is _State.DISCARD:
                take = min(self._discard_left, len(view) - pos)
                self._discard_left -= take
                pos += take
                if self._discard_left == 0:
                    self._next_message()
        return events

    def handle_timer(self, now: float) -> list[DecoderEvent]:
        """Report ``IncompleteMessageTimeout`` when the partial message is overdue."""
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return []
        expected = None if self._header is None else HEADER_LENGTH + self._header.payload_length
        assert self.message_timeout is not None
        return [self._fail(IncompleteMessageTimeout(self.buffered, expected,
                                                    self.message_timeout))]

    def connection_lost(self) -> list[DecoderEvent]:
        """The stream ended: a half-received message is an error, an idle decoder is not."""
        if self.closed:
            return []
        if self._started_at is not None:
            return [self._fail(TruncatedMessage(self.buffered))]
        self._state = _State.CLOSED
        return []

    # --- internals --------------------------------------------------------------------------
    def _on_header(self, events: list[DecoderEvent]) -> None:
        header = V2GTPHeader.unpack(self._buffer)
        self._buffer.clear()
        error = validate_header(header, accepted=self.accepted_payload_types,
                                max_payload_length=self.max_payload_length)
        if error is None:
            self._header = header
            self._state = _State.PAYLOAD
            self._complete_payload_if_done(events)  # zero-length payloads complete at once
        elif error.reaction is Reaction.DISCARD_MESSAGE:
            events.append(error)
            self._header = header
            self._discard_left = header.payload_length
            self._state = _State.DISCARD
            if self._discard_left == 0:
                self._next_message()
        else:
            events.append(self._fail(error))

    def _complete_payload_if_done(self, events: list[DecoderEvent]) -> None:
        assert self._header is not None
        if len(self._buffer) == self._header.payload_length:
            events.append(V2GTPMessage(self._header.payload_type, bytes(self._buffer)))
            self._next_message()

    def _next_message(self) -> None:
        self._buffer.clear()
        self._header = None
        self._discard_left = 0
        self._started_at = None
        self._state = _State.HEADER

    def _fail(self, error: V2GTPError) -> V2GTPError:
        self._state = _State.CLOSED
        self._buffer = bytearray()
        self._started_at = None
        return error
