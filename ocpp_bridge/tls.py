"""TLS for Security Profiles 2 and 3, and what to log when the handshake fails.

OCPP 2.0.1 (A00.FR.3xx): TLS 1.2 or higher; the station supports at least
ECDHE-ECDSA-AES128-GCM-SHA256 / ECDHE-ECDSA-AES256-GCM-SHA384 (and the RSA variants when RSA
certificates are used). SP3 adds the charging-station certificate as TLS client certificate.

Limits of Python's ``ssl`` module, stated honestly: on a *failed* handshake its public API
tells us the OpenSSL reason (e.g. ``CERTIFICATE_VERIFY_FAILED``,
``TLSV1_ALERT_PROTOCOL_VERSION``) and for verification failures the verify message, but not
what the server offered. ``ocpp_bridge.tls_trace`` reads the ServerHello (chosen version and
cipher) and the alerts through CPython's undocumented debugging hook when it exists; a server
never lists its supported versions/ciphers on the wire (it only picks one), so for the full
list the log points to ``openssl s_client``. The test CSMS (sim/csms.py) logs the client's
offer (ClientHello versions and suites) from its side.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from ocpp_bridge.tls_trace import HandshakeTrace
from secc.common.logs import layer_logger

log = layer_logger("tls")

OCPP_TLS12_CIPHERS = ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
                      "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384")


def client_context(ca_file: Path | None, client_cert: Path | None = None,
                   client_key: Path | None = None,
                   installed_roots: list[str] | None = None) -> ssl.SSLContext:
    """``installed_roots``: PEM CSMS roots the CSMS installed with InstallCertificate
    (CSMSRootCertificate); trusted next to ``ca_file`` so a CSMS can move to a new root."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                     cafile=str(ca_file) if ca_file else None)
    for pem in installed_roots or ():
        ctx.load_verify_locations(cadata=pem)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(OCPP_TLS12_CIPHERS)
    if client_cert and client_key:
        ctx.load_cert_chain(str(client_cert), str(client_key))
    return ctx


def offered(ctx: ssl.SSLContext) -> dict[str, str]:
    """What this side offers: versions and cipher names (TLS 1.3 suites included)."""
    return {"versions": f"{ctx.minimum_version.name}..{ctx.maximum_version.name}",
            "ciphers": ",".join(c["name"] for c in ctx.get_ciphers())}


def explain_failure(exc: BaseException, ctx: ssl.SSLContext, url: str,
                    trace: HandshakeTrace | None = None) -> str:
    """One log line's worth of explanation for a failed TLS handshake."""
    reason = getattr(exc, "reason", None) or type(exc).__name__
    verify = getattr(exc, "verify_message", None)
    hints = {
        "CERTIFICATE_VERIFY_FAILED": "the CSMS certificate does not chain to csms.ca_file "
                                     "nor to an installed CSMSRootCertificate (or its "
                                     "name/validity is wrong); install the right "
                                     "CSMSRootCertificate",
        "TLSV1_ALERT_PROTOCOL_VERSION": "no common TLS version",
        "SSLV3_ALERT_HANDSHAKE_FAILURE": "no common cipher suite, or the CSMS wanted a client "
                                         "certificate (security profile 3?)",
        "TLSV13_ALERT_CERTIFICATE_REQUIRED": "the CSMS requires a client certificate (SP3)",
        "SSLV3_ALERT_BAD_CERTIFICATE": "the CSMS refused our client certificate",
        "TLSV1_ALERT_UNKNOWN_CA": "the CSMS does not know the CA of our client certificate",
    }
    hint = hints.get(str(reason), "")
    text = f"TLS handshake with {url} failed: {reason}"
    if verify:
        text += f" ({verify})"
    if hint:
        text += f"; likely cause: {hint}"
    log.error(text, extra={"we_offered_versions": offered(ctx)["versions"],
                           "we_offered_ciphers": offered(ctx)["ciphers"],
                           "handshake": trace.summary() if trace else "not traced",
                           "peer_supported": "a server only reveals its choice; list its "
                                             "versions/ciphers with: openssl s_client "
                                             "-connect HOST:PORT -tls1_2 / -tls1_3"})
    return text
