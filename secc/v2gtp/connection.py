"""One V2GTP connection over an asyncio stream: the session layer's message interface.

Both the SECC server and the EV simulator's client use this class. The session engine does::

    async for message in connection:            # or: await connection.receive(timeout)
        reply = engine.handle(message.payload_type, message.payload, now)
        await connection.send(PayloadType.EXI, reply)

Framing, header validation, slow-loris protection and the error reactions are handled here
(by ``V2GTPDecoder``); the session only ever sees complete, accepted messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable

from secc.common.logs import layer_logger
from secc.v2gtp.decoder import (
    DEFAULT_MAX_PAYLOAD_LENGTH,
    DEFAULT_MESSAGE_TIMEOUT,
    V2GTPDecoder,
)
from secc.v2gtp.errors import ConnectionClosed, Reaction, ReceiveTimeout, V2GTPError
from secc.v2gtp.header import STREAM_PAYLOAD_TYPES, V2GTPMessage, encode_message, payload_type_name

log = layer_logger("v2gtp")

READ_CHUNK = 64 * 1024


class _Default:
    """Marker type: "use the connection's read_timeout"."""


DEFAULT = _Default()


class V2GTPConnection:
    """Messages in, messages out, on one TCP or TLS stream.

    ``receive(timeout)`` returns the next complete message, raises ``ReceiveTimeout`` (the
    connection stays open), or ``ConnectionClosed`` (peer closed, reset, or a fatal header
    error: then ``close_reason`` holds the ``V2GTPError``). Messages with an unaccepted
    payload type are discarded with a log line, per ISO 15118-2.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                 read_timeout: float | None = None,
                 max_payload_length: int = DEFAULT_MAX_PAYLOAD_LENGTH,
                 message_timeout: float | None = DEFAULT_MESSAGE_TIMEOUT,
                 accepted_payload_types: Iterable[int] = STREAM_PAYLOAD_TYPES) -> None:
        self._reader = reader
        self._writer = writer
        self.read_timeout = read_timeout
        self._decoder = V2GTPDecoder(max_payload_length=max_payload_length,
                                     accepted_payload_types=accepted_payload_types,
                                     message_timeout=message_timeout)
        self._ready: deque[V2GTPMessage] = deque()
        self._closed = False
        self.close_reason: V2GTPError | BaseException | str | None = None
        self.messages_received = 0
        self.messages_sent = 0
        self.discarded = 0
        self.peer: tuple = writer.get_extra_info("peername") or ()
        self.local: tuple = writer.get_extra_info("sockname") or ()
        self._receive_lock = asyncio.Lock()

    # --- facts about the connection -------------------------------------------------------
    @property
    def ssl_object(self) -> ssl.SSLObject | None:
        return self._writer.get_extra_info("ssl_object")

    @property
    def is_tls(self) -> bool:
        return self.ssl_object is not None

    @property
    def tls_version(self) -> str | None:
        obj = self.ssl_object
        return obj.version() if obj else None

    @property
    def cipher(self) -> str | None:
        obj = self.ssl_object
        return obj.cipher()[0] if obj and obj.cipher() else None

    def peer_certificate_der(self) -> bytes | None:
        """The EV's (vehicle) certificate when mutual TLS authenticated one."""
        obj = self.ssl_object
        return obj.getpeercert(binary_form=True) if obj else None

    @property
    def buffered_bytes(self) -> int:
        """Bytes of an incomplete message received so far (0 between messages)."""
        return self._decoder.buffered

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def accepted_payload_types(self) -> frozenset[int]:
        return self._decoder.accepted_payload_types

    def restrict_payload_types(self, payload_types: Iterable[int]) -> None:
        """Narrow what is accepted once the protocol is known (after SupportedAppProtocol):
        DIN/-2 sessions take only 0x8001; a -20 DC session 0x8002 and 0x8004, ... Messages
        of other types are then discarded with a log line, as the standard asks."""
        self._decoder.accepted_payload_types = frozenset(payload_types)

    # --- receiving ----------------------------------------------------------------------------
    async def receive(self, timeout: float | None | _Default = DEFAULT) -> V2GTPMessage:
        """The next complete accepted message.

        ``timeout`` (seconds, None = wait forever) defaults to the connection's
        ``read_timeout``; the session passes its per-state sequence timeout here.
        """
        limit = self.read_timeout if isinstance(timeout, _Default) else timeout
        async with self._receive_lock:
            deadline = None if limit is None else time.monotonic() + limit
            while not self._ready:
                if self._closed:
                    raise ConnectionClosed(self._describe_close())
                await self._read_once(deadline, limit)
            self.messages_received += 1
            return self._ready.popleft()

    async def _read_once(self, deadline: float | None, limit: float | None) -> None:
        now = time.monotonic()
        wait_until = min((d for d in (deadline, self._decoder.deadline()) if d is not None),
                         default=None)
        try:
            if wait_until is None:
                data = await self._reader.read(READ_CHUNK)
            else:
                async with asyncio.timeout(max(0.0, wait_until - now)):
                    data = await self._reader.read(READ_CHUNK)
        except TimeoutError:
            now = time.monotonic()
            self._handle_events(self._decoder.handle_timer(now))
            if self._closed:
                return
            if deadline is not None and now >= deadline:
                raise ReceiveTimeout(f"no complete V2GTP message within {limit} s") from None
            return
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            self._handle_events(self._decoder.connection_lost())
            await self._close(exc if self.close_reason is None else None)
            return
        if not data:
            self._handle_events(self._decoder.connection_lost())
            await self._close("peer closed the connection" if self.close_reason is None
                              else None)
            return
        self._handle_events(self._decoder.feed(data, time.monotonic()))

    def _handle_events(self, events: list) -> None:
        for event in events:
            if isinstance(event, V2GTPMessage):
                self._ready.append(event)
            elif event.reaction is Reaction.DISCARD_MESSAGE:
                self.discarded += 1
                log.warning("V2GTP message discarded", extra={
                    "peer": _peer_text(self.peer), "error": type(event).__name__,
                    "detail": str(event)})
            else:
                log.warning("V2GTP connection closed on protocol error", extra={
                    "peer": _peer_text(self.peer), "error": type(event).__name__,
                    "detail": str(event)})
                if self.close_reason is None:  # keep "replaced"/"refused" if that came first
                    self.close_reason = event
                self._closed = True
                self._abort()

    def __aiter__(self) -> AsyncIterator[V2GTPMessage]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[V2GTPMessage]:
        """Messages until the connection closes; ``ReceiveTimeout`` propagates."""
        while True:
            try:
                yield await self.receive()
            except ConnectionClosed:
                return

    # --- sending ------------------------------------------------------------------------------
    async def send(self, payload_type: int, payload: bytes) -> None:
        """Frame and send one message; waits until the kernel buffer takes it."""
        if self._closed:
            raise ConnectionClosed(self._describe_close())
        try:
            self._writer.write(encode_message(payload_type, payload))
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            await self._close(exc)
            raise ConnectionClosed(self._describe_close()) from exc
        self.messages_sent += 1
        log.debug("V2GTP message sent", extra={"payload_type": payload_type_name(payload_type),
                                                "length": len(payload)})

    async def send_raw(self, data: bytes) -> None:
        """Bytes as they are, without framing: for tests and the EV simulator's misbehaviour."""
        self._writer.write(data)
        await self._writer.drain()

    # --- closing ------------------------------------------------------------------------------
    async def close(self) -> None:
        await self._close("closed locally")

    async def _close(self, reason: object) -> None:
        if reason is not None and self.close_reason is None:
            self.close_reason = reason  # type: ignore[assignment]
        self._closed = True
        if self._writer.is_closing():
            return
        self._writer.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await self._writer.wait_closed()

    def abort(self, reason: str) -> None:
        """Drop the connection at once with a TCP reset (no TLS close_notify, no FIN): for a
        peer we refuse or replace. Pending and later ``receive`` calls raise
        ``ConnectionClosed``."""
        if self.close_reason is None:
            self.close_reason = reason
        self._closed = True
        self._abort()

    def _abort(self) -> None:
        """Close at once, with a TCP reset: after a framing error nothing more is sent."""
        transport = self._writer.transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()

    def _describe_close(self) -> str:
        return str(self.close_reason) if self.close_reason is not None else "connection closed"

    async def __aenter__(self) -> "V2GTPConnection":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _peer_text(peer: tuple) -> str:
    if len(peer) >= 4 and peer[3]:
        return f"[{peer[0]}%{peer[3]}]:{peer[1]}"
    if len(peer) >= 2:
        return f"[{peer[0]}]:{peer[1]}"
    return "?"
