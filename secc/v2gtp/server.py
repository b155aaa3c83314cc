"""asyncio TCP and TLS servers for the V2G connection, on the PLC link-local address only.

``start_v2gtp_server(config, handler)`` binds ``[fe80::...%plc]:port`` (after the address
has passed DAD), accepts connections and calls ``handler(connection)`` with a
``V2GTPConnection`` for each accepted one; when the handler returns, the connection is closed.

One EVSE talks to one EV: only one connection is *active* at a time. A second connection
while one is active is handled by ``BusyPolicy``:

* ``REPLACE_SAME_PEER`` (default): a newcomer from the *same* EV (same IPv6 link-local
  address) supersedes the running connection: a car that dropped its TCP connection and
  reconnects at once is served while the stale one is still being torn down (the old
  connection is aborted and its session has ended in its safe state before the new one
  starts). Anyone else gets a TCP reset and a log line; the running session is not disturbed.
* ``REFUSE_NEW``: every newcomer gets a TCP reset; a car that lost its connection reconnects
  once our session has timed out (the session layer's sequence timeout).
* ``REPLACE_OLD``: the running connection is aborted and any newcomer takes over.

For TLS, the server peeks the ClientHello (MSG_PEEK, the handshake still reads it) before the
handshake so that a failed handshake can be logged with the client's and our offers.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import errno
import random
import socket
import ssl
import struct
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from secc.common.logs import layer_logger
from secc.tls.clienthello import ClientHello, parse_client_hello
from secc.tls.diagnostics import log_handshake_failure
from secc.v2gtp.connection import V2GTPConnection, _peer_text
from secc.v2gtp.decoder import DEFAULT_MAX_PAYLOAD_LENGTH, DEFAULT_MESSAGE_TIMEOUT
from secc.v2gtp.header import STREAM_PAYLOAD_TYPES
from secc.v2gtp.link import LinkLocalAddress, wait_for_link_local

log = layer_logger("v2gtp")

#: ISO 15118-2 [V2G2-xxx]: the SECC's TCP port is a dynamic port (IANA 49152-65535). Linux's
#: default ephemeral range (32768-60999) is not that, so we pick the port ourselves.
DYNAMIC_PORTS = range(49152, 65536)
CLIENT_HELLO_PEEK_BYTES = 16 * 1024
#: Connections accepted but not yet handed over (TLS handshakes under way) beyond which
#: newcomers are reset at once: one EV needs one; a flood must not exhaust the board.
MAX_PENDING_CONNECTIONS = 8

ConnectionHandler = Callable[[V2GTPConnection], Awaitable[None]]


class BusyPolicy(enum.Enum):
    REPLACE_SAME_PEER = "replace_same_peer"
    REFUSE_NEW = "refuse_new"
    REPLACE_OLD = "replace_old"

#: How long a superseding connection waits for the old one's session to end (safe state).
SUPERSEDE_WAIT_S = 5.0


@dataclass
class V2GTPServerConfig:
    """Everything the V2G TCP/TLS server needs; one typed object, validated by use."""

    interface: str  # the PLC interface, e.g. "eth1"
    port: int | None = None  # None: a random free port in 49152-65535
    ssl_context: ssl.SSLContext | None = None  # None: plain TCP
    read_timeout: float | None = 60.0  # default for connection.receive()
    message_timeout: float | None = DEFAULT_MESSAGE_TIMEOUT  # slow-loris limit per message
    handshake_timeout: float = 5.0
    max_payload_length: int = DEFAULT_MAX_PAYLOAD_LENGTH
    busy_policy: BusyPolicy = BusyPolicy.REPLACE_SAME_PEER
    link_timeout: float = 5.0  # how long to wait for a non-tentative fe80:: address
    accepted_payload_types: Iterable[int] = field(default=STREAM_PAYLOAD_TYPES)
    #: picks the TLS context (SECC chain) from the peeked ClientHello; None: ``ssl_context``
    context_selector: Callable[[ClientHello | None], ssl.SSLContext] | None = None


class ConnectionSlot:
    """The one active V2G connection of an EVSE, shared by its TCP and its TLS server so
    that an EV cannot hold a TCP and a TLS session at the same time."""

    def __init__(self) -> None:
        self.connection: V2GTPConnection | None = None
        self.finished: asyncio.Event | None = None   # set when its handler has returned

    @property
    def busy(self) -> bool:
        return self.connection is not None and not self.connection.closed


class V2GTPServer:
    """A listening V2G server. Create with ``start_v2gtp_server``; ``close()`` stops it."""

    def __init__(self, config: V2GTPServerConfig, handler: ConnectionHandler,
                 link: LinkLocalAddress, listener: socket.socket,
                 slot: ConnectionSlot | None = None) -> None:
        self.config = config
        self.link = link
        self._handler = handler
        self._listener = listener
        self.port: int = listener.getsockname()[1]
        self.slot = slot if slot is not None else ConnectionSlot()
        self._tasks: set[asyncio.Task] = set()
        self._accept_task: asyncio.Task | None = None
        self.refused = 0
        self.handshake_failures: list[dict[str, object]] = []
        # False after V2G_SECC_CommunicationSetup_Timeout until the next plug-in
        self.accepting = True

    @property
    def tls(self) -> bool:
        return self.config.ssl_context is not None

    @property
    def address(self) -> tuple[str, int, int, int]:
        return self.link.sockaddr(self.port)

    @property
    def connections_in_progress(self) -> int:
        """Accepted connections still being served (handshake, refusal or handler)."""
        return len(self._tasks)

    def _start(self) -> None:
        self._accept_task = asyncio.create_task(self._accept_loop(), name="v2gtp-accept")
        log.info("V2G server listening", extra={
            "interface": self.link.interface, "address": self.link.address, "port": self.port,
            "tls": self.tls, "busy_policy": self.config.busy_policy.value})

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, peer = await loop.sock_accept(self._listener)
            except OSError as exc:  # e.g. ECONNABORTED: keep serving
                if self._listener.fileno() < 0:
                    return
                log.warning("accept failed", extra={"error": str(exc)})
                continue
            task = asyncio.create_task(self._serve(sock, peer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _busy(self) -> bool:
        return self.slot.busy

    def _refuses(self, peer: tuple) -> bool:
        """Whether a newcomer from ``peer`` is refused while a connection is active."""
        policy = self.config.busy_policy
        if policy is BusyPolicy.REFUSE_NEW:
            return True
        if policy is BusyPolicy.REPLACE_SAME_PEER:
            old = self.slot.connection
            return old is None or _peer_host(old.peer) != _peer_host(peer)
        return False

    async def _serve(self, sock: socket.socket, peer: tuple) -> None:
        peer_text = _peer_text(peer)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not self.accepting:
            self._refuse(sock, peer_text, "communication set-up time is over (replug)")
            return
        if self._busy() and self._refuses(peer):
            self._refuse(sock, peer_text, "a session is active (another peer)")
            return
        if len(self._tasks) > MAX_PENDING_CONNECTIONS:  # a connect flood, not a car
            self._refuse(sock, peer_text, "too many connections in set-up")
            return
        connection = await self._open(sock, peer_text)
        if connection is None:
            return
        if self._busy():
            if self._refuses(peer):
                self.refused += 1
                log.warning("second V2G connection refused: a session is active",
                            extra={"peer": peer_text})
                connection.abort("refused: another connection is active")
                return
            old = self.slot.connection
            assert old is not None
            log.warning("new V2G connection supersedes the active one", extra={
                "peer": peer_text, "old_peer": _peer_text(old.peer),
                "policy": self.config.busy_policy.value})
            old.abort("superseded by a new connection from the EV")
        previous = self.slot.finished
        if previous is not None and not previous.is_set():
            # the stale session ends (safe state) before the new one starts
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SUPERSEDE_WAIT_S):
                    await previous.wait()
        finished = asyncio.Event()
        self.slot.connection, self.slot.finished = connection, finished
        log.info("V2G connection accepted", extra={
            "peer": peer_text, "tls": connection.tls_version or "no",
            **({"cipher": connection.cipher} if connection.is_tls else {}),
            **_vehicle_certificate_fields(connection)})
        try:
            await self._handler(connection)
        except Exception:
            log.exception("V2G connection handler failed", extra={"peer": peer_text})
        finally:
            await connection.close()
            finished.set()
            if self.slot.connection is connection:
                self.slot.connection = None
            log.info("V2G connection closed", extra={
                "peer": peer_text, "reason": str(connection.close_reason),
                "received": connection.messages_received, "sent": connection.messages_sent})

    def _refuse(self, sock: socket.socket, peer_text: str, why: str) -> None:
        self.refused += 1
        log.warning(f"V2G connection refused: {why}", extra={"peer": peer_text})
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()

    async def _open(self, sock: socket.socket, peer_text: str) -> V2GTPConnection | None:
        loop = asyncio.get_running_loop()
        cfg = self.config
        reader = asyncio.StreamReader(limit=2 ** 20)
        protocol = asyncio.StreamReaderProtocol(reader)
        hello: ClientHello | None = None
        first_bytes = b""
        try:
            if cfg.ssl_context is not None:
                hello, first_bytes = await _peek_client_hello(sock, cfg.handshake_timeout)
                context = cfg.context_selector(hello) if cfg.context_selector else \
                    cfg.ssl_context
                transport, _ = await loop.connect_accepted_socket(
                    lambda: protocol, sock, ssl=context,
                    ssl_handshake_timeout=cfg.handshake_timeout)
            else:
                transport, _ = await loop.connect_accepted_socket(lambda: protocol, sock)
        except (OSError, TimeoutError, ssl.SSLError, ConnectionError) as exc:
            if cfg.ssl_context is not None:
                fields = log_handshake_failure(exc, hello, cfg.ssl_context, peer_text,
                                               first_bytes)
                self.handshake_failures.append(fields)
                del self.handshake_failures[:-20]
            else:
                log.warning("V2G connection setup failed", extra={"peer": peer_text,
                                                                  "error": str(exc)})
            with contextlib.suppress(OSError):
                sock.close()
            return None
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        if hello is not None:
            log.debug("TLS client offered", extra={
                "peer": peer_text, "versions": ",".join(hello.offered_versions),
                "ciphers": ",".join(hello.cipher_suite_names)})
        return V2GTPConnection(reader, writer, read_timeout=cfg.read_timeout,
                               max_payload_length=cfg.max_payload_length,
                               message_timeout=cfg.message_timeout,
                               accepted_payload_types=cfg.accepted_payload_types)

    async def close(self) -> None:
        """Stop accepting, abort every connection, wait for the handlers to finish."""
        if self._accept_task is not None:
            self._accept_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._accept_task
        self._listener.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def __aenter__(self) -> "V2GTPServer":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _vehicle_certificate_fields(connection: V2GTPConnection) -> dict[str, str]:
    """-20 mutual TLS: whose certificate the car presented (verified by the handshake). Read
    from ``ssl``'s decoded form: no ``cryptography`` on a session's path (docs/realtime.md)."""
    obj = connection.ssl_object if connection.is_tls else None
    cert = obj.getpeercert() if obj is not None else None
    if not cert:
        return {}
    return {"vehicle_certificate": _distinguished_name(cert.get("subject", ())),
            "vehicle_certificate_issuer": _distinguished_name(cert.get("issuer", ()))}


#: ``ssl``'s attribute names -> the RFC 4514 short names
_RDN_NAMES = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU",
              "countryName": "C", "localityName": "L", "stateOrProvinceName": "ST",
              "domainComponent": "DC", "userId": "UID", "streetAddress": "STREET"}


def _distinguished_name(rdns: tuple[tuple[tuple[str, str], ...], ...]) -> str:
    """RFC 4514 text (most specific first, as ``x509.Name.rfc4514_string``) of the name
    ``ssl.SSLSocket.getpeercert()`` gives (least specific first)."""
    def escape(value: str) -> str:
        for char in '\\,+"<>;=':
            value = value.replace(char, "\\" + char)
        return value
    return ",".join("+".join(f"{_RDN_NAMES.get(key, key)}={escape(value)}" for key, value in rdn)
                    for rdn in reversed(rdns))


async def _wait_readable(sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    loop.add_reader(sock.fileno(), lambda: ready.done() or ready.set_result(None))
    try:
        await ready
    finally:
        loop.remove_reader(sock.fileno())


async def _peek_client_hello(sock: socket.socket,
                             timeout: float) -> tuple[ClientHello | None, bytes]:
    """Look at (not consume) the client's first TLS records: (parsed hello, raw bytes).

    Gives up quietly at the deadline: the handshake that follows has its own timeout.
    """
    deadline = time.monotonic() + min(timeout, 2.0)
    data = b""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout_at(asyncio.get_running_loop().time() + min(timeout, 2.0)):
            while time.monotonic() < deadline:
                await _wait_readable(sock)
                try:
                    data = sock.recv(CLIENT_HELLO_PEEK_BYTES, socket.MSG_PEEK)
                except BlockingIOError:
                    continue
                except OSError:
                    break
                if not data or _first_records_complete(data):
                    break
                await asyncio.sleep(0.01)  # more segments of a long hello are on their way
    return (parse_client_hello(data) if data else None), data


def _first_records_complete(data: bytes) -> bool:
    """Whether the handshake message in the first record(s) has fully arrived (or the
    bytes are no TLS handshake at all, so waiting for more is pointless)."""
    if data[:1] != b"\x16":
        return True
    if len(data) < 9:
        return False
    need = 4 + int.from_bytes(data[6:9], "big")  # handshake header + body
    have, pos = 0, 0
    while pos + 5 <= len(data):
        length = int.from_bytes(data[pos + 3:pos + 5], "big")
        have += min(length, len(data) - pos - 5)
        pos += 5 + length
    return have >= need


def _bind_listener(link: LinkLocalAddress, port: int | None) -> socket.socket:
    candidates = [port] if port is not None else random.sample(DYNAMIC_PORTS, 32)
    last_error: OSError | None = None
    for candidate in candidates:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(link.sockaddr(candidate))
            sock.listen(8)
            sock.setblocking(False)
            return sock
        except OSError as exc:
            sock.close()
            last_error = exc
            if exc.errno != errno.EADDRINUSE or port is not None:
                raise
    raise OSError(errno.EADDRINUSE, f"no free dynamic port found: {last_error}")


async def start_v2gtp_server(config: V2GTPServerConfig, handler: ConnectionHandler,
                             slot: ConnectionSlot | None = None) -> V2GTPServer:
    """Wait for the PLC interface's link-local address, bind, and start accepting.

    Pass the same ``slot`` to the TCP and the TLS server of one EVSE.
    """
    link = await wait_for_link_local(config.interface, timeout=config.link_timeout)
    listener = _bind_listener(link, config.port)
    server = V2GTPServer(config, handler, link, listener, slot)
    server._start()
    return server


def _peer_host(peer: tuple | None) -> str | None:
    """The peer's address without port (the same EV reconnects from another port)."""
    return None if not peer else str(peer[0]).split("%")[0].lower()
