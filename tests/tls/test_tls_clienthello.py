"""The ClientHello parser, fed real ClientHellos produced by OpenSSL, and garbage."""

from __future__ import annotations

import ssl

from hypothesis import given, settings
from hypothesis import strategies as st

from secc.tls.clienthello import cipher_suite_name, parse_client_hello


def client_hello_bytes(ctx: ssl.SSLContext) -> bytes:
    """The first flight a client with ``ctx`` sends (produced by OpenSSL via memory BIOs)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_side=False, server_hostname=None)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def tls12_client(ciphers: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(ciphers)
    return ctx


def test_tls12_hello_lists_exactly_the_offered_suites():
    hello = parse_client_hello(client_hello_bytes(tls12_client("ECDHE-ECDSA-AES128-SHA256")))
    assert hello is not None and not hello.truncated
    assert "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256" in hello.cipher_suite_names
    assert [n for n in hello.cipher_suite_names if "SCSV" not in n] == [
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"]
    assert hello.offered_versions == ["TLSv1.2"]


def test_tls13_hello_reports_supported_versions_and_groups():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    hello = parse_client_hello(client_hello_bytes(ctx))
    assert hello is not None
    assert hello.offered_versions == ["TLSv1.3"]
    assert {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"} <= set(hello.cipher_suite_names)
    assert "secp256r1" in hello.group_names


def test_truncated_hello_is_partial_not_an_error():
    data = client_hello_bytes(tls12_client("ECDHE-ECDSA-AES128-SHA256"))
    hello = parse_client_hello(data[:60])
    assert hello is None or hello.truncated
    hello = parse_client_hello(data[:-10])
    assert hello is not None and hello.truncated
    assert "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256" in hello.cipher_suite_names


def test_non_tls_bytes_are_not_a_hello():
    assert parse_client_hello(b"\x01\xfe\x80\x01\x00\x00\x00\x02ab") is None
    assert parse_client_hello(b"") is None
    assert cipher_suite_name(0xC025) == "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256"
    assert cipher_suite_name(0x1234) == "0x1234"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_parser_never_raises_on_garbage(data):
    parse_client_hello(b"\x16\x03\x01" + data)
    parse_client_hello(data)


def test_static_ecdh_only_car_gets_a_hint_naming_the_missing_suite(tmp_path, test_pki):
    from secc.tls import CertificateDirectory, handshake_failure_fields, iso2_server_context
    from secc.tls.clienthello import ClientHello

    test_pki.write_secc_files(tmp_path)
    hello = ClientHello(legacy_version=0x0303, cipher_suites=[0xC025])
    fields = handshake_failure_fields(ssl.SSLError("no shared cipher"), hello,
                                      iso2_server_context(CertificateDirectory(tmp_path)))
    assert fields["client_ciphers"] == "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256"
    assert "static-ECDH TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256" in fields["hint"]
    assert "no common cipher suite" in fields["hint"]
