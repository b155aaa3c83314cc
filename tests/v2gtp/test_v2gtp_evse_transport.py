"""A whole EVSE transport (SDP + TCP + TLS) against the EV simulator's transport."""

from __future__ import annotations

import threading

import pytest

from secc.sdp import Security
from secc.tls import CertificateDirectory, iso2_client_context, iso2_server_context
from secc.v2gtp import BusyPolicy, ConnectionClosed, PayloadType
from secc.v2gtp.evse import EVSETransportConfig, start_evse_transport
from sim.ev_transport import (
    connect_to_discovered,
    connect_v2gtp,
    discover_secc,
    run_secc_and_ev,
    wait_for_event,
)
from sim.testing.waits import wait_for_thread_event

pytestmark = pytest.mark.netns


def test_ev_discovers_tls_connects_and_tcp_is_refused_meanwhile(veth_link, test_pki, tmp_path):
    files = test_pki.write_secc_files(tmp_path)
    server_ctx = iso2_server_context(CertificateDirectory(tmp_path))
    client_ctx = iso2_client_context(files["v2g_root"])
    seen: dict = {}
    tls_session_over = threading.Event()

    async def handler(connection):
        seen.setdefault("tls", []).append(connection.tls_version)
        try:
            async for message in connection:
                await connection.send(message.payload_type, message.payload)
        finally:
            if connection.tls_version is not None:
                tls_session_over.set()

    async def secc_main(ready, ev_done):
        transport = await start_evse_transport(
            EVSETransportConfig(interface=veth_link.ifnames["secc"], offer_tcp=True,
                                tls_context=server_ctx, busy_policy=BusyPolicy.REFUSE_NEW),
            handler)   # (the default lets the same EV supersede its own stale connection)
        ready.set_result((transport.tcp.port, transport.tls.port))
        await wait_for_event(ev_done)
        seen["refused"] = transport.tcp.refused + transport.tls.refused
        await transport.close()

    async def ev_main(ports):
        response = await discover_secc(veth_link.ifnames["ev"], Security.TLS, retries=3)
        assert response.port == ports[1] and response.security is Security.TLS
        conn = await connect_to_discovered(veth_link.ifnames["ev"], response, client_ctx)
        await conn.send(PayloadType.EXI, b"over tls")
        reply = (await conn.receive(timeout=3)).payload
        with pytest.raises((ConnectionClosed, ConnectionError)):
            plain = await connect_v2gtp(veth_link.ifnames["ev"], response.address, ports[0])
            await plain.send(PayloadType.EXI, b"over tcp")
            await plain.receive(timeout=2)
        await conn.close()
        await wait_for_thread_event(tls_session_over, 10, "the SECC to end the TLS session")
        plain = await connect_v2gtp(veth_link.ifnames["ev"], response.address, ports[0])
        await plain.send(PayloadType.EXI, b"over tcp later")
        later = (await plain.receive(timeout=3)).payload
        await plain.close()
        return reply, later

    _, (reply, later) = run_secc_and_ev(veth_link, secc_main, ev_main)
    assert reply == b"over tls" and later == b"over tcp later"
    assert seen["tls"] == ["TLSv1.2", None] and seen["refused"] == 1
