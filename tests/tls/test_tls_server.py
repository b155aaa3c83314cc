"""TLS 1.2 (ISO 15118-2) and TLS 1.3 (ISO 15118-20, mutual) V2G connections over veth."""

from __future__ import annotations

import asyncio
import logging
import ssl

import pytest

from secc.common.logs import KeyValueFormatter
from secc.tls import (
    CertificateDirectory,
    ClientAuth,
    TLSConfigError,
    describe_offer,
    iso2_client_context,
    iso2_server_context,
    iso20_client_context,
    iso20_server_context,
)
from secc.v2gtp import ConnectionClosed, PayloadType, V2GTPServerConfig, start_v2gtp_server
from sim.ev_transport import connect_v2gtp, run_secc_and_ev, v2gtp_server_side, wait_for_event


@pytest.fixture
def cert_dir(tmp_path, test_pki):
    files = test_pki.write_secc_files(tmp_path / "certs")
    vehicle = test_pki.write_vehicle_files(tmp_path / "vehicle")
    return {"certs": CertificateDirectory(tmp_path / "certs"), "v2g_root": files["v2g_root"],
            "vehicle_chain": vehicle["chain"], "vehicle_key": vehicle["key"], "tmp": tmp_path}


class Capture(logging.Handler):
    """Collects pysecc log records emitted by any thread (the netns threads included)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.setFormatter(KeyValueFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self, text: str) -> list[str]:
        return [self.format(r) for r in self.records if text in r.getMessage()]


@pytest.fixture
def tls_log():
    handler = Capture()
    logger = logging.getLogger("pysecc.tls")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old)


def tls_echo_server(link, ctx, results: dict):
    async def handler(connection):
        results["tls_version"] = connection.tls_version
        results["cipher"] = connection.cipher
        results["peer_cert"] = connection.peer_certificate_der()
        async for message in connection:
            await connection.send(message.payload_type, message.payload)

    serve = v2gtp_server_side(link.ifnames["secc"], handler, ssl_context=ctx,
                              handshake_timeout=3)

    async def secc_main(ready, ev_done):
        server = await serve(ready, ev_done)
        results["handshake_failures"] = list(server.handshake_failures)

    return secc_main


def echo_client(link, ctx, payload=b"\x80\x00"):
    async def ev_main(info):
        conn = await connect_v2gtp(link.ifnames["ev"], *info, ssl_context=ctx)
        await conn.send(PayloadType.EXI, payload)
        reply = await conn.receive(timeout=3)
        await conn.close()
        return reply.payload

    return ev_main


def test_iso2_context_offers_tls12_ecdhe_ecdsa_aes128_sha256_only(cert_dir):
    offer = describe_offer(iso2_server_context(cert_dir["certs"]))
    assert offer.versions == ("TLSv1.2",)
    assert offer.cipher_suites == ("ECDHE-ECDSA-AES128-SHA256",)
    assert offer.client_auth == "none"


def test_iso20_context_is_tls13_only_with_required_client_auth(cert_dir):
    offer = describe_offer(iso20_server_context(cert_dir["certs"]))
    assert offer.versions == ("TLSv1.3",)
    assert {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"} <= set(offer.cipher_suites)
    assert offer.client_auth == "required"


def test_missing_certificate_files_are_a_config_error(tmp_path):
    with pytest.raises(TLSConfigError, match="missing"):
        iso2_server_context(CertificateDirectory(tmp_path))


@pytest.mark.netns
def test_iso2_tls12_echo_with_secc_chain_verified_against_v2g_root(veth_link, cert_dir):
    results: dict = {}
    server_ctx = iso2_server_context(cert_dir["certs"])
    client_ctx = iso2_client_context(cert_dir["v2g_root"])
    payload = bytes(range(256)) * 20  # 5 kB: spans several TLS records and TCP segments
    _, reply = run_secc_and_ev(veth_link, tls_echo_server(veth_link, server_ctx, results),
                               echo_client(veth_link, client_ctx, payload))
    assert reply == payload
    assert results["tls_version"] == "TLSv1.2"
    assert results["cipher"] == "ECDHE-ECDSA-AES128-SHA256"
    assert results["peer_cert"] is None


@pytest.mark.netns
def test_iso20_tls13_mutual_auth_gives_the_server_the_vehicle_certificate(veth_link, cert_dir,
                                                                          test_pki):
    results: dict = {}
    server_ctx = iso20_server_context(cert_dir["certs"], ClientAuth.REQUIRED)
    client_ctx = iso20_client_context(cert_dir["v2g_root"], cert_dir["vehicle_chain"],
                                      cert_dir["vehicle_key"])
    _, reply = run_secc_and_ev(veth_link, tls_echo_server(veth_link, server_ctx, results),
                               echo_client(veth_link, client_ctx))
    assert reply == b"\x80\x00"
    assert results["tls_version"] == "TLSv1.3"
    assert results["peer_cert"] == test_pki.vehicle_leaf.cert_der


@pytest.mark.netns
def test_iso20_required_client_auth_rejects_a_vehicle_without_certificate(veth_link, cert_dir,
                                                                         tls_log):
    results: dict = {}
    server_ctx = iso20_server_context(cert_dir["certs"], ClientAuth.REQUIRED)
    client_ctx = iso20_client_context(cert_dir["v2g_root"])

    async def ev_main(info):
        try:
            conn = await connect_v2gtp(veth_link.ifnames["ev"], *info, ssl_context=client_ctx)
            await conn.send(PayloadType.EXI, b"\x80")
            await conn.receive(timeout=3)
        except (ConnectionClosed, ssl.SSLError, OSError):
            return "rejected"
        return "accepted"

    _, outcome = run_secc_and_ev(veth_link, tls_echo_server(veth_link, server_ctx, results),
                                 ev_main)
    assert outcome == "rejected"
    assert len(results["handshake_failures"]) == 1
    assert "CERTIFICATE" in results["handshake_failures"][0]["error"].upper()


@pytest.mark.netns
def test_client_with_only_unsupported_ciphers_gets_a_diagnostic_naming_both_offers(
        veth_link, cert_dir, tls_log):
    results: dict = {}
    server_ctx = iso2_server_context(cert_dir["certs"])
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE
    client_ctx.minimum_version = client_ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    client_ctx.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384")

    async def ev_main(info):
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await connect_v2gtp(veth_link.ifnames["ev"], *info, ssl_context=client_ctx)
        return True

    run_secc_and_ev(veth_link, tls_echo_server(veth_link, server_ctx, results), ev_main)
    [line] = tls_log.lines("TLS handshake failed")
    assert "client_ciphers=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256," \
           "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" in line
    assert "we_offer_ciphers=TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 " in line
    assert "client_versions=TLSv1.2" in line and "we_offer_versions=TLSv1.2" in line
    assert "no common cipher suite" in line


@pytest.mark.netns
def test_tls13_only_client_against_iso2_server_is_told_no_common_version(veth_link, cert_dir,
                                                                         tls_log):
    results: dict = {}
    server_ctx = iso2_server_context(cert_dir["certs"])
    client_ctx = iso20_client_context(cert_dir["v2g_root"])

    async def ev_main(info):
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await connect_v2gtp(veth_link.ifnames["ev"], *info, ssl_context=client_ctx)
        return True

    run_secc_and_ev(veth_link, tls_echo_server(veth_link, server_ctx, results), ev_main)
    [failure] = results["handshake_failures"]
    assert failure["client_versions"] == "TLSv1.3"
    assert failure["we_offer_versions"] == "TLSv1.2"
    assert "no common TLS version" in failure["hint"]


@pytest.mark.netns
def test_key_log_file_is_written_and_announced_loudly(veth_link, cert_dir, tls_log):
    results: dict = {}
    keylog = cert_dir["tmp"] / "keys.log"
    server_ctx = iso2_server_context(cert_dir["certs"], keylog_file=keylog)
    assert any(r.levelno == logging.WARNING and "KEY LOGGING" in r.getMessage()
               for r in tls_log.records)
    client_ctx = iso2_client_context(cert_dir["v2g_root"])
    run_secc_and_ev(veth_link, tls_echo_server(veth_link, server_ctx, results),
                    echo_client(veth_link, client_ctx))
    assert "CLIENT_RANDOM" in keylog.read_text()


def test_key_logging_is_off_by_default(cert_dir):
    assert iso2_server_context(cert_dir["certs"]).keylog_filename is None
    assert iso20_server_context(cert_dir["certs"]).keylog_filename is None


@pytest.mark.netns
def test_silent_tcp_client_on_the_tls_port_times_out_in_the_handshake(veth_link, cert_dir):
    import socket

    server_ctx = iso2_server_context(cert_dir["certs"])
    failures: list = []

    async def secc_main(ready, ev_done):
        server = await start_v2gtp_server(
            V2GTPServerConfig(interface=veth_link.ifnames["secc"], ssl_context=server_ctx,
                              handshake_timeout=0.5), lambda c: asyncio.sleep(0))
        ready.set_result((server.link.address, server.port))
        await wait_for_event(ev_done)
        failures.extend(server.handshake_failures)
        await server.close()

    async def ev_main(info):
        address, port = info
        index = socket.if_nametoindex(veth_link.ifnames["ev"])
        sock = socket.create_connection((f"{address}%{index}", port), timeout=2)
        sock.settimeout(3)
        started = asyncio.get_running_loop().time()
        try:
            data = await asyncio.to_thread(sock.recv, 10)  # the server hangs up on us
        except ConnectionResetError:
            data = b""
        sock.close()
        return data, asyncio.get_running_loop().time() - started

    _, (data, took) = run_secc_and_ev(veth_link, secc_main, ev_main)
    assert data == b"" and took < 2.5
    assert failures and failures[0]["client_offer"] == "unknown (no ClientHello seen)"


def _write_vehicle(tmp_path, name, leaf, *intermediates):
    chain = tmp_path / f"{name}_chain.pem"
    chain.write_bytes(leaf.cert_pem + b"".join(c.cert_pem for c in intermediates))
    key = tmp_path / f"{name}_key.pem"
    key.write_bytes(leaf.key_pem)
    return chain, key


def _outcome(link, server_ctx, client_ctx):
    results: dict = {}

    async def ev_main(info):
        try:
            conn = await connect_v2gtp(link.ifnames["ev"], *info, ssl_context=client_ctx)
            await conn.send(PayloadType.EXI, b"\x80")
            await conn.receive(timeout=3)
            await conn.close()
        except (ConnectionClosed, ssl.SSLError, OSError):
            return "rejected"
        return "accepted"

    _, outcome = run_secc_and_ev(link, tls_echo_server(link, server_ctx, results), ev_main)
    return outcome, results


@pytest.mark.netns
def test_vehicle_certificate_from_an_unknown_root_is_rejected(veth_link, cert_dir, test_pki):
    stranger_root = test_pki.make_root("Stranger Root", "elsewhere", None)
    stranger = test_pki.issue_leaf(stranger_root, "WSTRANGER00000001", "elsewhere")
    chain, key = _write_vehicle(cert_dir["tmp"], "stranger", stranger)
    outcome, results = _outcome(
        veth_link, iso20_server_context(cert_dir["certs"], ClientAuth.REQUIRED),
        iso20_client_context(cert_dir["v2g_root"], chain, key))
    assert outcome == "rejected"
    assert "certificate" in results["handshake_failures"][0]["error"].lower()


@pytest.mark.netns
def test_vehicle_certificate_anchored_at_the_v2g_root_is_accepted(veth_link, cert_dir,
                                                                 test_pki):
    vehicle = test_pki.issue_leaf(test_pki.cpo_sub2, "WV2GROOTED0000001", "pysecc OEM")
    chain, key = _write_vehicle(cert_dir["tmp"], "v2g_vehicle", vehicle, test_pki.cpo_sub2,
                                test_pki.cpo_sub1)
    outcome, results = _outcome(
        veth_link, iso20_server_context(cert_dir["certs"], ClientAuth.REQUIRED),
        iso20_client_context(cert_dir["v2g_root"], chain, key))
    assert outcome == "accepted" and results["peer_cert"] == vehicle.cert_der


@pytest.mark.netns
def test_optional_client_auth_accepts_a_vehicle_without_certificate(veth_link, cert_dir):
    outcome, results = _outcome(
        veth_link, iso20_server_context(cert_dir["certs"], ClientAuth.OPTIONAL),
        iso20_client_context(cert_dir["v2g_root"]))
    assert outcome == "accepted" and results["peer_cert"] is None


@pytest.mark.netns
def test_plain_v2gtp_sent_to_the_tls_port_is_named_in_the_diagnostic(veth_link, cert_dir):
    results: dict = {}
    server_ctx = iso2_server_context(cert_dir["certs"])

    async def ev_main(info):
        conn = await connect_v2gtp(veth_link.ifnames["ev"], *info)  # no TLS
        await conn.send(PayloadType.EXI, b"\x80\x00")
        with pytest.raises(ConnectionClosed):
            await conn.receive(timeout=3)
        return True

    run_secc_and_ev(veth_link, tls_echo_server(veth_link, server_ctx, results), ev_main)
    [failure] = results["handshake_failures"]
    assert failure["client_offer"] == "not a TLS ClientHello"
    assert failure["client_first_bytes"].startswith("01fe8001")


@pytest.mark.netns
def test_message_spread_over_many_tls_records_arrives_whole(veth_link, cert_dir):
    """RISE-V2G#85: a 4252-byte message split over TLS records broke a reader; not ours."""
    from secc.v2gtp import encode_message

    results: dict = {}
    server_ctx = iso2_server_context(cert_dir["certs"])
    client_ctx = iso2_client_context(cert_dir["v2g_root"])
    payload = bytes(i % 253 for i in range(6000))

    async def ev_main(info):
        conn = await connect_v2gtp(veth_link.ifnames["ev"], *info, ssl_context=client_ctx)
        frame = encode_message(PayloadType.EXI, payload)
        for pos in range(0, len(frame), 37):  # each write is its own TLS record
            await conn.send_raw(frame[pos:pos + 37])
        reply = await conn.receive(timeout=5)
        await conn.close()
        return reply.payload

    _, reply = run_secc_and_ev(veth_link, tls_echo_server(veth_link, server_ctx, results),
                               ev_main)
    assert reply == payload
