"""The simulated EV (EVCC side) for DIN 70121 and ISO 15118-2, AC and DC, EIM.

* ``core``      sans-I/O engine: encode/decode, SessionID, timeouts, misbehaviour, record
* ``din``, ``iso2``  one EVCC class per protocol (flows as tables, one handler per message)
* ``battery``   the scriptable vehicle battery
* ``protocols`` registry: name/namespace -> EVCC factory (``iso20`` registers itself)
* ``runner``    asyncio: (SLAC) -> SDP -> TCP/TLS -> supportedAppProtocol -> the EVCC
"""

from sim.evcc.battery import Battery
from sim.evcc.core import (
    EvccConfig,
    EvccSession,
    Finished,
    Misbehaviour,
    Send,
    SessionRecord,
    VehicleSignals,
)
from sim.evcc.din import DinEvcc
from sim.evcc.failures import (
    ConnectionLost,
    EvccFailure,
    InvalidResponse,
    MessageTimeout,
    NegotiationFailed,
    OngoingTimeout,
    ResponseCodeFailed,
    SessionIdMismatch,
    SetupFailed,
    UndecodableResponse,
    UnexpectedMessage,
)
from sim.evcc.iso2 import Iso2Evcc

__all__ = [
    "Battery", "ConnectionLost", "DinEvcc", "EvccConfig", "EvccFailure", "EvccSession",
    "Finished", "InvalidResponse", "Iso2Evcc", "MessageTimeout", "Misbehaviour",
    "NegotiationFailed", "OngoingTimeout", "ResponseCodeFailed", "Send", "SessionIdMismatch",
    "SessionRecord", "SetupFailed", "UndecodableResponse", "UnexpectedMessage", "VehicleSignals",
]
