"""systemd's readiness, status and watchdog notifications (sd_notify(3)), for both processes.

The protocol is one datagram of ``KEY=value`` lines to the unix socket named by
``$NOTIFY_SOCKET`` (a leading ``@`` means the abstract namespace). We send it ourselves rather
than use the ``sdnotify`` package: that package has had no release since 2017 and swallows
every error, and the documented protocol is these few lines. Outside systemd (no
``NOTIFY_SOCKET``) every call is a no-op, so the daemon runs the same from a shell.

* ``READY=1`` once the process can serve (the SECC daemon: board, transport and bus up;
  the bridge: connected to the broker);
* ``STATUS=...`` what ``systemctl status`` shows, e.g. ``idle, PLC link up, CSMS connected``;
* ``WATCHDOG=1`` from a task on the event loop itself (:func:`watchdog_loop`), every half of
  ``WatchdogSec=`` (``$WATCHDOG_USEC``): a stalled loop stops the pings and systemd restarts
  the unit;
* ``RELOADING=1`` / ``STOPPING=1`` around SIGHUP and SIGTERM handling.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import socket
import time
from collections.abc import Awaitable, Callable

from secc.common.logs import layer_logger

log = layer_logger("cli")


class SystemdNotifier:
    """Sends sd_notify datagrams to ``$NOTIFY_SOCKET``; does nothing when it is unset."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self._sock: socket.socket | None = None
        self.last_status = ""
        self.watchdog_usec = 0
        pid = env.get("WATCHDOG_PID")
        if env.get("WATCHDOG_USEC", "").isdigit() and (pid is None or pid == str(os.getpid())):
            self.watchdog_usec = int(env["WATCHDOG_USEC"])
        if self.address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between WATCHDOG=1 pings (half of WatchdogSec=), or None without one."""
        return self.watchdog_usec / 2e6 if self.watchdog_usec else None

    def notify(self, *lines: str) -> bool:
        """Send one datagram; False (logged once per failure kind) when it could not go."""
        if self._sock is None:
            return False
        try:
            self._sock.sendto("\n".join(lines).encode(), self.address)
            return True
        except OSError as exc:
            log.warning("systemd notification failed", extra={"error": str(exc),
                                                              "socket": self.address})
            return False

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        """STATUS= only when it changed (the loop calls this often)."""
        if text == self.last_status:
            return True
        self.last_status = text
        return self.notify(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def reloading(self) -> bool:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self, status: str = "") -> bool:
        return self.notify("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


async def watchdog_loop(notifier: SystemdNotifier,
                        status: Callable[[], str | Awaitable[str]] | None = None,
                        status_interval: float = 2.0) -> None:
    """Run on the event loop being watched: WATCHDOG=1 every half WatchdogSec (so a stalled
    loop misses its pings), and STATUS= refreshed from ``status()`` (plain or async) when it
    changes."""
    if not notifier.enabled:
        return
    ping = notifier.watchdog_interval
    step = min(ping or status_interval, status_interval)
    loop = asyncio.get_running_loop()
    next_ping = loop.time()
    while True:
        if status is not None:
            try:
                text = status()
                if inspect.isawaitable(text):
                    text = await text
                notifier.status(str(text))
            except Exception as exc:  # noqa: BLE001 - a status text never stops the pings
                log.warning("status line failed", extra={"error": repr(exc)})
        if ping is not None and loop.time() >= next_ping:
            notifier.watchdog()
            next_ping = loop.time() + ping
        await asyncio.sleep(step)
