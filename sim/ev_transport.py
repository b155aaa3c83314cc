"""EV-side transport for the EV simulator: SDP client and V2GTP (TCP/TLS) client.

``discover_secc(interface)`` multicasts SDP requests on the EV's interface and returns the
first valid response; ``connect_v2gtp(interface, response, ssl_context)`` opens the V2G
connection and returns the same ``V2GTPConnection`` the SECC uses, so the simulator speaks
``send``/``receive`` too. TLS client contexts: ``secc.tls.iso2_client_context`` /
``iso20_client_context``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
from collections.abc import Callable, Iterable

from secc.common.logs import layer_logger
from secc.sdp.messages import (
    ALL_NODES,
    SDP_PORT,
    SDPError,
    SDPRequest,
    SDPResponse,
    Security,
    TransportProtocol,
    parse_response,
)
from secc.v2gtp.connection import V2GTPConnection
from secc.v2gtp.decoder import DEFAULT_MAX_PAYLOAD_LENGTH
from secc.v2gtp.header import STREAM_PAYLOAD_TYPES
from secc.v2gtp.link import LinkLocalAddress, wait_for_link_local

log = layer_logger("sim")

#: ISO 15118-2: the EVCC repeats the SDP request up to 50 times, 250 ms apart
#: (TT_SDP / SDP retry cycles); DIN 70121 uses the same numbers.
SDP_RETRIES = 50
SDP_RESPONSE_TIMEOUT = 0.25


class SDPNoResponse(TimeoutError):
    pass


class _Collector(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.responses: asyncio.Queue[tuple[bytes, tuple]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.responses.put_nowait((data, addr))


async def discover_secc(interface: str, security: Security = Security.NO_TLS, *,
                        retries: int = SDP_RETRIES, timeout: float = SDP_RESPONSE_TIMEOUT,
                        port: int = SDP_PORT,
                        transport_protocol: TransportProtocol = TransportProtocol.TCP,
                        on_request: Callable[[int], None] | None = None,
                        ) -> SDPResponse:
    """Send SDP requests (1 + up to ``retries`` repeats) until a valid response arrives.
    ``on_request(n)`` is told of the n-th request sent (tests synchronise on it)."""
    link = await wait_for_link_local(interface)
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, link.scope_id)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
    sock.bind(link.sockaddr(0))
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(_Collector, sock=sock)
    request = SDPRequest(security, transport_protocol).to_bytes()
    try:
        for attempt in range(retries + 1):
            transport.sendto(request, (ALL_NODES, port, 0, link.scope_id))
            if on_request is not None:
                on_request(attempt + 1)
            deadline = loop.time() + timeout
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    async with asyncio.timeout(remaining):
                        data, addr = await protocol.responses.get()
                except TimeoutError:
                    break
                try:
                    response = parse_response(data)
                except SDPError as exc:
                    log.warning("bad SDP response ignored", extra={"reason": str(exc)})
                    continue
                log.info("SDP response", extra={"attempt": attempt + 1,
                                                "address": response.address,
                                                "port": response.port,
                                                "security": response.security.name})
                return response
        raise SDPNoResponse(f"no SDP response on {interface} after {retries + 1} requests")
    finally:
        transport.close()


async def connect_v2gtp(interface: str, address: str, port: int,
                        ssl_context: ssl.SSLContext | None = None, *,
                        connect_timeout: float = 5.0, read_timeout: float | None = 60.0,
                        max_payload_length: int = DEFAULT_MAX_PAYLOAD_LENGTH,
                        message_timeout: float | None = 2.0,
                        accepted_payload_types: Iterable[int] = STREAM_PAYLOAD_TYPES,
                        ) -> V2GTPConnection:
    """Open TCP (or TLS when ``ssl_context`` is given) to the SECC's link-local address."""
    link: LinkLocalAddress = await wait_for_link_local(interface)
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        async with asyncio.timeout(connect_timeout):
            await loop.sock_connect(sock, (address, port, 0, link.scope_id))
            reader, writer = await asyncio.open_connection(
                sock=sock, ssl=ssl_context,
                server_hostname="" if ssl_context is not None else None,
                limit=2 ** 20)
    except BaseException:
        with contextlib.suppress(OSError):
            sock.close()
        raise
    return V2GTPConnection(reader, writer, read_timeout=read_timeout,
                           max_payload_length=max_payload_length,
                           message_timeout=message_timeout,
                           accepted_payload_types=accepted_payload_types)


async def connect_to_discovered(interface: str, response: SDPResponse,
                                ssl_context: ssl.SSLContext | None = None,
                                **kwargs) -> V2GTPConnection:
    """Connect where an SDP response points; TLS iff the response says TLS."""
    if response.security is Security.TLS and ssl_context is None:
        raise ValueError("the SECC answered TLS, but no TLS client context was given")
    return await connect_v2gtp(interface, response.address, response.port,
                               ssl_context if response.security is Security.TLS else None,
                               **kwargs)


def reset_connection(connection: V2GTPConnection) -> None:
    """Abort with a TCP RST (for tests of a car that vanishes mid-message)."""
    sock = connection._writer.transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection._writer.transport.abort()


# --- running both sides on the simulated PLC link ------------------------------------------
def run_secc_and_ev(link, secc_main, ev_main, timeout: float = 30.0):
    """Run the SECC side and then the EV side, each in its namespace of a ``VethLink``.

    ``secc_main(ready, ev_done)`` starts its servers, calls ``ready.set_result(info)`` (e.g.
    the ports) and keeps serving until ``await wait_for_event(ev_done)`` returns;
    ``ev_main(info)`` runs the EV. Returns ``(secc_result, ev_result)``; exceptions of
    either side propagate.
    """
    import concurrent.futures
    import threading

    ready: concurrent.futures.Future = concurrent.futures.Future()
    ev_done = threading.Event()
    secc_future = link.run_coroutine("secc", lambda: secc_main(ready, ev_done))
    try:
        concurrent.futures.wait([ready, secc_future], timeout=timeout,
                                return_when=concurrent.futures.FIRST_COMPLETED)
        if not ready.done():
            if secc_future.done():
                secc_future.result()  # raises the SECC side's error
            raise TimeoutError("the SECC side never became ready")
        info = ready.result()
        ev_future = link.run_coroutine("ev", lambda: ev_main(info))
        ev_result = ev_future.result(timeout)
    finally:
        ev_done.set()
    return secc_future.result(timeout), ev_result


def v2gtp_server_side(interface: str, handler: Callable, **config) -> Callable:
    """``secc_main`` for ``run_secc_and_ev``: a V2GTP server on ``interface`` running
    ``handler`` per connection (``config``: more ``V2GTPServerConfig`` fields). It serves until
    the EV is done and every accepted connection has been served, then returns the server
    (``refused``, ``handshake_failures`` ...)."""
    from secc.v2gtp import V2GTPServerConfig, start_v2gtp_server
    from sim.testing.waits import wait_until

    async def secc_main(ready, ev_done):
        server = await start_v2gtp_server(V2GTPServerConfig(interface=interface, **config),
                                          handler)
        ready.set_result((server.link.address, server.port))
        try:
            await wait_for_event(ev_done)
            await wait_until(lambda: server.connections_in_progress == 0, 10,
                             "every connection to be served")
        finally:
            await server.close()
        return server

    return secc_main


async def wait_for_event(event) -> None:
    """Await a ``threading.Event`` without blocking the loop."""
    from sim.testing.waits import wait_for_thread_event

    await wait_for_thread_event(event)
