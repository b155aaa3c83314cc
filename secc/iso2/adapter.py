"""ISO 15118-2 adapter: the shared V2G_Message envelope with ISO-2's schema and session.

A request whose header carries an XML signature (Plug & Charge AuthorizationReq,
MeteringReceiptReq) reaches the session as ``SignedRequest(body, signature)``."""

from __future__ import annotations

import exi_schemas
from exi_schemas.generated import iso2
from secc.iso2.session import Iso2Session
from secc.pnc.signed import SignedRequest
from secc.v2g.envelope import V2GMessageAdapter
from secc.v2g.protocol import DecodedRequest
from secc.v2gtp.header import PayloadType


class Iso2Adapter(V2GMessageAdapter):
    name = "iso2"
    schema = "iso2"
    M = iso2
    CORE = Iso2Session

    def decode(self, payload_type: int, payload: bytes) -> DecodedRequest:
        if payload_type != PayloadType.EXI:
            raise ValueError(f"payload type 0x{payload_type:04x} is not {self.name} EXI")
        message = exi_schemas.decode(payload, self.schema)
        body, header = message.body, message.header
        for field_name, element in self.REQUEST_FIELDS:
            value = getattr(body, field_name)
            if value is not None:
                if header.signature is not None:
                    value = SignedRequest(value, header.signature)
                return DecodedRequest(element, value, header.session_id)
        raise ValueError("V2G_Message body holds no request")
