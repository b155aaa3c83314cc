import asyncio
import socket
import struct

import pytest

ETH_P_HOMEPLUG = 0x88E1


def test_raw_ethernet_frame_crosses_veth(veth_link):
    rx = veth_link.socket("secc", socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_HOMEPLUG))
    tx = veth_link.socket("ev", socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_HOMEPLUG))
    with rx, tx:
        rx.bind((veth_link.ifnames["secc"], ETH_P_HOMEPLUG))
        tx.bind((veth_link.ifnames["ev"], ETH_P_HOMEPLUG))
        rx.settimeout(3)
        dst, src = veth_link.mac("secc"), veth_link.mac("ev")
        payload = b"\x01\x64\x60" + bytes(range(40))  # MMV 1, MMTYPE 0x6064 (CM_SLAC_PARM.REQ)
        tx.send(dst + src + struct.pack("!H", ETH_P_HOMEPLUG) + payload)
        frame = rx.recv(1518)
    assert frame[:6] == dst and frame[6:12] == src
    assert struct.unpack("!H", frame[12:14])[0] == ETH_P_HOMEPLUG
    assert frame[14:14 + len(payload)] == payload


def test_ipv6_link_local_tcp_across_veth(veth_link):
    secc_addr = veth_link.link_local("secc")
    secc_index = veth_link.ifindex("secc")
    ev_index = veth_link.ifindex("ev")
    assert secc_addr.startswith("fe80:")

    async def server():
        done = asyncio.get_running_loop().create_future()

        async def handle(reader, writer):
            data = await reader.readexactly(5)
            writer.write(data.upper())
            await writer.drain()
            writer.close()
            done.set_result(data)

        srv = await asyncio.start_server(handle, host=f"{secc_addr}%{secc_index}", port=15118)
        async with srv:
            ready.set_result(True)
            return await asyncio.wait_for(done, 5)

    import concurrent.futures
    ready: concurrent.futures.Future = concurrent.futures.Future()
    server_future = veth_link.run_coroutine("secc", server)
    ready.result(timeout=5)

    async def client():
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (secc_addr, 15118, 0, ev_index))
        reader, writer = await asyncio.open_connection(sock=sock)
        writer.write(b"hello")
        reply = await reader.readexactly(5)
        writer.close()
        return reply

    reply = veth_link.run_coroutine("ev", client).result(timeout=5)
    assert reply == b"HELLO"
    assert server_future.result(timeout=5) == b"hello"


def test_sides_are_isolated_from_the_host(veth_link):
    # the host namespace does not see the veth ends
    names = {name for _, name in socket.if_nameindex()}
    assert veth_link.ifnames["ev"] not in names
    assert veth_link.ifnames["secc"] not in names


def test_link_is_removed_on_destroy():
    from sim.testing.netns import VethLink, netns_supported
    ok, why = netns_supported()
    if not ok:
        pytest.skip(why)
    link = VethLink().create()
    names = dict(link.namespaces)
    link.destroy()
    import os
    for name in names.values():
        assert not os.path.exists(f"/var/run/netns/{name}")


async def test_link_facts_are_readable_from_inside_an_event_loop(veth_link):
    assert veth_link.link_local("ev").startswith("fe80:")
    assert len(veth_link.mac("secc")) == 6
