"""A small, defensive TLS ClientHello parser for handshake diagnostics.

When a car and the charger fail to agree on TLS, OpenSSL only says "no shared cipher".
What the field needs to know is *what the car offered* (EcoG-io/iso15118#125, EVerest PR
#647): versions, cipher suites, groups. The server peeks the first bytes of each TLS
connection (MSG_PEEK, so the handshake still sees them) and this module reads them.

Never raises on garbage: returns None or a partial result (``truncated=True``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

RECORD_HANDSHAKE = 0x16
HANDSHAKE_CLIENT_HELLO = 0x01
EXT_SUPPORTED_GROUPS = 0x000A
EXT_SIGNATURE_ALGORITHMS = 0x000D
EXT_SUPPORTED_VERSIONS = 0x002B
EXT_SERVER_NAME = 0x0000
EXT_TRUSTED_CA_KEYS = 0x0003  # RFC 6066 §6: which CAs the client trusts (ISO 15118-2 EVs)

#: RFC 6066 TrustedAuthority identifier types
TRUSTED_PRE_AGREED, TRUSTED_KEY_SHA1, TRUSTED_X509_NAME, TRUSTED_CERT_SHA1 = 0, 1, 2, 3

VERSION_NAMES = {0x0300: "SSLv3", 0x0301: "TLSv1", 0x0302: "TLSv1.1", 0x0303: "TLSv1.2",
                 0x0304: "TLSv1.3"}

#: IANA names of the suites that matter for V2G, plus common ones cars and test tools send.
CIPHER_SUITE_NAMES = {
    0x1301: "TLS_AES_128_GCM_SHA256",
    0x1302: "TLS_AES_256_GCM_SHA384",
    0x1303: "TLS_CHACHA20_POLY1305_SHA256",
    0x1304: "TLS_AES_128_CCM_SHA256",
    0x1305: "TLS_AES_128_CCM_8_SHA256",
    0xC023: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",  # ISO 15118-2, usable
    0xC025: "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256",  # ISO 15118-2, static ECDH: gone
    0xC024: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
    0xC02B: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    0xC02C: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    0xC02F: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    0xC030: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    0xC027: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    0xC028: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
    0xC009: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    0xC00A: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    0xC013: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    0xC014: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    0xC004: "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA",
    0xC005: "TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA",
    0xCCA8: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    0xCCA9: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    0x009C: "TLS_RSA_WITH_AES_128_GCM_SHA256",
    0x009D: "TLS_RSA_WITH_AES_256_GCM_SHA384",
    0x002F: "TLS_RSA_WITH_AES_128_CBC_SHA",
    0x0035: "TLS_RSA_WITH_AES_256_CBC_SHA",
    0x003C: "TLS_RSA_WITH_AES_128_CBC_SHA256",
    0x003D: "TLS_RSA_WITH_AES_256_CBC_SHA256",
    0x009E: "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
    0x009F: "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
    0x00FF: "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",
    0x5600: "TLS_FALLBACK_SCSV",
}

GROUP_NAMES = {0x0017: "secp256r1", 0x0018: "secp384r1", 0x0019: "secp521r1",
               0x001D: "x25519", 0x001E: "x448", 0x0100: "ffdhe2048", 0x0101: "ffdhe3072",
               0x11EC: "X25519MLKEM768"}


def cipher_suite_name(value: int) -> str:
    return CIPHER_SUITE_NAMES.get(value, f"0x{value:04X}")


def _is_grease(value: int) -> bool:
    """RFC 8701 GREASE values (0x0A0A, 0x1A1A, ...) are noise, not offers."""
    return (value & 0x0F0F) == 0x0A0A and (value >> 8) == (value & 0xFF)


@dataclass
class ClientHello:
    legacy_version: int
    cipher_suites: list[int] = field(default_factory=list)
    supported_versions: list[int] = field(default_factory=list)
    supported_groups: list[int] = field(default_factory=list)
    signature_algorithms: list[int] = field(default_factory=list)
    server_name: str | None = None
    #: RFC 6066 trusted_ca_keys: (identifier type, SHA-1 hash or DER Name), in the client's order
    trusted_ca_keys: list[tuple[int, bytes]] = field(default_factory=list)
    truncated: bool = False  # the peeked bytes ended before the hello did

    @property
    def offered_versions(self) -> list[str]:
        """What the client can speak: supported_versions if sent, else the legacy field."""
        values = self.supported_versions or [self.legacy_version]
        return [VERSION_NAMES.get(v, f"0x{v:04X}") for v in values]

    @property
    def cipher_suite_names(self) -> list[str]:
        return [cipher_suite_name(v) for v in self.cipher_suites]

    @property
    def group_names(self) -> list[str]:
        return [GROUP_NAMES.get(v, f"0x{v:04X}") for v in self.supported_groups]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise IndexError
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return struct.unpack(">H", self.take(2))[0]

    def vector(self, length_bytes: int) -> bytes:
        n = self.u8() if length_bytes == 1 else self.u16()
        return self.take(n)


def _u16_list(data: bytes) -> list[int]:
    values = [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data) - 1, 2)]
    return [v for v in values if not _is_grease(v)]


def _trusted_authorities(data: bytes) -> list[tuple[int, bytes]]:
    """RFC 6066 TrustedAuthority list; stops quietly at anything malformed."""
    out: list[tuple[int, bytes]] = []
    reader = _Reader(data)
    try:
        while reader.pos < len(reader.data):
            kind = reader.u8()
            if kind == TRUSTED_PRE_AGREED:
                out.append((kind, b""))
            elif kind in (TRUSTED_KEY_SHA1, TRUSTED_CERT_SHA1):
                out.append((kind, reader.take(20)))
            elif kind == TRUSTED_X509_NAME:
                out.append((kind, reader.vector(2)))
            else:
                break
    except IndexError:
        pass
    return out


def trusted_ca_keys_extension(authorities: list[tuple[int, bytes]]) -> bytes:
    """The extension's bytes (type, length, list) — for tests and tools that build hellos."""
    body = b""
    for kind, value in authorities:
        body += bytes([kind]) + (struct.pack("!H", len(value)) + value
                                 if kind == TRUSTED_X509_NAME else value)
    payload = struct.pack("!H", len(body)) + body
    return struct.pack("!HH", EXT_TRUSTED_CA_KEYS, len(payload)) + payload


def parse_client_hello(data: bytes) -> ClientHello | None:
    """Parse the first TLS record(s) of a connection; None if it is no ClientHello."""
    if len(data) < 5 or data[0] != RECORD_HANDSHAKE or data[1] != 0x03:
        return None
    # Join the fragments of consecutive handshake records (a large hello can span records).
    body = bytearray()
    pos = 0
    while pos + 5 <= len(data) and data[pos] == RECORD_HANDSHAKE:
        length = int.from_bytes(data[pos + 3:pos + 5], "big")
        body += data[pos + 5:pos + 5 + length]
        pos += 5 + length
    if len(body) < 4 or body[0] != HANDSHAKE_CLIENT_HELLO:
        return None
    hello_length = int.from_bytes(body[1:4], "big")
    reader = _Reader(bytes(body[4:4 + hello_length]))
    truncated = len(body) - 4 < hello_length
    try:
        hello = ClientHello(legacy_version=reader.u16(), truncated=truncated)
        reader.take(32)  # random
        reader.vector(1)  # legacy session id
        hello.cipher_suites = _u16_list(reader.vector(2))
        reader.vector(1)  # compression methods
        if reader.pos == len(reader.data):
            return hello  # no extensions (old clients)
        extensions = _Reader(reader.vector(2))
        while extensions.pos < len(extensions.data):
            ext_type = extensions.u16()
            ext = extensions.vector(2)
            if ext_type == EXT_SUPPORTED_VERSIONS and ext:
                hello.supported_versions = _u16_list(ext[1:1 + ext[0]])
            elif ext_type == EXT_SUPPORTED_GROUPS and len(ext) >= 2:
                hello.supported_groups = _u16_list(ext[2:])
            elif ext_type == EXT_SIGNATURE_ALGORITHMS and len(ext) >= 2:
                hello.signature_algorithms = _u16_list(ext[2:])
            elif ext_type == EXT_TRUSTED_CA_KEYS and len(ext) >= 2:
                hello.trusted_ca_keys = _trusted_authorities(ext[2:2 + int.from_bytes(
                    ext[:2], "big")])
            elif ext_type == EXT_SERVER_NAME and len(ext) >= 5:
                hello.server_name = ext[5:5 + int.from_bytes(ext[3:5], "big")].decode(
                    "ascii", "replace")
    except IndexError:
        if "hello" not in locals():
            return None
        hello.truncated = True
    return hello
