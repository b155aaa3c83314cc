"""The V2G TCP server across the simulated PLC link (veth between two namespaces)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from secc.v2gtp import (
    BusyPolicy,
    ConnectionClosed,
    IncompleteMessageTimeout,
    InvalidProtocolVersion,
    PayloadTooLarge,
    PayloadType,
    TruncatedMessage,
    V2GTPServerConfig,
    encode_message,
    start_v2gtp_server,
)
from sim.ev_transport import (
    connect_v2gtp,
    reset_connection,
    run_secc_and_ev,
    v2gtp_server_side,
    wait_for_event,
)
from sim.testing.waits import wait_for_thread_event, wait_until

pytestmark = pytest.mark.netns


def echo_server(link, results: dict, *, connections: int = 1,
                on_bytes: threading.Event | None = None, **config_kwargs):
    """SECC side: echo every message back; record how each connection ended. After the EV is
    done it waits until ``connections`` handlers have recorded their close. ``on_bytes`` is
    set once part of a message has arrived."""
    all_closed = asyncio.Event()

    async def watch_partial(connection):
        await wait_until(lambda: connection.buffered_bytes > 0 or connection.closed, 10,
                         "part of a message")
        on_bytes.set()

    async def handler(connection):
        watcher = asyncio.create_task(watch_partial(connection)) if on_bytes else None
        try:
            async for message in connection:
                await connection.send(message.payload_type, message.payload)
        finally:
            if watcher is not None:
                watcher.cancel()
            results.setdefault("closes", []).append(connection.close_reason)
            results.setdefault("discarded", []).append(connection.discarded)
            if len(results["closes"]) >= connections:
                all_closed.set()

    async def secc_main(ready, ev_done):
        if connections == 0:
            all_closed.set()
        config = V2GTPServerConfig(interface=link.ifnames["secc"], **config_kwargs)
        server = await start_v2gtp_server(config, handler)
        ready.set_result((server.link.address, server.port))
        await wait_for_event(ev_done)
        await asyncio.wait_for(all_closed.wait(), 10)   # every handler recorded its close
        results["refused"] = server.refused
        await server.close()
        return server.port

    return secc_main


def test_messages_echo_over_tcp_on_a_dynamic_port(veth_link):
    results: dict = {}

    async def ev_main(info):
        address, port = info
        conn = await connect_v2gtp(veth_link.ifnames["ev"], address, port)
        replies = []
        for payload in (b"\x80\x00\x01", b"", bytes(range(256)) * 4):
            await conn.send(PayloadType.EXI, payload)
            replies.append((await conn.receive(timeout=2)).payload)
        await conn.send(PayloadType.ISO20_DC, b"dc")
        replies.append((await conn.receive(timeout=2)).payload_type)
        await conn.close()
        return replies

    port, replies = run_secc_and_ev(veth_link, echo_server(veth_link, results), ev_main)
    assert 49152 <= port <= 65535
    assert replies == [b"\x80\x00\x01", b"", bytes(range(256)) * 4, PayloadType.ISO20_DC]


def test_server_binds_the_secc_link_local_address_only(veth_link):
    results: dict = {}

    async def ev_main(info):
        address, port = info
        return address

    _, address = run_secc_and_ev(veth_link, echo_server(veth_link, results, connections=0),
                                 ev_main)
    assert address == veth_link.link_local("secc")


def test_6kB_message_in_1_byte_writes_arrives_whole(veth_link):
    results: dict = {}
    payload = bytes(i % 251 for i in range(6000))

    async def ev_main(info):
        conn = await connect_v2gtp(veth_link.ifnames["ev"], *info)
        data = encode_message(PayloadType.EXI, payload)
        for i in range(len(data)):
            await conn.send_raw(data[i:i + 1])
        reply = await conn.receive(timeout=5)
        await conn.close()
        return reply

    _, reply = run_secc_and_ev(veth_link, echo_server(veth_link, results, message_timeout=10),
                               ev_main)
    assert reply.payload == payload


def test_several_messages_in_one_write_are_all_delivered_in_order(veth_link):
    results: dict = {}

    async def ev_main(info):
        conn = await connect_v2gtp(veth_link.ifnames["ev"], *info)
        blob = b"".join(encode_message(PayloadType.EXI, bytes([n]) * n) for n in range(1, 6))
        await conn.send_raw(blob + encode_message(PayloadType.EXI, b"tail")[:5])
        replies = [await conn.receive(timeout=2) for _ in range(5)]
        await conn.send_raw(encode_message(PayloadType.EXI, b"tail")[5:])
        replies.append(await conn.receive(timeout=2))
        await conn.close()
        return [r.payload for r in replies]

    _, replies = run_secc_and_ev(veth_link, echo_server(veth_link, results), ev_main)
    assert replies == [bytes([n]) * n for n in range(1, 6)] + [b"tail"]


@pytest.mark.parametrize("bad, error", [
    (bytes([0x02, 0xFD, 0x80, 0x01, 0, 0, 0, 1, 0]), InvalidProtocolVersion),
    (bytes([0x01, 0xFF, 0x80, 0x01, 0, 0, 0, 1, 0]), InvalidProtocolVersion),
    (bytes([0x01, 0xFE, 0x80, 0x01, 0x00, 0x10, 0x00, 0x01]), PayloadTooLarge),
])
def test_fatal_header_errors_close_the_connection(veth_link, bad, error):
    results: dict = {}

    async def ev_main(info):
        conn = await connect_v2gtp(veth_link.ifnames["ev"], *info)
        await conn.send_raw(bad)
        with pytest.raises(ConnectionClosed):
            await conn.receive(timeout=2)
        return True

    run_secc_and_ev(veth_link, echo_server(veth_link, results), ev_main)
    assert isinstance(results["closes"][0], error)


def test_unknown_payload_type_is_discarded_and_the_session_goes_on(veth_link):
    results: dict = {}

    async def ev_main(info):
        conn = await connect_v2gtp(veth_link.ifnames["ev"], *info)
        await conn.send_raw(encode_message(0xA123, b"vendor stuff")
                            + encode_message(PayloadType.SDP_REQUEST, b"\x10\x00")
                            + encode_message(PayloadType.EXI, b"after"))
        reply = await conn.receive(timeout=2)
        await conn.close()
        return reply.payload

    _, reply = run_secc_and_ev(veth_link, echo_server(veth_link, results), ev_main)
    assert reply == b"after"
    assert results["discarded"] == [2]


def test_slow_loris_header_dribble_times_out(veth_link):
    results: dict = {}

    async def ev_main(info):
        conn = await connect_v2gtp(veth_link.ifnames["ev"], *info)
        data = encode_message(PayloadType.EXI, b"x" * 100)
        for i in range(len(data)):
            try:
                await conn.send_raw(data[i:i + 1])
            except OSError:
                return "reset"
            await asyncio.sleep(0.1)   # the dribble itself (the stimulus), not a wait
        with pytest.raises(ConnectionClosed):
            await conn.receive(timeout=2)
        return "closed"

    run_secc_and_ev(veth_link, echo_server(veth_link, results, message_timeout=0.5), ev_main)
    assert isinstance(results["closes"][0], IncompleteMessageTimeout)


def test_tcp_reset_mid_message_ends_the_connection_with_truncated_message(veth_link):
    results: dict = {}

    async def ev_main(info):
        conn = await connect_v2gtp(veth_link.ifnames["ev"], *info)
        await conn.send_raw(encode_message(PayloadType.EXI, b"y" * 500)[:200])
        await wait_for_thread_event(partial_seen, 10, "the SECC to read the partial message")
        reset_connection(conn)
        return True

    partial_seen = threading.Event()
    run_secc_and_ev(veth_link, echo_server(veth_link, results, on_bytes=partial_seen), ev_main)
    assert isinstance(results["closes"][0], TruncatedMessage)


def test_refuse_policy_refuses_a_second_connection_while_a_session_is_active(veth_link):
    results: dict = {}

    async def ev_main(info):
        first = await connect_v2gtp(veth_link.ifnames["ev"], *info)
        await first.send(PayloadType.EXI, b"one")
        await first.receive(timeout=2)
        with pytest.raises((ConnectionClosed, ConnectionError)):  # RST: at connect or later
            second = await connect_v2gtp(veth_link.ifnames["ev"], *info)
            await second.send(PayloadType.EXI, b"two")
            await second.receive(timeout=2)
        await first.send(PayloadType.EXI, b"still")
        reply = (await first.receive(timeout=2)).payload
        await first.close()
        return reply

    _, reply = run_secc_and_ev(
        veth_link, echo_server(veth_link, results, busy_policy=BusyPolicy.REFUSE_NEW), ev_main)
    assert reply == b"still"
    assert results["refused"] == 1


def test_a_reconnect_from_the_same_ev_supersedes_its_stale_connection(veth_link):
    """Default policy: the car dropped its connection (we have not noticed yet) and comes
    back at once from a new port: it is served, the stale connection is closed."""
    results: dict = {}

    async def ev_main(info):
        first = await connect_v2gtp(veth_link.ifnames["ev"], *info)
        await first.send(PayloadType.EXI, b"one")
        await first.receive(timeout=2)
        second = await connect_v2gtp(veth_link.ifnames["ev"], *info)
        await second.send(PayloadType.EXI, b"two")
        reply = (await second.receive(timeout=2)).payload
        with pytest.raises(ConnectionClosed):
            await first.receive(timeout=2)
        await second.close()
        return reply

    _, reply = run_secc_and_ev(veth_link, echo_server(veth_link, results), ev_main)
    assert reply == b"two" and results["refused"] == 0


def test_a_different_peer_is_refused_while_a_session_is_active(veth_link):
    """Default policy: another address on the link (not the car in session) gets a reset;
    the running session is untouched."""
    import socket
    import subprocess

    results: dict = {}
    intruder = "fe80::dead:beef"

    async def ev_main(info):
        address, port = info
        ifname = veth_link.ifnames["ev"]
        first = await connect_v2gtp(ifname, address, port)
        await first.send(PayloadType.EXI, b"one")
        await first.receive(timeout=2)
        subprocess.run(["ip", "-6", "addr", "add", f"{intruder}/64", "dev", ifname, "nodad"],
                       check=True)   # after the car's connection: it keeps its own address
        scope = socket.if_nametoindex(ifname)
        other = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        other.settimeout(3)
        other.bind((intruder, 0, 0, scope))
        refused = False
        try:
            other.connect((address, port, 0, scope))
            other.sendall(encode_message(PayloadType.EXI, b"two"))
            refused = other.recv(100) == b""
        except (ConnectionError, OSError):
            refused = True
        finally:
            other.close()
        await first.send(PayloadType.EXI, b"still")
        reply = (await first.receive(timeout=2)).payload
        await first.close()
        return refused, reply

    _, (refused, reply) = run_secc_and_ev(veth_link, echo_server(veth_link, results), ev_main)
    assert refused and reply == b"still"
    assert results["refused"] == 1


def test_replace_policy_hands_the_evse_to_the_new_connection(veth_link):
    results: dict = {}

    async def ev_main(info):
        first = await connect_v2gtp(veth_link.ifnames["ev"], *info)
        await first.send(PayloadType.EXI, b"one")
        await first.receive(timeout=2)
        second = await connect_v2gtp(veth_link.ifnames["ev"], *info)
        await second.send(PayloadType.EXI, b"two")
        reply = (await second.receive(timeout=2)).payload
        with pytest.raises(ConnectionClosed):
            await first.receive(timeout=2)
        await second.close()
        return reply

    _, reply = run_secc_and_ev(
        veth_link, echo_server(veth_link, results, connections=2,
                               busy_policy=BusyPolicy.REPLACE_OLD), ev_main)
    assert reply == b"two"
    assert results["refused"] == 0


def test_receive_timeout_leaves_the_connection_open_for_the_session_to_decide(veth_link):
    from secc.v2gtp import ReceiveTimeout

    results: dict = {}
    timed_out = threading.Event()
    done = asyncio.Event()

    async def handler(connection):
        with pytest.raises(ReceiveTimeout):
            await connection.receive(timeout=0.2)
        results["timed_out"] = True
        timed_out.set()
        message = await connection.receive(timeout=2)
        await connection.send(message.payload_type, message.payload)
        with pytest.raises(ConnectionClosed):  # peer closes: the stream ends cleanly
            await connection.receive(timeout=2)
        results["close_reason"] = connection.close_reason
        done.set()

    async def secc_main(ready, ev_done):
        server = await start_v2gtp_server(
            V2GTPServerConfig(interface=veth_link.ifnames["secc"]), handler)
        ready.set_result((server.link.address, server.port))
        await wait_for_event(ev_done)
        await asyncio.wait_for(done.wait(), 10)
        await server.close()

    async def ev_main(info):
        conn = await connect_v2gtp(veth_link.ifnames["ev"], *info)
        await wait_for_thread_event(timed_out, 10, "the SECC's receive timeout")
        await conn.send(PayloadType.EXI, b"late")
        reply = await conn.receive(timeout=2)
        await conn.close()
        return reply.payload

    _, reply = run_secc_and_ev(veth_link, secc_main, ev_main)
    assert reply == b"late" and results["timed_out"]
    assert results["close_reason"] == "peer closed the connection"


def test_restricted_payload_types_discard_the_others(veth_link):
    results: dict = {}
    restricted = threading.Event()

    async def handler(connection):
        connection.restrict_payload_types({PayloadType.EXI})
        restricted.set()
        message = await connection.receive(timeout=2)
        await connection.send(message.payload_type, message.payload)
        results["discarded"] = connection.discarded

    secc_main = v2gtp_server_side(veth_link.ifnames["secc"], handler)

    async def ev_main(info):
        conn = await connect_v2gtp(veth_link.ifnames["ev"], *info)
        await wait_for_thread_event(restricted, 10, "the handler to restrict first")
        await conn.send(PayloadType.ISO20_DC, b"-20 on a DIN session")
        await conn.send(PayloadType.EXI, b"din")
        reply = await conn.receive(timeout=2)
        await conn.close()
        return reply.payload

    _, reply = run_secc_and_ev(veth_link, secc_main, ev_main)
    assert reply == b"din" and results["discarded"] == 1


def test_v2gtp_server_on_a_missing_interface_fails_clearly(veth_link):
    from secc.v2gtp import InterfaceError

    async def main():
        with pytest.raises(InterfaceError, match="does not exist"):
            await start_v2gtp_server(V2GTPServerConfig(interface="nosuchif0"), None)
        return True

    assert veth_link.run_coroutine("secc", main).result(10)


def test_handler_crash_is_logged_and_the_server_keeps_serving(veth_link):
    calls = []

    async def handler(connection):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("session bug")
        message = await connection.receive(timeout=2)
        await connection.send(message.payload_type, message.payload)

    secc_main = v2gtp_server_side(veth_link.ifnames["secc"], handler)

    async def ev_main(info):
        first = await connect_v2gtp(veth_link.ifnames["ev"], *info)
        with pytest.raises(ConnectionClosed):
            await first.receive(timeout=2)
        second = await connect_v2gtp(veth_link.ifnames["ev"], *info)
        await second.send(PayloadType.EXI, b"again")
        reply = await second.receive(timeout=2)
        await second.close()
        return reply.payload

    _, reply = run_secc_and_ev(veth_link, secc_main, ev_main)
    assert reply == b"again" and len(calls) == 2
