"""Explain a failed TLS handshake in one log line: what the car offered, what we offer."""

from __future__ import annotations

import ssl

from secc.common.logs import layer_logger
from secc.tls.clienthello import ClientHello, cipher_suite_name
from secc.tls.context import ISO2_UNAVAILABLE_SUITES, describe_offer

log = layer_logger("tls")


def handshake_failure_fields(error: BaseException, hello: ClientHello | None,
                             ctx: ssl.SSLContext, first_bytes: bytes = b"") -> dict[str, object]:
    """The structured fields of the diagnostic line (also used by tests)."""
    offer = describe_offer(ctx)
    fields: dict[str, object] = {
        "error": f"{type(error).__name__}: {error}",
        "we_offer_versions": ",".join(offer.versions),
        "we_offer_ciphers": ",".join(cipher_suite_name(v) for v in offer.cipher_suite_ids),
        "we_require_client_cert": offer.client_auth,
    }
    if hello is None:
        if first_bytes:  # e.g. plain V2GTP (01fe8001...) sent to the TLS port
            fields["client_offer"] = "not a TLS ClientHello"
            fields["client_first_bytes"] = first_bytes[:16].hex()
        else:
            fields["client_offer"] = "unknown (no ClientHello seen)"
        return fields
    fields["client_versions"] = ",".join(hello.offered_versions)
    fields["client_ciphers"] = ",".join(hello.cipher_suite_names)
    if hello.supported_groups:
        fields["client_groups"] = ",".join(hello.group_names)
    if hello.truncated:
        fields["client_hello_truncated"] = True
    shared = set(hello.cipher_suites) & set(offer.cipher_suite_ids)
    versions_shared = set(hello.offered_versions) & set(offer.versions)
    hints = []
    if not versions_shared:
        hints.append("no common TLS version")
    if not shared:
        hints.append("no common cipher suite")
    static = [name for value, name in ISO2_UNAVAILABLE_SUITES.items()
              if value in hello.cipher_suites]
    if static:
        hints.append(f"client offers static-ECDH {','.join(static)}, which OpenSSL >= 1.1 "
                     f"does not implement")
    if "CERTIFICATE_VERIFY_FAILED" in str(error) or "certificate verify failed" in str(error):
        roots = installed_ca_names(ctx)
        hints.append("the vehicle certificate does not chain to an installed OEM root ("
                     + (", ".join(roots) if roots else "none installed")
                     + "): install the car maker's root (secc certs import oem-root FILE)")
    if hints:
        fields["hint"] = "; ".join(hints)
    return fields


def installed_ca_names(ctx: ssl.SSLContext) -> list[str]:
    """CNs of the roots the context verifies client certificates against."""
    names = []
    for cert in ctx.get_ca_certs():
        subject = dict(item for rdn in cert.get("subject", ()) for item in rdn)
        names.append(str(subject.get("commonName", subject)))
    return names


def log_handshake_failure(error: BaseException, hello: ClientHello | None,
                          ctx: ssl.SSLContext, peer: str,
                          first_bytes: bytes = b"") -> dict[str, object]:
    fields = handshake_failure_fields(error, hello, ctx, first_bytes)
    fields["peer"] = peer
    log.warning("TLS handshake failed", extra=fields)
    return fields
