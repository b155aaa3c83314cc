"""V2GTP: the 8-byte-header framing of every V2G message, and the TCP/TLS servers.

For the session layer:

* per connector: ``secc.v2gtp.evse.start_evse_transport(EVSETransportConfig(...), handler)``
  starts the TCP and/or TLS server and then SDP; or ``start_v2gtp_server`` for one server.
* ``handler(connection: V2GTPConnection)`` is awaited once per accepted connection:
  ``await connection.receive(timeout)`` or ``async for message in connection``;
  ``await connection.send(PayloadType.EXI, payload)``; the connection is closed when the
  handler returns.
"""

from secc.v2gtp.connection import V2GTPConnection
from secc.v2gtp.decoder import DEFAULT_MAX_PAYLOAD_LENGTH, V2GTPDecoder, validate_header
from secc.v2gtp.errors import (
    REACTIONS,
    ConnectionClosed,
    IncompleteMessageTimeout,
    InvalidProtocolVersion,
    PayloadTooLarge,
    Reaction,
    ReceiveTimeout,
    TruncatedMessage,
    UnknownPayloadType,
    V2GTPError,
)
from secc.v2gtp.header import (
    HEADER_LENGTH,
    SAP,
    STREAM_PAYLOAD_TYPES,
    PayloadType,
    V2GTPHeader,
    V2GTPMessage,
    encode_message,
)
from secc.v2gtp.link import InterfaceError, LinkLocalAddress, read_link_local, wait_for_link_local
from secc.v2gtp.server import (
    BusyPolicy,
    ConnectionSlot,
    V2GTPServer,
    V2GTPServerConfig,
    start_v2gtp_server,
)

__all__ = [
    "DEFAULT_MAX_PAYLOAD_LENGTH", "HEADER_LENGTH", "REACTIONS", "SAP", "STREAM_PAYLOAD_TYPES",
    "BusyPolicy", "ConnectionClosed", "ConnectionSlot", "IncompleteMessageTimeout", "InterfaceError",
    "InvalidProtocolVersion", "LinkLocalAddress", "PayloadTooLarge", "PayloadType", "Reaction",
    "ReceiveTimeout", "TruncatedMessage", "UnknownPayloadType", "V2GTPConnection",
    "V2GTPDecoder", "V2GTPError", "V2GTPHeader", "V2GTPMessage", "V2GTPServer",
    "V2GTPServerConfig", "encode_message", "read_link_local", "start_v2gtp_server",
    "validate_header", "wait_for_link_local",
]
