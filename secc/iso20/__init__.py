"""ISO 15118-20 SECC session (DC, DC_BPT, AC, AC_BPT; EIM), sans-I/O.

* ``Iso20Adapter(Energy.DC | Energy.AC)``: the ``ProtocolAdapter`` (decode/encode/new_core);
  ``adapter_for(Protocol.ISO15118_20_DC)``.
* ``Iso20DcSession`` / ``Iso20AcSession``: the session cores (``SessionCore`` subclasses).
* ``secc.iso20.table``: the one sequence table; ``secc.iso20.loopback``: an in-process
  charger model and session pump for tests, benchmarks and the simulator.
"""

from secc.iso20.adapter import (
    Iso20AcAdapter,
    Iso20Adapter,
    Iso20DcAdapter,
    UnsupportedPayloadType,
    adapter_for,
)
from secc.iso20.paused import PausedSession, PausedSessions
from secc.iso20.power import BptLimits, EvLimits
from secc.iso20.services import ControlMode, Energy, EnergyService
from secc.iso20.session import (
    KNOWN_QUIRKS,
    QUIRK_BPT_DISCHARGE_POSITIVE,
    Iso20AcSession,
    Iso20Config,
    Iso20DcSession,
    Iso20Session,
)

__all__ = [
    "KNOWN_QUIRKS", "QUIRK_BPT_DISCHARGE_POSITIVE", "BptLimits", "ControlMode", "Energy",
    "EnergyService", "EvLimits", "Iso20AcAdapter", "Iso20AcSession", "Iso20Adapter",
    "Iso20DcAdapter", "Iso20Config",
    "Iso20DcSession", "Iso20Session", "PausedSession", "PausedSessions",
    "UnsupportedPayloadType", "adapter_for",
]
