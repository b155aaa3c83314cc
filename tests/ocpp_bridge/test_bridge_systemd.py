"""The bridge process under systemd's notify protocol: READY=1 once it serves the bus, a
status line naming the CSMS link, watchdog pings from its event loop."""

from __future__ import annotations

import asyncio
import os

from bridge_harness import bridge_config

from sim.charger import start_bridge_process
from tests.service.notify_socket import NotifySocket



async def test_bridge_ready_status_and_watchdog(tmp_path, bus_broker, csms):
    notify = NotifySocket(tmp_path / "notify")
    env = {**os.environ, "NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "400000"}
    bridge = start_bridge_process(bridge_config(tmp_path, bus_broker, csms),
                                  tmp_path / "bridge.toml", env=env)
    try:
        ready = await asyncio.to_thread(notify.wait_for, lambda f: "READY" in f)
        assert ready["STATUS"].startswith("bus connected, ")
        await csms.wait_for("BootNotification", timeout=20)
        await asyncio.to_thread(notify.wait_for, lambda f: f.get("STATUS") ==
                                "bus connected, CSMS connected (security profile 1), 0 queued")
        await asyncio.to_thread(notify.wait_count, "WATCHDOG", 2)
    finally:
        bridge.terminate()
        await asyncio.to_thread(bridge.wait, 10)
        notify.close()
