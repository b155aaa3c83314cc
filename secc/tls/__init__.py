"""TLS for the V2G connection: server/client contexts and handshake diagnostics."""

from secc.tls.clienthello import ClientHello, parse_client_hello
from secc.tls.context import (
    CertificateDirectory,
    ClientAuth,
    TLSConfigError,
    describe_offer,
    iso2_client_context,
    iso2_server_context,
    iso20_client_context,
    iso20_server_context,
)
from secc.tls.diagnostics import handshake_failure_fields, log_handshake_failure

__all__ = [
    "CertificateDirectory", "ClientAuth", "ClientHello", "TLSConfigError", "describe_offer",
    "handshake_failure_fields", "iso2_client_context", "iso2_server_context",
    "iso20_client_context", "iso20_server_context", "log_handshake_failure",
    "parse_client_hello",
]
