"""What to tell the field engineer when something fails: one table, one place.

``CAPABILITIES`` names, per OCPP action, the capability a CSMS lacks when it answers
NotImplemented/NotSupported; ``bus_error_for`` maps any failure of a CSMS call to the bus
error code the SECC receives.
"""

from __future__ import annotations

import asyncio

from ocpp_bridge.ocpp_io import CsmsAnswerInvalid, CsmsCallError

CAPABILITIES: dict[str, str] = {
    "Get15118EVCertificate": "ISO 15118 certificate installation (Get15118EVCertificate)",
    "GetCertificateStatus": "OCSP status via the CSMS (GetCertificateStatus)",
    "Authorize": "Authorize",
    "AuthorizeWithCertificate": "Plug&Charge contract validation (Authorize with "
                                "certificate data)",
    "NotifyEVChargingNeeds": "ISO 15118 smart charging (NotifyEVChargingNeeds)",
    "NotifyEVChargingSchedule": "ISO 15118 smart charging (NotifyEVChargingSchedule)",
    "SignCertificate": "certificate signing (SignCertificate)",
}

NOT_SUPPORTED_CODES = frozenset({"NotImplemented", "NotSupported"})


class CsmsOffline(ConnectionError):
    """The bridge is not connected (and registered) to the CSMS."""


class CsmsPending(CsmsOffline):
    """Connected, but the CSMS answered BootNotification Pending (or Rejected): OCPP B02/B03
    forbid other requests until it accepts. Not an outage of the link."""


def bus_error_for(exc: BaseException, capability_key: str) -> tuple[str, str, str | None]:
    """(bus error code, message, capability) for a failed CSMS call."""
    capability = CAPABILITIES.get(capability_key, capability_key)
    if isinstance(exc, CsmsAnswerInvalid):
        return ("InvalidCsmsAnswer",
                f"the bridge rejected the CSMS's {exc.action} answer: {exc.description}", None)
    if isinstance(exc, CsmsCallError):
        if exc.code in NOT_SUPPORTED_CODES:
            return ("NotSupportedByCsms",
                    f"the CSMS does not support {capability} (answered {exc.code})", capability)
        return "CsmsRejected", f"the CSMS refused {exc.action}: {exc.code} {exc.description}", None
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "Timeout", f"the CSMS did not answer {capability_key} in time", None
    if isinstance(exc, CsmsPending):
        return "CsmsPending", f"connected, but the CSMS has not accepted the station yet ({exc})", \
            None
    if isinstance(exc, CsmsOffline):
        return "CsmsOffline", "no connection to the CSMS", None
    return "Internal", f"{type(exc).__name__}: {exc}", None
