"""A stand-in for systemd's notification socket: a real AF_UNIX datagram socket whose
messages (with their arrival times) are collected on a thread."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path


class NotifySocket:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, dict[str, str]]] = []
        self._changed = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if line)
            with self._changed:
                self.messages.append((time.monotonic(), fields))
                self._changed.notify_all()

    def wait_for(self, predicate, timeout: float = 20.0) -> dict[str, str]:
        """The first message (from the start) matching ``predicate``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for _, fields in self.messages:
                    if predicate(fields):
                        return fields
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no such notification; got {self.all()}")
                self._changed.wait(left)

    def wait_count(self, key: str, count: int, timeout: float = 20.0) -> None:
        """Until ``count`` messages carried ``key``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while sum(key in fields for _, fields in self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"fewer than {count} {key}; got {self.all()}")
                self._changed.wait(left)

    def all(self) -> list[dict[str, str]]:
        with self._changed:
            return [fields for _, fields in self.messages]

    def times(self, key: str) -> list[float]:
        with self._changed:
            return [t for t, fields in self.messages if key in fields]

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        self.sock.close()
