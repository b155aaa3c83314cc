"""SupportedAppProtocol negotiation (ISO 15118-2 §8.2.? / DIN 70121 / reused by -20), sans-I/O.

The EV offers up to 20 ``AppProtocol`` entries (namespace, major, minor, schema id, priority
1 = most wanted). The SECC picks one it implements and answers with a response code and the
chosen entry's SchemaID:

* same namespace, same major and minor  -> ``OK_SuccessfulNegotiation``
* same namespace and major, other minor -> ``OK_SuccessfulNegotiationWithMinorDeviation``
* nothing usable                         -> ``Failed_NoNegotiation`` (no SchemaID)

Which one wins when several match: by default the EV's priority, as the standard asks;
``Preference.SECC`` lets a charger put its own order first (e.g. to prefer DIN over a
flaky -2 implementation). Entries we do not know are skipped, which is how Teslas work:
they offer ``urn:tesla:din:2018:MsgDef`` at priority 1 and DIN at priority 2, and chargers
pick DIN. Malformed offers (duplicate priorities, out-of-range values) never raise:
ties fall back to the EV's list order.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from secc.v2gtp.header import PayloadType


class ResponseCode(enum.Enum):
    OK_SUCCESSFUL_NEGOTIATION = "OK_SuccessfulNegotiation"
    OK_SUCCESSFUL_NEGOTIATION_WITH_MINOR_DEVIATION = "OK_SuccessfulNegotiationWithMinorDeviation"
    FAILED_NO_NEGOTIATION = "Failed_NoNegotiation"


class Protocol(enum.Enum):
    """The message sets a session engine can speak, by their MsgDef namespace.

    Namespaces are the schemas' targetNamespace values (exi_schemas/*): DIN and -2 name
    their MsgDef schema; -20 names one schema per energy service.
    """

    DIN70121 = "urn:din:70121:2012:MsgDef"
    ISO15118_2 = "urn:iso:15118:2:2013:MsgDef"
    ISO15118_20_DC = "urn:iso:std:iso:15118:-20:DC"
    ISO15118_20_AC = "urn:iso:std:iso:15118:-20:AC"
    ISO15118_20_WPT = "urn:iso:std:iso:15118:-20:WPT"
    ISO15118_20_ACDP = "urn:iso:std:iso:15118:-20:ACDP"

    @property
    def namespace(self) -> str:
        return self.value

    @property
    def is_iso20(self) -> bool:
        return self.name.startswith("ISO15118_20")

    @property
    def payload_types(self) -> frozenset[int]:
        """V2GTP payload types this protocol's messages use after the negotiation; pass to
        ``V2GTPConnection.restrict_payload_types``. DIN and -2 put everything in 0x8001;
        -20 uses 0x8002 for the common messages plus one type per energy service. (The -20
        0x81xx types are left out until the session layer handles those messages.)"""
        return _PAYLOAD_TYPES[self]


_PAYLOAD_TYPES: dict[Protocol, frozenset[int]] = {
    Protocol.DIN70121: frozenset({PayloadType.EXI}),
    Protocol.ISO15118_2: frozenset({PayloadType.EXI}),
    Protocol.ISO15118_20_DC: frozenset({PayloadType.ISO20_MAIN, PayloadType.ISO20_DC}),
    Protocol.ISO15118_20_AC: frozenset({PayloadType.ISO20_MAIN, PayloadType.ISO20_AC}),
    Protocol.ISO15118_20_WPT: frozenset({PayloadType.ISO20_MAIN, PayloadType.ISO20_WPT}),
    Protocol.ISO15118_20_ACDP: frozenset({PayloadType.ISO20_MAIN, PayloadType.ISO20_ACDP}),
}

#: A vendor namespace seen in real-car captures; known so logs can name it, never chosen.
TESLA_NAMESPACE = "urn:tesla:din:2018:MsgDef"


@dataclass(frozen=True, slots=True)
class AppProtocol:
    """One entry of the EV's supportedAppProtocolReq."""

    namespace: str
    major: int
    minor: int
    schema_id: int
    priority: int


@dataclass(frozen=True, slots=True)
class SupportedVersion:
    """A protocol version this SECC implements (an entry of the configured list)."""

    protocol: Protocol
    major: int
    minor: int = 0


#: Versions that exist in the field: DIN 70121 and ISO 15118-2:2014 both announce 2.0;
#: ISO 15118-20:2022 announces 1.0.
DIN_2_0 = SupportedVersion(Protocol.DIN70121, 2, 0)
ISO2_2_0 = SupportedVersion(Protocol.ISO15118_2, 2, 0)
ISO20_DC_1_0 = SupportedVersion(Protocol.ISO15118_20_DC, 1, 0)
ISO20_AC_1_0 = SupportedVersion(Protocol.ISO15118_20_AC, 1, 0)


class Preference(enum.Enum):
    EV = "ev"  # the EV's priority decides (ISO 15118-2); our list only filters
    SECC = "secc"  # our list order decides; the EV's priority breaks ties


@dataclass(frozen=True, slots=True)
class NegotiationResult:
    response_code: ResponseCode
    schema_id: int | None = None  # goes into supportedAppProtocolRes
    chosen: AppProtocol | None = None  # the EV's entry we picked
    supported: SupportedVersion | None = None  # what the session layer must now speak

    @property
    def ok(self) -> bool:
        return self.response_code is not ResponseCode.FAILED_NO_NEGOTIATION

    @property
    def protocol(self) -> Protocol | None:
        return self.supported.protocol if self.supported else None


def _match(offer: AppProtocol, supported: Sequence[SupportedVersion]
           ) -> tuple[int, SupportedVersion] | None:
    """(index in our list, version) of our best match for one offer, exact minor first."""
    candidates = [(i, s) for i, s in enumerate(supported)
                  if s.protocol.namespace == offer.namespace and s.major == offer.major]
    if not candidates:
        return None
    exact = [c for c in candidates if c[1].minor == offer.minor]
    return (exact or candidates)[0]


def negotiate(offers: Iterable[AppProtocol], supported: Sequence[SupportedVersion],
              preference: Preference = Preference.EV) -> NegotiationResult:
    """Choose the protocol for this session; never raises on odd offers."""
    matches = []
    for position, offer in enumerate(offers):
        found = _match(offer, supported)
        if found is not None:
            ours, version = found
            matches.append((offer.priority, position, ours, offer, version))
    if not matches:
        return NegotiationResult(ResponseCode.FAILED_NO_NEGOTIATION)
    if preference is Preference.EV:
        matches.sort(key=lambda m: (m[0], m[1]))
    else:
        matches.sort(key=lambda m: (m[2], m[0], m[1]))
    _, _, _, offer, version = matches[0]
    code = (ResponseCode.OK_SUCCESSFUL_NEGOTIATION if offer.minor == version.minor
            else ResponseCode.OK_SUCCESSFUL_NEGOTIATION_WITH_MINOR_DEVIATION)
    return NegotiationResult(code, offer.schema_id, offer, version)
