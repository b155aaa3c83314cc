"""ISO 15118-20 where the catalogue's notes allow (its -20 rows are notes, not cases): the
-2 style session-ID and sequence checks and the SAP namespace notes, against ``secc run``
serving -20 DC over TLS 1.3 with mutual authentication. The tester builds its own TLS client
context (Python ``ssl``) from the test PKI's vehicle certificate.

Case ids here are ours (``D20_*``, after the catalogue row they port); docs/conformance.md
lists the -20 cases still missing.
"""

from __future__ import annotations

import socket
import ssl
import struct
import time

import pytest

import exi_schemas
from exi_schemas.generated import appprotocol as AP
from exi_schemas.generated import iso20 as CM
from tests.conformance.daemon import start_daemon
from tests.conformance.runner import Target, plug_in
from tests.conformance.tester import (
    Closed,
    Connection,
    Pilot,
    foreign_session_id,
    sdp_discover,
    v2gtp,
)

pytestmark = pytest.mark.netns

DC_NS = "urn:iso:std:iso:15118:-20:DC"
AC_NS = "urn:iso:std:iso:15118:-20:AC"
MAIN = 0x8002


@pytest.fixture(autouse=True)
def _in_the_table(request):
    """These cases appear in the conformance table under their own area."""
    from tests.conformance.cases import Case

    case_id = request.node.name.removeprefix("test_").split("[")[0]
    request.node.conformance_case = Case(case_id, "-20 (from the catalogue notes)", ("iso20-dc",))
    request.node.conformance_protocol = "iso20-dc" + (
        f"/{request.node.callspec.id}" if hasattr(request.node, "callspec") else "")


@pytest.fixture(scope="module")
def sut20(test_pki, tmp_path_factory):
    from sim.testing.netns import VethLink, netns_supported

    ok, why = netns_supported()
    if not ok:
        pytest.skip(why)
    certs = tmp_path_factory.mktemp("secc-certs")
    files = test_pki.write_secc_files(certs)
    vehicle = tmp_path_factory.mktemp("vehicle")
    (vehicle / "chain.pem").write_bytes(test_pki.vehicle_leaf.cert_pem
                                        + test_pki.oem_sub.cert_pem)
    (vehicle / "key.pem").write_bytes(test_pki.vehicle_leaf.key_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.load_verify_locations(cafile=str(files["v2g_root"]))
    ctx.load_cert_chain(str(vehicle / "chain.pem"), str(vehicle / "key.pem"))
    link = VethLink().create()
    daemon = start_daemon(link, "iso20-dc", certs=str(certs))
    try:
        yield link, daemon, ctx
    finally:
        daemon.stop()
        link.destroy()


async def connect_tls(target: Target, ctx) -> Connection:
    await plug_in(target)
    answer = await sdp_discover(target.interface, v2gtp(0x9000, bytes([0x00, 0x00])))
    assert answer is not None and answer[8 + 18] == 0x00, "no TLS offered by SDP"
    body = answer[8:]
    return await Connection.open(target.interface, socket.inet_ntop(socket.AF_INET6, body[:16]),
                                 struct.unpack(">H", body[16:18])[0], ctx)


async def sap(conn: Connection, offers) -> object:
    req = AP.supportedAppProtocolReq(app_protocol=[
        AP.AppProtocolType(protocol_namespace=ns, version_number_major=1, version_number_minor=0,
                           schema_id=i + 1, priority=prio) for i, (ns, prio) in enumerate(offers)])
    await conn.send_raw(v2gtp(0x8001, exi_schemas.encode(req)))
    _, payload = await conn.receive(2.0)
    return exi_schemas.decode(payload, "appprotocol")


def header(session_id: bytes) -> CM.MessageHeaderType:
    return CM.MessageHeaderType(session_id=session_id, time_stamp=int(time.time()))


async def request(conn: Connection, element: str, body) -> tuple[str, object]:
    await conn.send_raw(v2gtp(MAIN, exi_schemas.encode(body, element=element)))
    _, payload = await conn.receive(2.0)
    return exi_schemas.decode_element(payload, "iso20")


async def session_setup(conn: Connection) -> bytes:
    res = await sap(conn, [(DC_NS, 1)])
    assert res.response_code == "OK_SuccessfulNegotiation", res
    name, res = await request(conn, "SessionSetupReq", CM.SessionSetupReqType(
        header=header(bytes(8)), evccid="WMIV1234567890ABCDEX"))
    assert name == "SessionSetupRes" and res.response_code == "OK_NewSessionEstablished", res
    assert res.header.session_id != bytes(8)
    return res.header.session_id


def run(link, coro_factory):
    return link.run_coroutine("ev", coro_factory).result(60)


def test_D20_SessionSetup_002_service_discovery_before_session_setup(sut20):
    link, daemon, ctx = sut20
    target = Target(link.ifnames["ev"], Pilot(daemon.socket_path))

    async def case():
        conn = await connect_tls(target, ctx)
        try:
            assert (await sap(conn, [(DC_NS, 1)])).response_code == "OK_SuccessfulNegotiation"
            name, res = await request(conn, "ServiceDiscoveryReq", CM.ServiceDiscoveryReqType(
                header=header(b"\x00")))
            assert name == "ServiceDiscoveryRes" and res.response_code == "FAILED_SequenceError"
            await conn.expect_close(5.0)
        finally:
            conn.close()
    run(link, case)


@pytest.mark.parametrize("kind", ["foreign", "zero"])
def test_D20_ServiceDiscovery_003_unknown_session(sut20, kind):
    link, daemon, ctx = sut20
    target = Target(link.ifnames["ev"], Pilot(daemon.socket_path))

    async def case():
        conn = await connect_tls(target, ctx)
        try:
            own = await session_setup(conn)
            sid = foreign_session_id(own) if kind == "foreign" else bytes(8)
            name, res = await request(conn, "AuthorizationSetupReq",
                                      CM.AuthorizationSetupReqType(header=header(sid)))
            assert name == "AuthorizationSetupRes", name
            assert res.response_code == "FAILED_UnknownSession", res.response_code
            await conn.expect_close(5.0)
        finally:
            conn.close()
    run(link, case)


def test_D20_SAP_a_dc_station_skips_the_ac_namespace(sut20):
    """OCC everest-d20-ac-namespace: the -20 namespace names AC or DC; a DC-only station
    filters the offer by its capability before ranking: AC (priority 1) + DC (priority 2)
    -> the DC entry; AC alone -> Failed_NoNegotiation and close."""
    link, daemon, ctx = sut20
    target = Target(link.ifnames["ev"], Pilot(daemon.socket_path))

    async def case():
        conn = await connect_tls(target, ctx)
        try:
            res = await sap(conn, [(AC_NS, 1), (DC_NS, 2)])
            assert res.response_code.startswith("OK") and res.schema_id == 2, res
        finally:
            conn.close()
        conn = await connect_tls(target, ctx)
        try:
            res = await sap(conn, [(AC_NS, 1)])
            assert res.response_code == "Failed_NoNegotiation", res
            try:
                await conn.expect_close(5.0)
            except Closed:
                pass
        finally:
            conn.close()
    run(link, case)
