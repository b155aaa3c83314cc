"""DIN SPEC 70121 (DC charging) session: state table, handlers, adapter.

Where things are
----------------
* ``session``  ``DinSession``: THE sequence table (``TRANSITIONS``) and the DIN-only handlers
  (SessionSetup, ServiceDiscovery, ServicePaymentSelection, ContractAuthentication,
  ChargeParameterDiscovery, PowerDelivery, CurrentDemand, SessionStop)
* ``adapter``  ``DinAdapter``: V2GTP payload <-> request objects, response encoding

Shared with ISO 15118-2, so not in this package:

* ``secc.v2g.dc_session.DcHandlers`` (a mixin of ``DinSession``): the handlers of
  **CableCheckReq, PreChargeReq and WeldingDetectionReq**, DC_EVSEStatus and the CurrentDemand
  set-point step
* ``secc.v2g.dc``: the DC rules (cable-check voltage, set-point limits, pre-charge current)
* ``secc.v2g.core.SessionCore``: the table engine, timers, the Ongoing rule, why a session
  ended (``EndReason``) and the safe state it asks for
* ``secc.v2g.failures``: the one table from failures to response codes
* ``secc.v2g.eim``: service and payment selection checks of External Identification Means
"""

from secc.din.adapter import DinAdapter
from secc.din.session import DinSession

__all__ = ["DinAdapter", "DinSession"]
