"""Sans-I/O SDP responder: request datagram in, response datagram (or a reason) out.

Security selection (ISO 15118-2 §7.10.1.2; -20 requires TLS): the SECC answers with the
security the EV asked for when it offers it; otherwise it answers with what it has, and the
EV decides whether to connect. So a TLS-only charger answers an EV asking for "no TLS" with
its TLS port, and a charger without TLS answers an EV asking for TLS with its TCP port.
"""

from __future__ import annotations

from dataclasses import dataclass

from secc.sdp.messages import (
    SDPError,
    SDPRequest,
    SDPResponse,
    Security,
    TransportProtocol,
    parse_request,
)


@dataclass(frozen=True)
class SDPOffer:
    """Where this EVSE's V2G servers listen. At least one port must be set."""

    address: str  # the PLC interface's link-local address
    tcp_port: int | None = None  # plain TCP server (DIN, -2 EIM without TLS)
    tls_port: int | None = None  # TLS server (-2 PnC, all of -20)

    def __post_init__(self) -> None:
        if self.tcp_port is None and self.tls_port is None:
            raise ValueError("an SDP offer needs a TCP port, a TLS port, or both")

    def choose(self, requested: Security) -> tuple[Security, int]:
        """The security (and its port) to answer a request for ``requested`` with."""
        if requested is Security.TLS and self.tls_port is not None:
            return Security.TLS, self.tls_port
        if requested is Security.NO_TLS and self.tcp_port is not None:
            return Security.NO_TLS, self.tcp_port
        if self.tls_port is not None:
            return Security.TLS, self.tls_port
        assert self.tcp_port is not None
        return Security.NO_TLS, self.tcp_port


class UnsupportedTransport(SDPError):
    """The EV asks for a transport other than TCP (UDP is reserved)."""


class SDPResponder:
    """Answers SDP requests for one EVSE; raises ``SDPError`` for datagrams to ignore."""

    def __init__(self, offer: SDPOffer) -> None:
        self.offer = offer

    def respond(self, request: SDPRequest) -> SDPResponse:
        if request.transport is not TransportProtocol.TCP:
            raise UnsupportedTransport(f"EV asks for transport {request.transport.name}; "
                                       f"V2G runs over TCP only")
        security, port = self.offer.choose(request.security)
        return SDPResponse(self.offer.address, port, security, TransportProtocol.TCP)

    def handle_datagram(self, datagram: bytes) -> tuple[SDPRequest, SDPResponse]:
        """Parse, decide, and return both (the caller sends ``response.to_bytes()``)."""
        request = parse_request(datagram)
        return request, self.respond(request)
