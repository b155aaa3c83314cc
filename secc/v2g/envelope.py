"""The DIN 70121 / ISO 15118-2 envelope: V2G_Message(Header(SessionID), Body(one element)),
carried in V2GTP payload type 0x8001. One adapter class serves both; the protocol packages
only name their generated module, schema and session core."""

from __future__ import annotations

from types import ModuleType
from typing import Any, ClassVar

import exi_schemas
from secc.pnc.signed import SignedResponse
from secc.v2g.core import SessionCore
from secc.v2g.protocol import DecodedRequest
from secc.v2gtp.header import PayloadType


class V2GMessageAdapter:
    name: ClassVar[str]
    schema: ClassVar[str]
    M: ClassVar[ModuleType]
    CORE: ClassVar[type[SessionCore]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields = cls.M.FIELDS[cls.M.BodyType]
        # (field name in BodyType, element name) of every request; response name -> field
        cls.REQUEST_FIELDS = tuple((f[0], f[3]) for f in fields if f[3].endswith("Req"))
        cls.RESPONSE_FIELD = {f[3]: f[0] for f in fields if f[3].endswith("Res")}

    def decode(self, payload_type: int, payload: bytes) -> DecodedRequest:
        if payload_type != PayloadType.EXI:
            raise ValueError(f"payload type 0x{payload_type:04x} is not {self.name} EXI")
        message = exi_schemas.decode(payload, self.schema)
        body = message.body
        for field_name, element in self.REQUEST_FIELDS:
            value = getattr(body, field_name)
            if value is not None:
                return DecodedRequest(element, value, message.header.session_id)
        raise ValueError("V2G_Message body holds no request")

    def encode(self, response_name: str, response: Any, session_id: bytes) -> tuple[int, bytes]:
        M = self.M
        signature = None
        if isinstance(response, SignedResponse):  # a signature made elsewhere (CPS), kept
            response, signature = response.body, response.signature
        body = M.BodyType(**{self.RESPONSE_FIELD[response_name]: response})
        message = M.V2G_Message(header=M.MessageHeaderType(session_id=session_id,
                                                           signature=signature), body=body)
        return PayloadType.EXI, exi_schemas.encode(message)

    def new_core(self, **kwargs: Any) -> SessionCore:
        return self.CORE(**kwargs)
