"""sd_notify(3) over a real unix datagram socket: READY/STATUS/WATCHDOG/RELOADING/STOPPING,
the abstract namespace, and a watchdog that stops pinging when the event loop stalls."""

from __future__ import annotations

import asyncio
import os
import socket
import time

import pytest

from secc.common.sdnotify import SystemdNotifier, watchdog_loop
from tests.service.notify_socket import NotifySocket


@pytest.fixture
def notify_socket(tmp_path):
    sock = NotifySocket(tmp_path / "notify")
    yield sock
    sock.close()


def test_ready_status_and_stopping_datagrams(notify_socket):
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(notify_socket.path)})
    assert notifier.enabled and notifier.watchdog_interval is None
    assert notifier.ready("idle, PLC link up, CSMS connected")
    assert notifier.status("charging EVSE 1 ISO-2 DC 42 kW")
    assert notifier.status("charging EVSE 1 ISO-2 DC 42 kW")     # unchanged: not re-sent
    assert notifier.reloading() and notifier.stopping("stopping")
    notify_socket.wait_for(lambda f: "STOPPING" in f)
    assert notify_socket.all() == [
        {"READY": "1", "STATUS": "idle, PLC link up, CSMS connected"},
        {"STATUS": "charging EVSE 1 ISO-2 DC 42 kW"},
        {"RELOADING": "1", "MONOTONIC_USEC": notify_socket.all()[2]["MONOTONIC_USEC"]},
        {"STOPPING": "1", "STATUS": "stopping"}]
    assert int(notify_socket.all()[2]["MONOTONIC_USEC"]) > 0


def test_abstract_namespace_socket():
    name = f"pysecc-notify-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind("\0" + name)
        server.settimeout(5)
        assert SystemdNotifier({"NOTIFY_SOCKET": "@" + name}).ready()
        assert server.recv(100) == b"READY=1"


def test_outside_systemd_everything_is_a_no_op():
    notifier = SystemdNotifier({})
    assert not notifier.enabled
    assert notifier.ready("x") is False and notifier.watchdog() is False


def test_watchdog_for_another_pid_is_ignored():
    notifier = SystemdNotifier({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"})
    assert notifier.watchdog_interval is None
    assert SystemdNotifier({"WATCHDOG_USEC": "1000000"}).watchdog_interval == 0.5


async def test_watchdog_pings_come_from_the_loop_and_stop_when_it_stalls(notify_socket):
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(notify_socket.path),
                                "WATCHDOG_USEC": "100000"})           # ping every 50 ms
    task = asyncio.create_task(watchdog_loop(notifier, lambda: "idle"))
    try:
        await asyncio.to_thread(notify_socket.wait_for, lambda f: "WATCHDOG" in f)
        while len(notify_socket.times("WATCHDOG")) < 4:
            await asyncio.sleep(0.01)
        time.sleep(0.5)                    # the loop stalls: no ping can leave
        before = len(notify_socket.times("WATCHDOG"))
        while len(notify_socket.times("WATCHDOG")) < before + 3:
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
    pings = notify_socket.times("WATCHDOG")
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    assert max(gaps) >= 0.45                             # the stall shows as a missing ping
    assert sorted(gaps)[len(gaps) // 2] < 0.2            # otherwise every ~50 ms
    assert {"STATUS": "idle"} in notify_socket.all()
