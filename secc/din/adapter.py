"""DIN 70121 envelope: V2G_Message(Header, Body) in V2GTP payload type 0x8001."""

from __future__ import annotations

from typing import Any

import exi_schemas
from exi_schemas.generated import din as M
from secc.din.session import DinSession
from secc.v2g.protocol import DecodedRequest
from secc.v2gtp.header import PayloadType

# (field name in BodyType, element name) of every request element
_FIELDS = exi_schemas.generated.din.FIELDS[M.BodyType]
REQUEST_FIELDS: tuple[tuple[str, str], ...] = tuple(
    (f[0], f[3]) for f in _FIELDS if f[3].endswith("Req"))
RESPONSE_FIELD: dict[str, str] = {f[3]: f[0] for f in _FIELDS if f[3].endswith("Res")}


class DinAdapter:
    name = "din"

    def decode(self, payload_type: int, payload: bytes) -> DecodedRequest:
        if payload_type != PayloadType.EXI:
            raise ValueError(f"payload type 0x{payload_type:04x} is not DIN EXI")
        message = exi_schemas.decode(payload, "din")
        body = message.body
        for field_name, element in REQUEST_FIELDS:
            value = getattr(body, field_name)
            if value is not None:
                return DecodedRequest(element, value, message.header.session_id)
        raise ValueError("V2G_Message body holds no request")

    def encode(self, response_name: str, response: Any, session_id: bytes) -> tuple[int, bytes]:
        body = M.BodyType(**{RESPONSE_FIELD[response_name]: response})
        message = M.V2G_Message(header=M.MessageHeaderType(session_id=session_id), body=body)
        return PayloadType.EXI, exi_schemas.encode(message)

    def new_core(self, **kwargs: Any) -> DinSession:
        return DinSession(**kwargs)
