"""ISO 15118-20 SECC session (DC, DC_BPT, AC, AC_BPT; EIM and Plug & Charge), sans-I/O.

Modules
-------
* ``table``     THE sequence table (one per namespace: DC, AC) — which request in which state
* ``session``   ``Iso20Session``: common messages, timers, EVSE stops, on ``SessionCore``
* ``dc``, ``ac``  ``Iso20DcSession`` / ``Iso20AcSession``: the energy-specific handlers
* ``adapter``   ``Iso20Adapter``: V2GTP payload <-> request object (0x8002 common, 0x8003 AC,
  0x8004 DC), response headers, ``new_core``; ``Iso20DcAdapter``/``Iso20AcAdapter`` for the
  session driver (``secc.session.driver.ADAPTERS``)
* ``services``  service IDs, control modes, the parameter sets we offer
* ``power``     charge-loop set-points (DC scheduled/dynamic incl. BPT discharge, AC targets)
* ``messages``  rational numbers, EVSEStatus, a schema-valid FAILED response for every request
* (the in-process charger model + session pump for tests lives in ``sim.iso20_loopback``)

Shared with DIN/ISO-2, so not in this package: ``secc.v2g.core.SessionCore`` (table engine,
timers, the Ongoing rule, ``EndReason`` and safe states), ``secc.v2g.dc`` (the DC rules:
cable-check voltage, set-point limits, pre-charge current; -20 has its own DC_CableCheck,
DC_PreCharge and DC_WeldingDetection handlers in ``dc``, DIN/ISO-2 share theirs in
``secc.v2g.dc_session.DcHandlers``), ``secc.v2g.paused.PausedSessions`` (SessionStop(Pause)
now, OK_OldSessionJoined later; one store per EVSE for -2 and -20), ``secc.v2g.failures``
(failure -> response code), ``secc.pnc`` (contract checks, signatures).

Core construction (``adapter.new_core(**kw)`` or the classes directly)::

    core = Iso20DcSession(limits=EvseLimits(...), evse=EvseSnapshot(), timers=V2GTimerConfig(),
                          now=loop.time(), evse_id="DE*ABC*E1", quirks=frozenset(),
                          config=Iso20Config(...), paused_sessions=PausedSessions(),
                          wall_clock=time.time, tls=True, offer_contract=True,
                          mo_roots=[...])

Plug & Charge (``tls``, ``offer_contract``, ``mo_roots``: the ISO-2 core's option names): PnC is
offered in AuthorizationSetupRes only when ``tls`` is true (missing: False, EIM only), with a
fresh GenChallenge; AuthorizationReq(PnC) is checked by ``secc.pnc.iso20`` (challenge, contract
chain, header signature over PnC_AReqAuthorizationMode, P-521/SHA-512) and the eMSP decides
through ``authorization_step`` (eMAID from the certificate, PEM chain, OCSP request data).

``Iso20Config``: ``services`` (default both of the namespace), ``bpt`` (``BptLimits``: discharge
ratings), ``service_renegotiation_supported``, ``notification_max_delay`` (s the car gets after
EVSENotification=Terminate), ``meter_id``, ``schedule_duration``, ``free_service``,
``wait_for_schedule`` (answer ScheduleExchange Ongoing until ``provide_schedule_limit``),
``supported_providers`` (PnC: eMSP provider IDs announced in AuthorizationSetupRes).

Outside events on the core: ``authorization_decided(decision)``, ``evse_stop(reason)``
(dangerous: safe state now + FAILED/Terminate; remote: graceful Terminate notification),
``request_schedule_renegotiation()``, ``set_power_request(watts)`` (dynamic mode, negative
discharges), ``provide_schedule_limit(watts)``, ``connection_lost(reason)``.

Events published (``PublishEvent.kind``): SessionStarted, SessionResumed, Authorized,
AuthorizationRejected, ContractCertificateAccepted, ServiceSelected, EVChargingNeeds, ScheduleAgreed, ScheduleRenegotiated,
ChargingStarted, StandbyExited, Standby, ScheduleRenegotiation, AcPowerTarget, ChargingStopped,
ServiceRenegotiation, SessionPaused, SessionStopped.

Quirks: ``bpt_discharge_positive`` (``secc.v2g.quirks``): our BPT discharge limits go out
positive instead of negative; car limits are read by magnitude either way.
"""

from secc.iso20.adapter import (
    Iso20AcAdapter,
    Iso20Adapter,
    Iso20DcAdapter,
    UnsupportedPayloadType,
    adapter_for,
)
from secc.v2g.paused import PausedSession, PausedSessions
from secc.iso20.power import BptLimits, EvLimits
from secc.iso20.services import ControlMode, Energy, EnergyService
from secc.iso20.ac import Iso20AcSession
from secc.iso20.dc import Iso20DcSession
from secc.iso20.session import (
    KNOWN_QUIRKS,
    QUIRK_BPT_DISCHARGE_POSITIVE,
    Iso20Config,
    Iso20Session,
)

__all__ = [
    "KNOWN_QUIRKS", "QUIRK_BPT_DISCHARGE_POSITIVE", "BptLimits", "ControlMode", "Energy",
    "EnergyService", "EvLimits", "Iso20AcAdapter", "Iso20AcSession", "Iso20Adapter",
    "Iso20Config", "Iso20DcAdapter", "Iso20DcSession", "Iso20Session", "PausedSession",
    "PausedSessions", "UnsupportedPayloadType", "adapter_for",
]
