"""A request body together with its message header's XML signature.

DIN/ISO-2 carry the signature in ``V2G_Message/Header/Signature``, outside the body element
the session cores are fed. The ISO-2 adapter hands a signed request to the core as a
``SignedRequest``; the core unwraps it before dispatch, so unsigned requests (nearly all of
them) travel exactly as before."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class SignedRequest:
    body: Any              # the generated request object
    signature: Any         # the header's xmldsig SignatureType


@dataclass(frozen=True, slots=True)
class SignedResponse:
    """A response body to send with this XML signature in its message header (the CPS's
    signature over a CertificateInstallationRes/UpdateRes, forwarded unchanged)."""

    body: Any              # the generated response object
    signature: Any         # xmldsig SignatureType for V2G_Message/Header

    @property
    def response_code(self) -> str:
        return self.body.response_code
