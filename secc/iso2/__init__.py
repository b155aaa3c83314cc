"""ISO 15118-2 session (AC and DC, EIM): state table, handlers, adapter."""

from secc.iso2.adapter import Iso2Adapter
from secc.iso2.session import Iso2Session, PausedSessions

__all__ = ["Iso2Adapter", "Iso2Session", "PausedSessions"]
