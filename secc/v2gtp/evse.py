"""One EVSE's whole V2G transport: TCP and/or TLS server plus the SDP server that points to them.

This is what the daemon starts per connector (per PLC interface)::

    transport = await start_evse_transport(
        EVSETransportConfig(interface="eth1", offer_tcp=True, tls_context=ctx), handler)
    ...
    await transport.close()

Both V2G servers share one ``ConnectionSlot``: one active connection per EVSE, TCP or TLS.
The SDP server starts last, so it never announces a port that is not listening yet.
"""

from __future__ import annotations

import ssl
from typing import Any
from dataclasses import dataclass

from secc.sdp.messages import SDP_PORT
from secc.sdp.server import SDPServer, SDPServerConfig, start_sdp_server
from secc.v2gtp.decoder import DEFAULT_MAX_PAYLOAD_LENGTH, DEFAULT_MESSAGE_TIMEOUT
from secc.v2gtp.link import LinkLocalAddress
from secc.v2gtp.server import (
    BusyPolicy,
    ConnectionHandler,
    ConnectionSlot,
    V2GTPServer,
    V2GTPServerConfig,
    start_v2gtp_server,
)


@dataclass
class EVSETransportConfig:
    interface: str  # the PLC interface of this connector
    offer_tcp: bool = True  # plain TCP: DIN 70121, ISO 15118-2 EIM without TLS
    tls_context: ssl.SSLContext | None = None  # TLS: -2 PnC (TLS 1.2) or -20 (TLS 1.3)
    tls_selector: Any = None  # chooses the SECC chain per ClientHello (secc.tls.selection)
    tcp_port: int | None = None  # None: random dynamic port
    tls_port: int | None = None
    sdp_port: int = SDP_PORT
    read_timeout: float | None = 60.0
    message_timeout: float | None = DEFAULT_MESSAGE_TIMEOUT
    handshake_timeout: float = 5.0
    max_payload_length: int = DEFAULT_MAX_PAYLOAD_LENGTH
    busy_policy: BusyPolicy = BusyPolicy.REPLACE_SAME_PEER
    link_timeout: float = 5.0

    def server_config(self, tls: bool) -> V2GTPServerConfig:
        return V2GTPServerConfig(
            interface=self.interface, port=self.tls_port if tls else self.tcp_port,
            ssl_context=self.tls_context if tls else None, read_timeout=self.read_timeout,
            message_timeout=self.message_timeout, handshake_timeout=self.handshake_timeout,
            max_payload_length=self.max_payload_length, busy_policy=self.busy_policy,
            link_timeout=self.link_timeout,
            context_selector=self.tls_selector.select if tls and self.tls_selector else None)


@dataclass
class EVSETransport:
    sdp: SDPServer
    tcp: V2GTPServer | None
    tls: V2GTPServer | None
    slot: ConnectionSlot

    @property
    def link(self) -> LinkLocalAddress:
        return self.sdp.link

    def set_open(self, open_: bool) -> None:
        """Offer the SECC (SDP answers, new V2G connections) or not: closed after the
        communication set-up time ran out, open again at the next plug-in."""
        self.sdp.open = open_
        for server in (self.tcp, self.tls):
            if server is not None:
                server.accepting = open_

    async def close(self) -> None:
        self.sdp.close()
        for server in (self.tcp, self.tls):
            if server is not None:
                await server.close()

    async def __aenter__(self) -> "EVSETransport":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def start_evse_transport(config: EVSETransportConfig,
                               handler: ConnectionHandler) -> EVSETransport:
    """Start the V2G server(s), then SDP announcing them. Closes what it started on error."""
    if not config.offer_tcp and config.tls_context is None:
        raise ValueError("offer TCP, TLS, or both")
    slot = ConnectionSlot()
    started: list[V2GTPServer] = []
    try:
        tcp = tls = None
        if config.offer_tcp:
            tcp = await start_v2gtp_server(config.server_config(tls=False), handler, slot)
            started.append(tcp)
        if config.tls_context is not None:
            tls = await start_v2gtp_server(config.server_config(tls=True), handler, slot)
            started.append(tls)
        sdp = await start_sdp_server(SDPServerConfig(
            interface=config.interface, tcp_port=tcp.port if tcp else None,
            tls_port=tls.port if tls else None, port=config.sdp_port,
            link_timeout=config.link_timeout))
    except BaseException:
        for server in started:
            await server.close()
        raise
    return EVSETransport(sdp, tcp, tls, slot)
