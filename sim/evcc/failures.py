"""Why a simulated EV session failed: one exception type per reason.

The EVCC state machines raise these internally and report them in ``SessionRecord.failure``
(they never escape ``receive``/``handle_timer``), so a test asserts on the type::

    assert isinstance(record.failure, ResponseCodeFailed)
    assert record.failure.response_code == "FAILED_SequenceError"
"""

from __future__ import annotations


class EvccFailure(Exception):
    """Base class: the session ended without the normal SessionStopRes."""

    def __init__(self, step: str, detail: str) -> None:
        super().__init__(f"{step}: {detail}")
        self.step = step
        self.detail = detail


class ResponseCodeFailed(EvccFailure):
    """The SECC answered a FAILED* response code."""

    def __init__(self, step: str, response_code: str) -> None:
        super().__init__(step, f"SECC answered {response_code}")
        self.response_code = response_code


class UnexpectedMessage(EvccFailure):
    """The SECC answered with another message than the response to our request."""

    def __init__(self, step: str, expected: str, got: str) -> None:
        super().__init__(step, f"expected {expected}, got {got}")
        self.expected = expected
        self.got = got


class UndecodableResponse(EvccFailure):
    """The response is not valid EXI of the negotiated schema (or a wrong payload type)."""


class SessionIdMismatch(EvccFailure):
    """A response carried another SessionID than the one SessionSetupRes gave us."""


class MessageTimeout(EvccFailure):
    """No response within V2G_EVCC_Msg_Timeout of the request (ISO 15118-2 Table 109)."""

    def __init__(self, step: str, timeout: float) -> None:
        super().__init__(step, f"no response within {timeout:g} s")
        self.timeout = timeout


class OngoingTimeout(EvccFailure):
    """A step stayed EVSEProcessing=Ongoing (or pre-charge never converged) too long:
    V2G_EVCC_Ongoing_Timeout 60 s, V2G_EVCC_CableCheck_Timeout 40 s,
    V2G_EVCC_PreCharge_Timeout 7 s."""

    def __init__(self, step: str, limit: float) -> None:
        super().__init__(step, f"still not finished after {limit:g} s")
        self.limit = limit


class InvalidResponse(EvccFailure):
    """A response the EV cannot act on (e.g. no usable SAScheduleTuple, no EIM offered)."""


class ConnectionLost(EvccFailure):
    """The TCP/TLS connection closed before the session ended (raised by the runner)."""


class NegotiationFailed(EvccFailure):
    """supportedAppProtocolRes refused us or picked something we cannot speak."""


class SetupFailed(EvccFailure):
    """SLAC, SDP or the TCP/TLS connection failed before any V2G message (runner)."""
