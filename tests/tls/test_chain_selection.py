"""SECC chain selection by the ClientHello's trusted_ca_keys (RFC 6066), two test PKIs.

The store holds the default chain under PKI A's V2G root and a second chain under PKI B's. A
car names B's root in trusted_ca_keys: the server presents B's chain; names nothing, or a root
we lack: A's. Python's ssl cannot send trusted_ca_keys, so the car here is a raw socket that
sends a real ClientHello (made by an ``ssl`` client object) with the extension added, and reads
the server's plaintext TLS 1.2 Certificate message; a full handshake with a real client checks
the default path end to end.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import ssl
import struct

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from secc.certstore import CertificateStore, RootKind, key_sha1
from secc.tls import iso2_client_context, iso2_server_context
from secc.tls.clienthello import (
    TRUSTED_CERT_SHA1,
    TRUSTED_KEY_SHA1,
    TRUSTED_X509_NAME,
    parse_client_hello,
    trusted_ca_keys_extension,
)
from secc.tls.selection import TlsChainSelector
from secc.v2gtp import PayloadType, V2GTPServerConfig, start_v2gtp_server
from secc.v2gtp.link import wait_for_link_local
from sim.ev_transport import connect_v2gtp, run_secc_and_ev, wait_for_event
from sim.testing.pki import TestPKI


@pytest.fixture(scope="module")
def pki_b():
    return TestPKI(secc_id="DEPYSE00B")


@pytest.fixture
def store(tmp_path, test_pki, pki_b):
    s = CertificateStore(tmp_path / "certs")
    for pki in (test_pki, pki_b):
        s.import_root(RootKind.V2G, pki.v2g_root.cert_pem)
        s.install_secc_chain(pki.secc_leaf.cert_pem + pki.cpo_sub2.cert_pem
                             + pki.cpo_sub1.cert_pem, pki.secc_leaf.key)
    return s


def selector_for(store: CertificateStore) -> TlsChainSelector:
    selector = TlsChainSelector(store.path, iso2_server_context)
    selector.reload()
    return selector


def client_hello(authorities: list[tuple[int, bytes]]) -> bytes:
    """A real TLS 1.2 ClientHello (from an ssl client object), plus trusted_ca_keys."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    record = outgoing.read()
    if not authorities:
        return record
    extension = trusted_ca_keys_extension(authorities)
    body = bytearray(record[9:])
    pos = 2 + 32
    pos += 1 + body[pos]                                        # session id
    pos += 2 + int.from_bytes(body[pos:pos + 2], "big")         # cipher suites
    pos += 1 + body[pos]                                        # compression
    ext_len = int.from_bytes(body[pos:pos + 2], "big") + len(extension)
    body[pos:pos + 2] = ext_len.to_bytes(2, "big")
    body += extension
    handshake = bytes([1]) + len(body).to_bytes(3, "big") + body
    return bytes([0x16, 0x03, 0x01]) + struct.pack("!H", len(handshake)) + handshake


def test_hello_with_trusted_ca_keys_parses_all_three_identifier_kinds(test_pki):
    root = test_pki.v2g_root.cert
    der = root.public_bytes(serialization.Encoding.DER)
    wanted = [(TRUSTED_KEY_SHA1, bytes.fromhex(key_sha1(root))),
              (TRUSTED_X509_NAME, root.subject.public_bytes()),
              (TRUSTED_CERT_SHA1, hashlib.sha1(der).digest())]
    hello = parse_client_hello(client_hello(wanted))
    assert hello is not None and hello.trusted_ca_keys == wanted
    assert "TLSv1.2" in hello.offered_versions
    assert parse_client_hello(client_hello([])).trusted_ca_keys == []


def test_selector_matches_a_root_by_its_distinguished_name(store, test_pki):
    """Both test PKIs name their root alike; a third root with its own name is matched by it."""
    root = test_pki.make_root("Other V2G Root CA", "other V2G", "V2G")
    sub1 = test_pki.issue_ca(root, "Other CPO Sub-CA 1", "other CPO", path_length=1)
    sub2 = test_pki.issue_ca(sub1, "Other CPO Sub-CA 2", "other CPO", path_length=0)
    leaf = test_pki.issue_leaf(sub2, "DEPYSE00C", "other CPO", domain="CPO")
    store.import_root(RootKind.V2G, root.cert_pem)
    store.install_secc_chain(leaf.cert_pem + sub2.cert_pem + sub1.cert_pem, leaf.key)
    selector = selector_for(store)
    chosen = selector.select(parse_client_hello(client_hello(
        [(TRUSTED_X509_NAME, root.cert.subject.public_bytes())])))
    assert chosen is next(c.context for c in selector.choices
                          if c.root_name == "Other V2G Root CA")


@pytest.mark.parametrize("kind", [TRUSTED_KEY_SHA1, TRUSTED_CERT_SHA1])
def test_selector_picks_the_chain_under_the_named_root(store, test_pki, pki_b, kind):
    selector = selector_for(store)
    root = pki_b.v2g_root.cert
    value = {TRUSTED_KEY_SHA1: bytes.fromhex(key_sha1(root)),
             TRUSTED_CERT_SHA1: hashlib.sha1(root.public_bytes(
                 serialization.Encoding.DER)).digest()}[kind]
    chosen = selector.select(parse_client_hello(client_hello([(kind, value)])))
    assert chosen is not selector.default
    assert chosen is next(c.context for c in selector.choices
                          if (TRUSTED_KEY_SHA1, bytes.fromhex(key_sha1(root))) in c.keys)


def test_selector_falls_back_to_the_default(store, test_pki):
    selector = selector_for(store)
    stranger = TestPKI().v2g_root.cert
    assert selector.select(None) is selector.default
    assert selector.select(parse_client_hello(client_hello([]))) is selector.default
    assert selector.select(parse_client_hello(client_hello(
        [(TRUSTED_KEY_SHA1, bytes.fromhex(key_sha1(stranger)))]))) is selector.default


def server_certificate_leaf(data: bytes) -> x509.Certificate | None:
    """The first certificate of the server's TLS 1.2 Certificate message, or None."""
    handshake = bytearray()
    pos = 0
    while pos + 5 <= len(data) and data[pos] == 0x16:
        length = int.from_bytes(data[pos + 3:pos + 5], "big")
        handshake += data[pos + 5:pos + 5 + length]
        pos += 5 + length
    pos = 0
    while pos + 4 <= len(handshake):
        kind, length = handshake[pos], int.from_bytes(handshake[pos + 1:pos + 4], "big")
        if kind == 11 and pos + 4 + length <= len(handshake):
            cert_len = int.from_bytes(handshake[pos + 7:pos + 10], "big")
            return x509.load_der_x509_certificate(bytes(handshake[pos + 10:pos + 10 + cert_len]))
        pos += 4 + length
    return None


async def first_flight(interface: str, address: str, port: int, hello: bytes) -> bytes:
    link = await wait_for_link_local(interface)
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, (address, port, 0, link.scope_id))
        await loop.sock_sendall(sock, hello)
        data = b""
        async with asyncio.timeout(5):
            while server_certificate_leaf(data) is None:
                chunk = await loop.sock_recv(sock, 65536)
                if not chunk:
                    break
                data += chunk
        return data
    finally:
        sock.close()


@pytest.mark.netns
def test_server_presents_the_chain_the_car_trusts_over_a_real_socket(veth_link, store,
                                                                    test_pki, pki_b):
    selector = selector_for(store)
    default_ctx = selector.default
    named_b = client_hello([(TRUSTED_KEY_SHA1, bytes.fromhex(key_sha1(pki_b.v2g_root.cert)))])
    plain = client_hello([])

    async def secc_main(ready, ev_done):
        server = await start_v2gtp_server(V2GTPServerConfig(
            interface=veth_link.ifnames["secc"], ssl_context=default_ctx, handshake_timeout=3,
            context_selector=selector.select), handler=_echo)
        ready.set_result((server.link.address, server.port))
        await wait_for_event(ev_done)
        await server.close()

    async def ev_main(info):
        leaf_b = server_certificate_leaf(await first_flight(veth_link.ifnames["ev"], *info,
                                                            named_b))
        leaf_default = server_certificate_leaf(await first_flight(veth_link.ifnames["ev"],
                                                                  *info, plain))
        conn = await connect_v2gtp(veth_link.ifnames["ev"], *info,
                                   ssl_context=iso2_client_context(store.path / "v2g_root.pem"))
        await conn.send(PayloadType.EXI, b"\x80\x00")
        echoed = (await conn.receive(timeout=3)).payload
        await conn.close()
        return leaf_b, leaf_default, echoed

    _, (leaf_b, leaf_default, echoed) = run_secc_and_ev(veth_link, secc_main, ev_main)
    assert leaf_b.public_key() == pki_b.secc_leaf.cert.public_key()
    assert leaf_default.public_key() == test_pki.secc_leaf.cert.public_key()
    assert echoed == b"\x80\x00"  # a full handshake on the default chain


async def _echo(connection):
    async for message in connection:
        await connection.send(message.payload_type, message.payload)
