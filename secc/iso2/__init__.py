"""ISO 15118-2 session (AC and DC; EIM and Plug & Charge): state table, handlers, adapter.

Where things are
----------------
* ``session``  ``Iso2Session``: THE sequence table (``TRANSITIONS``) and the ISO-2 handlers
  (common messages, AC ChargingStatus, PnC PaymentDetails/Authorization/Certificate*)
* ``adapter``  ``Iso2Adapter``: V2GTP payload <-> request objects (signed headers included)

Shared, so not in this package:

* ``secc.v2g.dc_session.DcHandlers`` (a mixin of ``Iso2Session``, shared with DIN 70121): the
  handlers of **CableCheckReq, PreChargeReq and WeldingDetectionReq**, DC_EVSEStatus and the
  CurrentDemand set-point step
* ``secc.v2g.dc``: the DC rules (cable-check voltage, set-point limits, pre-charge current)
* ``secc.v2g.core.SessionCore``: the table engine, timers, the Ongoing rule, why a session
  ended (``EndReason``) and the safe state it asks for
* ``secc.v2g.paused.PausedSessions``: paused sessions, one store per EVSE shared with -20
* ``secc.v2g.failures``: the one table from failures to response codes
* ``secc.pnc``: contract chain checks, XML signatures, certificate installation (PnC)
"""

from secc.iso2.adapter import Iso2Adapter
from secc.iso2.session import Iso2Session
from secc.v2g.paused import PausedSessions

__all__ = ["Iso2Adapter", "Iso2Session", "PausedSessions"]
