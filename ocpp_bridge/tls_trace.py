"""What each side of a TLS handshake offered and chose, for the log line of a failed handshake.

Python's ``ssl`` module has no public API for the peer's ClientHello/ServerHello or for the
alerts exchanged. CPython does have ``SSLContext._msg_callback``, an undocumented debugging
hook (present since 3.8, used by its own test suite) that sees every handshake message and
alert in plaintext. We use it *only* to build diagnostics: if it disappears in a future
Python, ``attach`` returns a trace that stays empty and the log says so; the connection itself
never depends on it.

From the messages we read: ClientHello cipher suites and supported_versions (what the client
offered), ServerHello version and cipher (what the server chose) and alerts (who refused
what). TLS 1.3 hides the server's certificate from passive observers, but this hook runs
after decryption, so alerts after ServerHello are seen too.
"""

from __future__ import annotations

import ssl
import struct
from dataclasses import dataclass, field
from typing import Any

CLIENT_HELLO, SERVER_HELLO = 1, 2
HANDSHAKE, ALERT = 22, 21
EXT_SUPPORTED_VERSIONS = 43

VERSIONS = {0x0301: "TLSv1.0", 0x0302: "TLSv1.1", 0x0303: "TLSv1.2", 0x0304: "TLSv1.3"}
ALERTS = {0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac",
          40: "handshake_failure", 42: "bad_certificate", 43: "unsupported_certificate",
          44: "certificate_revoked", 45: "certificate_expired", 46: "certificate_unknown",
          47: "illegal_parameter", 48: "unknown_ca", 49: "access_denied", 50: "decode_error",
          51: "decrypt_error", 70: "protocol_version", 71: "insufficient_security",
          80: "internal_error", 86: "inappropriate_fallback", 109: "missing_extension",
          110: "unsupported_extension", 112: "unrecognized_name", 116: "certificate_required",
          120: "no_application_protocol"}


def _cipher_names() -> dict[int, str]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    return {c["id"] & 0xFFFF: c["name"] for c in ctx.get_ciphers()}


_CIPHERS: dict[int, str] | None = None


def cipher_name(code: int) -> str:
    global _CIPHERS
    if _CIPHERS is None:
        _CIPHERS = _cipher_names()
    return _CIPHERS.get(code, f"0x{code:04X}")


@dataclass
class HandshakeTrace:
    available: bool = True
    client_versions: list[str] = field(default_factory=list)
    client_ciphers: list[str] = field(default_factory=list)
    server_version: str | None = None
    server_cipher: str | None = None
    alerts: list[str] = field(default_factory=list)   # "sent fatal unknown_ca" / "received ..."

    def summary(self) -> str:
        if not self.available:
            return "handshake trace unavailable in this Python (no SSLContext._msg_callback)"
        parts = []
        if self.client_ciphers:
            parts.append(f"client offered {','.join(self.client_versions) or '?'} with "
                         f"{len(self.client_ciphers)} suites ({','.join(self.client_ciphers)})")
        parts.append(f"server chose {self.server_version} {self.server_cipher}"
                     if self.server_version else "no ServerHello seen")
        if self.alerts:
            parts.append("alerts: " + "; ".join(self.alerts))
        return ". ".join(parts)


def _extensions(body: bytes, offset: int) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    if offset + 2 > len(body):
        return out
    (total,) = struct.unpack_from("!H", body, offset)
    offset += 2
    end = min(offset + total, len(body))
    while offset + 4 <= end:
        ext_type, ext_len = struct.unpack_from("!HH", body, offset)
        out[ext_type] = body[offset + 4: offset + 4 + ext_len]
        offset += 4 + ext_len
    return out


def parse_client_hello(data: bytes, trace: HandshakeTrace) -> None:
    body = data[4:]
    offset = 2 + 32
    offset += 1 + body[offset]
    (suites_len,) = struct.unpack_from("!H", body, offset)
    suites = struct.unpack_from(f"!{suites_len // 2}H", body, offset + 2)
    trace.client_ciphers = [cipher_name(s) for s in suites if (s & 0x0F0F) != 0x0A0A]  # GREASE
    offset += 2 + suites_len
    offset += 1 + body[offset]
    versions = _extensions(body, offset).get(EXT_SUPPORTED_VERSIONS)
    if versions:
        codes = struct.unpack_from(f"!{versions[0] // 2}H", versions, 1)
        trace.client_versions = [VERSIONS.get(v, f"0x{v:04X}") for v in codes if v in VERSIONS]
    else:
        (legacy,) = struct.unpack_from("!H", body, 0)
        trace.client_versions = [VERSIONS.get(legacy, f"0x{legacy:04X}")]


def parse_server_hello(data: bytes, trace: HandshakeTrace) -> None:
    body = data[4:]
    (legacy,) = struct.unpack_from("!H", body, 0)
    offset = 2 + 32
    offset += 1 + body[offset]
    (suite,) = struct.unpack_from("!H", body, offset)
    trace.server_cipher = cipher_name(suite)
    offset += 2 + 1
    chosen = _extensions(body, offset).get(EXT_SUPPORTED_VERSIONS)
    version = struct.unpack("!H", chosen[:2])[0] if chosen and len(chosen) >= 2 else legacy
    trace.server_version = VERSIONS.get(version, f"0x{version:04X}")


def attach(ctx: ssl.SSLContext, on_fatal_alert: Any = None) -> HandshakeTrace:
    """Record the next handshake made with ``ctx`` (one trace per context)."""
    trace = HandshakeTrace()
    if not hasattr(ctx, "_msg_callback"):
        trace.available = False
        return trace

    def callback(conn, direction, version, content_type, msg_type, data) -> None:
        try:
            if content_type == HANDSHAKE and msg_type == CLIENT_HELLO:
                trace.server_version = trace.server_cipher = None   # a new handshake
                trace.alerts.clear()
                parse_client_hello(data, trace)
            elif content_type == HANDSHAKE and msg_type == SERVER_HELLO:
                parse_server_hello(data, trace)
            elif content_type == ALERT and len(data) >= 2:
                level = "fatal" if data[0] == 2 else "warning"
                what = f"{'sent' if direction == 'write' else 'received'} {level} " \
                       f"{ALERTS.get(data[1], data[1])}"
                trace.alerts.append(what)
                if level == "fatal" and on_fatal_alert is not None:
                    on_fatal_alert(trace)
        except (struct.error, IndexError):
            pass  # a diagnostic must never break the handshake

    ctx._msg_callback = callback  # noqa: SLF001 - see module docstring
    return trace
