"""TLS contexts for the V2G connection: ISO 15118-2 (TLS 1.2) and ISO 15118-20 (TLS 1.3).

ISO 15118-2 (§7.7.3 and [V2G2-600..]) lists two cipher suites, both over P-256 with ECDSA:

* TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256   (0xC025, static ECDH)
* TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256  (0xC023, ephemeral ECDH)

OpenSSL removed every static-ECDH suite in 1.1.0, so OpenSSL 3 (and with it CPython's ssl)
can only offer the second one (OpenSSL name ``ECDHE-ECDSA-AES128-SHA256``). A car that offers
only 0xC025 cannot connect to any OpenSSL-based charger; the handshake diagnostics name it.
No client certificate is requested in -2 (the contract certificate travels in EXI messages).

ISO 15118-20 requires TLS 1.3 with the server authenticated by its CPO chain and, where the
charger enforces it, the vehicle authenticated by its OEM provisioning certificate (anchored
at an OEM root, or at the V2G root). CPython's ssl cannot restrict the TLS 1.3 suites (there
is no ``set_ciphersuites``): OpenSSL 3 offers TLS_AES_256_GCM_SHA384,
TLS_CHACHA20_POLY1305_SHA256 and TLS_AES_128_GCM_SHA256, which includes both suites -20 names
(TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384). CPython also cannot choose the server chain
from the client's trusted_ca_keys extension nor staple OCSP (SwitchEV/RISE-V2G#40): one chain
per context.

Certificates are read from a directory laid out like ``TestPKI.write_secc_files``:
``secc_chain.pem`` (leaf first, then sub-CAs), ``secc_key.pem``, and the roots
``v2g_root.pem``, ``oem_root.pem`` (and ``mo_root.pem``, unused here).
"""

from __future__ import annotations

import enum
import ssl
from dataclasses import dataclass
from pathlib import Path

from secc.common.logs import layer_logger

log = layer_logger("tls")

#: The only ISO 15118-2 suite OpenSSL still has.
ISO2_CIPHERS = "ECDHE-ECDSA-AES128-SHA256"
ISO2_CURVE = "prime256v1"
#: Suites -2 lists that OpenSSL >= 1.1 no longer offers (static ECDH), with IANA values.
ISO2_UNAVAILABLE_SUITES = {0xC025: "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256"}
ISO20_SUITES = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384")


class TLSConfigError(ValueError):
    """The certificate directory or the TLS settings are unusable."""


class ClientAuth(enum.Enum):
    """Whether the -20 server asks the vehicle for its certificate."""

    NONE = "none"
    OPTIONAL = "optional"  # asked for; a vehicle without one still connects (EIM)
    REQUIRED = "required"  # no vehicle certificate, no connection


_VERIFY_MODES = {ClientAuth.NONE: ssl.CERT_NONE, ClientAuth.OPTIONAL: ssl.CERT_OPTIONAL,
                 ClientAuth.REQUIRED: ssl.CERT_REQUIRED}


@dataclass(frozen=True)
class CertificateDirectory:
    """Where the SECC's chain, key and trust anchors live."""

    path: Path
    chain_name: str = "secc_chain.pem"
    key_name: str = "secc_key.pem"
    vehicle_root_names: tuple[str, ...] = ("oem_root.pem", "v2g_root.pem")

    @property
    def chain(self) -> Path:
        return self.path / self.chain_name

    @property
    def key(self) -> Path:
        return self.path / self.key_name

    def vehicle_roots(self) -> list[Path]:
        """The roots a vehicle certificate may chain to (those present)."""
        return [self.path / n for n in self.vehicle_root_names if (self.path / n).is_file()]

    def check(self) -> None:
        for needed in (self.chain, self.key):
            if not needed.is_file():
                raise TLSConfigError(f"missing {needed}")


def _load_server_identity(ctx: ssl.SSLContext, certs: CertificateDirectory) -> None:
    certs.check()
    try:
        ctx.load_cert_chain(certfile=str(certs.chain), keyfile=str(certs.key))
    except (ssl.SSLError, OSError) as exc:
        raise TLSConfigError(f"cannot load SECC chain/key from {certs.path}: {exc}") from exc


def _enable_keylog(ctx: ssl.SSLContext, keylog_file: Path | None) -> None:
    if keylog_file is None:
        return
    ctx.keylog_filename = str(keylog_file)
    log.warning("TLS KEY LOGGING IS ON: session secrets are written to a file; anyone with "
                "it can decrypt the V2G traffic. Never enable this in the field.",
                extra={"keylog_file": str(keylog_file)})


def iso2_server_context(certs: CertificateDirectory,
                        keylog_file: Path | None = None) -> ssl.SSLContext:
    """ISO 15118-2 server: TLS 1.2 only, ECDHE-ECDSA-AES128-SHA256, P-256, no client auth."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(ISO2_CIPHERS)
    ctx.set_ecdh_curve(ISO2_CURVE)
    ctx.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_COMPRESSION
    ctx.verify_mode = ssl.CERT_NONE
    _load_server_identity(ctx, certs)
    _enable_keylog(ctx, keylog_file)
    return ctx


def iso20_server_context(certs: CertificateDirectory,
                         client_auth: ClientAuth = ClientAuth.REQUIRED,
                         keylog_file: Path | None = None) -> ssl.SSLContext:
    """ISO 15118-20 server: TLS 1.3 only; vehicle certificate per ``client_auth``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.options |= ssl.OP_NO_COMPRESSION
    _load_server_identity(ctx, certs)
    if client_auth is not ClientAuth.NONE:
        roots = certs.vehicle_roots()
        if not roots:
            raise TLSConfigError(f"client auth {client_auth.value} needs a vehicle root "
                                 f"({', '.join(certs.vehicle_root_names)}) in {certs.path}")
        for root in roots:
            ctx.load_verify_locations(cafile=str(root))
    ctx.verify_mode = _VERIFY_MODES[client_auth]
    _enable_keylog(ctx, keylog_file)
    return ctx


# --- client side (the EV simulator) ---------------------------------------------------------
def iso2_client_context(v2g_root: Path, keylog_file: Path | None = None) -> ssl.SSLContext:
    """EV side of -2: verifies the SECC chain against the V2G root; no hostnames on fe80::."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(ISO2_CIPHERS)
    ctx.check_hostname = False
    ctx.load_verify_locations(cafile=str(v2g_root))
    ctx.verify_mode = ssl.CERT_REQUIRED
    _enable_keylog(ctx, keylog_file)
    return ctx


def iso20_client_context(v2g_root: Path, vehicle_chain: Path | None = None,
                         vehicle_key: Path | None = None,
                         keylog_file: Path | None = None) -> ssl.SSLContext:
    """EV side of -20: TLS 1.3, presents the vehicle chain when given (mutual auth)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.load_verify_locations(cafile=str(v2g_root))
    ctx.verify_mode = ssl.CERT_REQUIRED
    if vehicle_chain is not None:
        ctx.load_cert_chain(certfile=str(vehicle_chain),
                            keyfile=str(vehicle_key) if vehicle_key else None)
    _enable_keylog(ctx, keylog_file)
    return ctx


# --- what we offer, for diagnostics ------------------------------------------------------------
_TLS13_NAMES = {"TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
                "TLS_AES_128_GCM_SHA256", "TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_8_SHA256"}
_VERSION_TEXT = {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3",
                 ssl.TLSVersion.TLSv1: "TLSv1", ssl.TLSVersion.TLSv1_1: "TLSv1.1"}


@dataclass(frozen=True)
class ServerOffer:
    versions: tuple[str, ...]
    cipher_suites: tuple[str, ...]  # OpenSSL names
    cipher_suite_ids: tuple[int, ...]  # IANA values, comparable with a ClientHello
    client_auth: str


def describe_offer(ctx: ssl.SSLContext) -> ServerOffer:
    """Versions and suites a context accepts, named as in the IANA registry / OpenSSL."""
    order = [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_2,
             ssl.TLSVersion.TLSv1_3]
    low = ctx.minimum_version if ctx.minimum_version in order else ssl.TLSVersion.TLSv1_2
    high = ctx.maximum_version if ctx.maximum_version in order else ssl.TLSVersion.TLSv1_3
    versions = tuple(_VERSION_TEXT[v] for v in order[order.index(low):order.index(high) + 1])
    suites, ids = [], []
    for cipher in ctx.get_ciphers():
        is13 = cipher["name"] in _TLS13_NAMES
        if (is13 and "TLSv1.3" in versions) or (not is13 and versions != ("TLSv1.3",)):
            suites.append(cipher["name"])
            ids.append(cipher["id"] & 0xFFFF)
    auth = {ssl.CERT_NONE: "none", ssl.CERT_OPTIONAL: "optional",
            ssl.CERT_REQUIRED: "required"}[ctx.verify_mode]
    return ServerOffer(versions, tuple(suites), tuple(ids), auth)
