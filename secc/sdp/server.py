"""asyncio SDP server: UDP port 15118 on the PLC interface only.

The socket is bound to the interface (SO_BINDTODEVICE) and joins the link-local all-nodes
group ff02::1 *on that interface*, so a charger with two connectors (two PLC interfaces)
runs one SDP server per interface and each answers only its own car (EVerest PRs #763,
#615). The answer carries that interface's link-local address, after DAD has finished.

Bad datagrams are ignored with a log line; nothing a peer sends can stop the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass

from secc.common.logs import layer_logger
from secc.sdp.messages import ALL_NODES, SDP_PORT, NotAnSDPRequest, SDPError
from secc.sdp.responder import SDPOffer, SDPResponder
from secc.v2gtp.header import payload_type_name
from secc.v2gtp.link import LinkLocalAddress, wait_for_link_local

log = layer_logger("sdp")


@dataclass
class SDPServerConfig:
    interface: str
    tcp_port: int | None = None  # port of the plain-TCP V2G server, if any
    tls_port: int | None = None  # port of the TLS V2G server, if any
    port: int = SDP_PORT
    link_timeout: float = 5.0


class _SDPProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: "SDPServer") -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        try:
            self.server._on_datagram(data, addr)
        except Exception:  # an exception here would make asyncio close the SDP socket
            log.exception("SDP datagram handling failed", extra={"peer": str(addr[:2])})

    def error_received(self, exc: Exception) -> None:  # ICMP errors on sendto
        log.warning("SDP socket error", extra={"error": str(exc)})


class SDPServer:
    def __init__(self, config: SDPServerConfig, link: LinkLocalAddress) -> None:
        self.config = config
        self.link = link
        self.responder = SDPResponder(SDPOffer(link.address, config.tcp_port, config.tls_port))
        self.transport: asyncio.DatagramTransport | None = None
        self.answered = 0
        self.ignored = 0
        # False after V2G_SECC_CommunicationSetup_Timeout until the next plug-in: the SECC no
        # longer offers itself (ISO 15118-4 style SDP_004..006)
        self.open = True

    def _on_datagram(self, data: bytes, addr: tuple) -> None:
        peer = f"[{addr[0]}]:{addr[1]}"
        if not self.open:
            self.ignored += 1
            log.info("SDP request ignored: communication set-up time is over", extra={
                "peer": peer})
            return
        try:
            request, response = self.responder.handle_datagram(data)
        except NotAnSDPRequest as exc:
            self.ignored += 1
            log.info("SDP datagram ignored", extra={
                "peer": peer, "payload_type": payload_type_name(exc.payload_type),
                "reason": str(exc)})
            return
        except SDPError as exc:
            self.ignored += 1
            log.warning("bad SDP datagram ignored", extra={
                "peer": peer, "length": len(data), "reason": str(exc),
                "head": data[:24].hex()})
            return
        assert self.transport is not None
        try:
            self.transport.sendto(response.to_bytes(), addr)
        except OSError as exc:
            log.warning("SDP response not sent", extra={"peer": peer, "error": str(exc)})
            return
        self.answered += 1
        log.info("SDP request answered", extra={
            "peer": peer, "requested": request.security.name, "answered": response.security.name,
            "address": response.address, "port": response.port})

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    async def __aenter__(self) -> "SDPServer":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


def _bind_sdp_socket(link: LinkLocalAddress, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE,
                        link.interface.encode() + b"\0")
        sock.bind(("::", port, 0, 0))
        group = socket.inet_pton(socket.AF_INET6, ALL_NODES) + struct.pack("@I", link.scope_id)
        with contextlib.suppress(OSError):  # the kernel may already hold ff02::1 for us
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, group)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, link.scope_id)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def start_sdp_server(config: SDPServerConfig) -> SDPServer:
    """Wait for the interface's link-local address, bind UDP 15118 there, start answering."""
    link = await wait_for_link_local(config.interface, timeout=config.link_timeout)
    server = SDPServer(config, link)  # validates the offer before we bind
    sock = _bind_sdp_socket(link, config.port)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: _SDPProtocol(server), sock=sock)
    server.transport = transport
    log.info("SDP server listening", extra={
        "interface": link.interface, "address": link.address, "port": config.port,
        "tcp_port": config.tcp_port, "tls_port": config.tls_port})
    return server
