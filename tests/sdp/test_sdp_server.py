"""The SDP server on the simulated PLC link: multicast in, unicast answer, garbage ignored."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time

import pytest
from pyroute2 import NetNS

from secc.sdp import SDPRequest, SDPServerConfig, Security, start_sdp_server
from sim.testing.netns import inside_netns
from secc.v2gtp import InterfaceError, PayloadType, encode_message, read_link_local
from secc.v2gtp.link import wait_for_link_local
from sim.ev_transport import SDPNoResponse, discover_secc, run_secc_and_ev, wait_for_event
from sim.testing.waits import wait_for_thread_event, wait_until

pytestmark = pytest.mark.netns


def sdp_secc(link, stats: dict, *, start_after: threading.Event | None = None, **config):
    async def secc_main(ready, ev_done):
        address = (await wait_for_link_local(link.ifnames["secc"])).address
        if start_after is not None:  # the EV starts first and must retry
            ready.set_result(address)
            await wait_for_thread_event(start_after, 10, "the EV's unanswered SDP request")
        server = await start_sdp_server(SDPServerConfig(interface=link.ifnames["secc"],
                                                        **config))
        if start_after is None:
            ready.set_result(address)
        await wait_for_event(ev_done)
        stats.update(answered=server.answered, ignored=server.ignored)
        server.close()

    return secc_main


def test_ev_discovers_the_secc_by_multicast(veth_link):
    stats: dict = {}

    async def ev_main(_):
        return await discover_secc(veth_link.ifnames["ev"], Security.NO_TLS, retries=4)

    _, response = run_secc_and_ev(veth_link, sdp_secc(veth_link, stats, tcp_port=50123,
                                                      tls_port=50124), ev_main)
    assert response.address == veth_link.link_local("secc")
    assert (response.port, response.security) == (50123, Security.NO_TLS)
    assert stats["answered"] == 1


def test_ev_retries_until_the_secc_is_up(veth_link):
    stats: dict = {}
    unanswered = threading.Event()   # the SECC starts once the EV's first request went unheard
    requests: list[int] = []

    def on_request(n: int) -> None:
        requests.append(n)
        if n == 2:
            unanswered.set()

    async def ev_main(_):
        return await discover_secc(veth_link.ifnames["ev"], Security.TLS, retries=50,
                                   timeout=0.25, on_request=on_request)

    _, response = run_secc_and_ev(
        veth_link, sdp_secc(veth_link, stats, start_after=unanswered, tls_port=50200), ev_main)
    assert response.security is Security.TLS and response.port == 50200
    assert len(requests) >= 2  # answered only by a retry


def test_bad_datagrams_are_ignored_and_the_server_keeps_answering(veth_link):
    stats: dict = {}
    garbage = [b"", b"\x01", bytes.fromhex("02fd9000000000021000"),
               bytes.fromhex("01fe9000000000021077"),
               encode_message(PayloadType.SDP_REQUEST_WIRELESS, b"\x00" * 10),
               encode_message(PayloadType.SDP_RESPONSE, b"\x00" * 20), b"\xff" * 1400]

    async def ev_main(address):
        index = socket.if_nametoindex(veth_link.ifnames["ev"])
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        sock.settimeout(2)
        for datagram in garbage:
            sock.sendto(datagram, (address, 15118, 0, index))
        sock.sendto(SDPRequest(Security.NO_TLS).to_bytes(), (address, 15118, 0, index))
        reply = await asyncio.to_thread(sock.recv, 100)
        sock.close()
        return reply

    _, reply = run_secc_and_ev(veth_link, sdp_secc(veth_link, stats, tcp_port=50300), ev_main)
    assert reply[:4] == bytes.fromhex("01fe9001") and len(reply) == 28
    assert stats == {"answered": 1, "ignored": len(garbage)}


def test_sdp_server_does_not_answer_on_other_interfaces(veth_link):
    async def secc_main(ready, ev_done):
        server = await start_sdp_server(SDPServerConfig(interface=veth_link.ifnames["secc"],
                                                        tcp_port=50400))
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        sock.settimeout(0.3)
        sock.sendto(SDPRequest(Security.NO_TLS).to_bytes(), ("::1", 15118))
        try:
            await asyncio.to_thread(sock.recv, 100)
            answered_on_loopback = True
        except TimeoutError:
            answered_on_loopback = False
        sock.close()
        ready.set_result(None)
        await wait_for_event(ev_done)
        server.close()
        return answered_on_loopback

    async def ev_main(_):
        return await discover_secc(veth_link.ifnames["ev"], retries=2)

    answered_on_loopback, response = run_secc_and_ev(veth_link, secc_main, ev_main)
    assert answered_on_loopback is False
    assert response.port == 50400


def test_ev_gives_up_after_its_retries_when_nobody_answers(veth_link):
    async def ev_main():
        started = time.monotonic()
        with pytest.raises(SDPNoResponse):
            await discover_secc(veth_link.ifnames["ev"], retries=3, timeout=0.05)
        return time.monotonic() - started

    took = veth_link.run_coroutine("ev", ev_main).result(10)
    assert 0.18 <= took < 2


def test_missing_interface_is_a_clear_error(veth_link):
    async def main():
        with pytest.raises(InterfaceError, match="does not exist"):
            await start_sdp_server(SDPServerConfig(interface="nosuchif0", tcp_port=1))
        return True

    assert veth_link.run_coroutine("secc", main).result(10)


def test_server_waits_for_duplicate_address_detection(veth_link):
    """A fresh interface with DAD on: its fe80:: address is tentative first, usable later."""
    ns = veth_link.namespaces["secc"]
    with NetNS(ns) as netns:
        netns.link("add", ifname="dadA", kind="veth", peer="dadB")
        for name in ("dadA", "dadB"):
            with inside_netns(ns):
                with open(f"/proc/sys/net/ipv6/conf/{name}/accept_dad", "w") as fh:
                    fh.write("1")
        for name in ("dadB", "dadA"):
            netns.link("set", index=netns.link_lookup(ifname=name)[0], state="up")

    async def main():
        from secc.v2gtp.link import _addresses

        def address_appeared() -> bool:
            try:
                return bool(_addresses("dadA"))
            except InterfaceError:
                return False

        first = None
        with contextlib.suppress(TimeoutError):   # wait for the address to appear
            await wait_until(address_appeared, 1.0, "the fe80:: address of dadA")
            first = read_link_local("dadA")
        started = time.monotonic()
        link = await wait_for_link_local("dadA", timeout=5)
        return first, link, time.monotonic() - started

    first, link, waited = veth_link.run_coroutine("secc", main).result(15)
    assert first is None  # tentative: not usable yet
    assert link.address.startswith("fe80:") and waited > 0.2


def _add_second_connector(link) -> tuple[str, str]:
    """A second veth pair between the same two namespaces: connector 2 (secc: c2s, ev: c2e)."""
    secc_ns, ev_ns = link.namespaces["secc"], link.namespaces["ev"]
    with NetNS(secc_ns) as netns:
        netns.link("add", ifname="c2s", kind="veth", peer={"ifname": "c2e", "net_ns_fd": ev_ns})
    for ns, name in ((secc_ns, "c2s"), (ev_ns, "c2e")):
        with inside_netns(ns):
            for knob in ("accept_dad", "dad_transmits"):
                with open(f"/proc/sys/net/ipv6/conf/{name}/{knob}", "w") as fh:
                    fh.write("0")
        with NetNS(ns) as netns:
            netns.link("set", index=netns.link_lookup(ifname=name)[0], state="up")
    return "c2s", "c2e"


def test_two_connectors_each_answer_only_their_own_ev(veth_link):
    """Two SDP servers on port 15118 in one namespace, one per PLC interface (EVerest #763)."""
    secc2, ev2 = _add_second_connector(veth_link)

    async def secc_main(ready, ev_done):
        one = await start_sdp_server(SDPServerConfig(interface=veth_link.ifnames["secc"],
                                                     tcp_port=51001))
        two = await start_sdp_server(SDPServerConfig(interface=secc2, tcp_port=51002))
        ready.set_result((one.link.address, two.link.address))
        await wait_for_event(ev_done)
        one.close()
        two.close()
        return one.answered, two.answered

    async def ev_main(addresses):
        first = await discover_secc(veth_link.ifnames["ev"], retries=4)
        second = await discover_secc(ev2, retries=4)
        return addresses, first, second

    answered, (addresses, first, second) = run_secc_and_ev(veth_link, secc_main, ev_main)
    assert (first.port, first.address) == (51001, addresses[0])
    assert (second.port, second.address) == (51002, addresses[1])
    assert addresses[0] != addresses[1]
    assert answered == (1, 1)
