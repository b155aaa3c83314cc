"""SupportedAppProtocol: which message set (DIN, ISO 15118-2, ISO 15118-20) a session speaks."""

from secc.appprotocol.negotiation import (
    DIN_2_0,
    ISO2_2_0,
    ISO20_AC_1_0,
    ISO20_DC_1_0,
    TESLA_NAMESPACE,
    AppProtocol,
    NegotiationResult,
    Preference,
    Protocol,
    ResponseCode,
    SupportedVersion,
    negotiate,
)

__all__ = [
    "DIN_2_0", "ISO20_AC_1_0", "ISO20_DC_1_0", "ISO2_2_0", "TESLA_NAMESPACE", "AppProtocol",
    "NegotiationResult", "Preference", "Protocol", "ResponseCode", "SupportedVersion",
    "negotiate",
]
