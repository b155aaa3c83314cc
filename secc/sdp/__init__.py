"""SDP: how the EV finds the V2G server (UDP 15118, multicast on the PLC link)."""

from secc.sdp.messages import (
    ALL_NODES,
    SDP_PORT,
    NotAnSDPRequest,
    SDPError,
    SDPRequest,
    SDPResponse,
    Security,
    TransportProtocol,
    parse_request,
    parse_response,
)
from secc.sdp.responder import SDPOffer, SDPResponder, UnsupportedTransport
from secc.sdp.server import SDPServer, SDPServerConfig, start_sdp_server

__all__ = [
    "ALL_NODES", "SDP_PORT", "NotAnSDPRequest", "SDPError", "SDPOffer", "SDPRequest",
    "SDPResponder", "SDPResponse", "SDPServer", "SDPServerConfig", "Security",
    "TransportProtocol", "UnsupportedTransport", "parse_request", "parse_response",
    "start_sdp_server",
]
