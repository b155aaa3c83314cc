"""The -20 ``ProtocolAdapter``: V2GTP payload <-> (request name, object), header filling, cores.

-20 splits its messages over three schemas and payload types: 0x8002 common messages
(SessionSetup ... SessionStop), 0x8004 DC messages, 0x8003 AC messages. Decoding picks the
schema from the payload type; encoding picks the payload type from the response's module and
fills the response ``Header`` (SessionID, TimeStamp), which the core leaves empty.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import exi_schemas
from exi_schemas.generated import iso20 as cm
from exi_schemas.generated import iso20_ac as ac
from exi_schemas.generated import iso20_dc as dc
from secc.appprotocol.negotiation import Protocol
from secc.v2g.paused import PausedSessions
from secc.iso20.services import Energy
from secc.iso20.ac import Iso20AcSession
from secc.iso20.dc import Iso20DcSession
from secc.iso20.session import Iso20Session
from secc.v2g.protocol import DecodedRequest
from secc.v2gtp.header import PayloadType

SCHEMA_OF_PAYLOAD_TYPE: dict[int, str] = {
    PayloadType.ISO20_MAIN: "iso20",
    PayloadType.ISO20_DC: "iso20-dc",
    PayloadType.ISO20_AC: "iso20-ac",
}
PAYLOAD_TYPE_OF_MODULE: dict[ModuleType, int] = {
    cm: PayloadType.ISO20_MAIN, dc: PayloadType.ISO20_DC, ac: PayloadType.ISO20_AC,
}
_CORES: dict[Energy, type[Iso20Session]] = {Energy.DC: Iso20DcSession,
                                            Energy.AC: Iso20AcSession}


class UnsupportedPayloadType(ValueError):
    """A -20 payload type this adapter does not speak (WPT, ACDP, 0x81xx ...)."""


class Iso20Adapter:
    """One per connector and namespace (DC or AC).

    Holds the connector's ``PausedSessions`` so a car that paused on one connection can resume
    on the next (each ``new_core`` shares it); otherwise stateless."""

    def __init__(self, energy: Energy | str = Energy.DC, *,
                 paused_sessions: PausedSessions | None = None,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.energy = Energy(energy)
        self.name = f"iso20-{self.energy.value}"
        self.paused_sessions = paused_sessions if paused_sessions is not None else \
            PausedSessions()
        self.wall_clock = wall_clock

    @property
    def payload_types(self) -> frozenset[int]:
        energy = PayloadType.ISO20_DC if self.energy is Energy.DC else PayloadType.ISO20_AC
        return frozenset({PayloadType.ISO20_MAIN, energy})

    def decode(self, payload_type: int, payload: bytes) -> DecodedRequest:
        schema = SCHEMA_OF_PAYLOAD_TYPE.get(payload_type)
        if schema is None:
            raise UnsupportedPayloadType(f"payload type 0x{payload_type:04x} is not -20 "
                                         "common/DC/AC")
        name, body = exi_schemas.decode_element(payload, schema)
        if not name.endswith("Req") or not hasattr(body, "header"):
            raise ValueError(f"{name} is not a request")
        return DecodedRequest(name, body, bytes(body.header.session_id))

    def encode(self, response_name: str, response: Any, session_id: bytes) -> tuple[int, bytes]:
        module = _module_of(response)
        signature = getattr(response.header, "signature", None)  # a forwarded CPS signature
        response.header = module.MessageHeaderType(session_id=session_id,
                                                   time_stamp=int(self.wall_clock()),
                                                   signature=signature)
        return PAYLOAD_TYPE_OF_MODULE[module], exi_schemas.encode(response, element=response_name)

    def new_core(self, **kwargs: Any) -> Iso20Session:
        kwargs.setdefault("paused_sessions", self.paused_sessions)
        kwargs.setdefault("wall_clock", self.wall_clock)
        return _CORES[self.energy](**kwargs)


class Iso20DcAdapter(Iso20Adapter):
    """DC namespace adapter (the session driver's; it hands each core the EVSE's
    paused-session store)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(Energy.DC, **kwargs)


class Iso20AcAdapter(Iso20Adapter):
    """AC namespace adapter (the session driver's; it hands each core the EVSE's
    paused-session store)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(Energy.AC, **kwargs)


def _module_of(obj: Any) -> ModuleType:
    name = type(obj).__module__
    for module in PAYLOAD_TYPE_OF_MODULE:
        if module.__name__ == name:
            return module
    raise TypeError(f"{type(obj).__name__} is not a -20 message")


def adapter_for(protocol: Protocol, **kwargs: Any) -> Iso20Adapter:
    """The adapter of a negotiated -20 namespace (DC or AC)."""
    if protocol is Protocol.ISO15118_20_DC:
        return Iso20DcAdapter(**kwargs)
    if protocol is Protocol.ISO15118_20_AC:
        return Iso20AcAdapter(**kwargs)
    raise ValueError(f"{protocol} is not an ISO 15118-20 DC/AC namespace")
