"""How the session driver talks to one protocol package (DIN, ISO-2, ISO-20).

Each protocol package exposes a ``ProtocolAdapter``: the driver decodes a V2GTP payload with
``decode`` into (request name, body object, session id), feeds the protocol's
``SessionCore`` with it, and encodes the core's response with ``encode``. The adapter is the
only place that knows the message envelope (DIN/ISO-2 ``V2G_Message`` with header+body;
ISO-20 root elements with their own header and per-service schemas/payload types).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from secc.v2g.core import SessionCore


@dataclass(frozen=True, slots=True)
class DecodedRequest:
    name: str              # XSD element name of the request, e.g. "CurrentDemandReq"
    body: Any              # the generated request object (the body element / -20 root)
    session_id: bytes      # SessionID from the message header


class ProtocolAdapter(Protocol):
    """One per protocol; stateless."""

    name: str  # "din" | "iso2" | "iso20-dc" | "iso20-ac" ...

    def decode(self, payload_type: int, payload: bytes) -> DecodedRequest:
        """Raise ``exi_schemas.ExiDecodeError`` (or ValueError for a non-request)."""
        ...

    def encode(self, response_name: str, response: Any, session_id: bytes) -> tuple[int, bytes]:
        """-> (V2GTP payload type, EXI bytes) of the response."""
        ...

    def new_core(self, **kwargs: Any) -> SessionCore:
        """A fresh session core (kwargs as ``SessionCore.__init__`` plus protocol options)."""
        ...
