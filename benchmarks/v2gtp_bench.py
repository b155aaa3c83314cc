"""V2GTP figures: decoder throughput, and echo round trips / TLS handshakes over the veth link.

Run: ``.venv/bin/python benchmarks/v2gtp_bench.py`` (the network part needs root; without it
only the decoder figures are printed). Cars tolerate ~100 ms per charge-loop exchange and
real chargers answer in 7-20 ms, so the transport's share must stay around a millisecond.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from secc.v2gtp import PayloadType, V2GTPDecoder, V2GTPServerConfig, encode_message  # noqa: E402
from secc.v2gtp import start_v2gtp_server  # noqa: E402


def bench_decoder() -> None:
    frame = encode_message(PayloadType.EXI, b"\x80" * 60)  # CurrentDemandReq-sized
    stream = frame * 20000
    decoder = V2GTPDecoder(message_timeout=None)
    started = time.perf_counter()
    count = 0
    for pos in range(0, len(stream), 65536):
        count += len(decoder.feed(stream[pos:pos + 65536], 0.0))
    took = time.perf_counter() - started
    print(f"decoder, 68-byte messages in 64 KiB reads: {count / took:,.0f} msg/s "
          f"({took / count * 1e6:.2f} us/msg)")

    big = encode_message(PayloadType.EXI, bytes(6000))
    decoder = V2GTPDecoder(message_timeout=None)
    started = time.perf_counter()
    for i in range(len(big)):
        decoder.feed(big[i:i + 1], 0.0)
    took = time.perf_counter() - started
    print(f"decoder, 6 kB message fed 1 byte at a time: {took * 1e3:.1f} ms")


def bench_network() -> None:
    from sim.testing.netns import VethLink, netns_supported
    from sim.testing.pki import TestPKI
    from secc.tls import (
        CertificateDirectory,
        ClientAuth,
        iso2_client_context,
        iso2_server_context,
        iso20_client_context,
        iso20_server_context,
    )
    from sim.ev_transport import connect_v2gtp, run_secc_and_ev, wait_for_event

    ok, why = netns_supported()
    if not ok:
        print(f"network figures skipped: {why}")
        return
    pki = TestPKI()
    tmp = Path(tempfile.mkdtemp(prefix="v2gtp-bench-"))
    files = pki.write_secc_files(tmp)
    (tmp / "vehicle_chain.pem").write_bytes(pki.vehicle_leaf.cert_pem + pki.oem_sub.cert_pem)
    (tmp / "vehicle_key.pem").write_bytes(pki.vehicle_leaf.key_pem)
    certs = CertificateDirectory(tmp)
    variants = {
        "TCP": (None, None),
        "TLS 1.2 (-2)": (iso2_server_context(certs), iso2_client_context(files["v2g_root"])),
        "TLS 1.3 mutual (-20)": (
            iso20_server_context(certs, ClientAuth.REQUIRED),
            iso20_client_context(files["v2g_root"], tmp / "vehicle_chain.pem",
                                 tmp / "vehicle_key.pem")),
    }
    with VethLink() as link:
        for name, (server_ctx, client_ctx) in variants.items():
            async def handler(connection):
                async for message in connection:
                    await connection.send(message.payload_type, message.payload)

            async def secc_main(ready, ev_done, server_ctx=server_ctx):
                server = await start_v2gtp_server(
                    V2GTPServerConfig(interface=link.ifnames["secc"], ssl_context=server_ctx),
                    handler)
                ready.set_result((server.link.address, server.port))
                await wait_for_event(ev_done)
                await server.close()

            async def ev_main(info, client_ctx=client_ctx):
                connects, rtts = [], []
                for _ in range(5):
                    started = time.perf_counter()
                    conn = await connect_v2gtp(link.ifnames["ev"], *info, ssl_context=client_ctx)
                    await conn.send(PayloadType.EXI, b"\x80" * 60)
                    await conn.receive(timeout=5)
                    connects.append(time.perf_counter() - started)
                    for _ in range(200):
                        started = time.perf_counter()
                        await conn.send(PayloadType.EXI, b"\x80" * 60)
                        await conn.receive(timeout=5)
                        rtts.append(time.perf_counter() - started)
                    await conn.close()
                    await asyncio.sleep(0.05)
                return connects, rtts

            _, (connects, rtts) = run_secc_and_ev(link, secc_main, ev_main)
            rtts.sort()
            print(f"{name:22s} connect+first exchange median {statistics.median(connects)*1e3:6.2f} ms;"
                  f" echo round trip median {statistics.median(rtts)*1e3:.3f} ms,"
                  f" p99 {rtts[int(len(rtts) * 0.99)]*1e3:.3f} ms (n={len(rtts)})")


if __name__ == "__main__":
    bench_decoder()
    bench_network()
