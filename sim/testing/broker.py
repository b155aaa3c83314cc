"""The one mosquitto launcher (tests, demo, benchmarks): a private broker on a free localhost
port with the bus's production settings (``secc.bus.broker.mosquitto_conf``), stopped on exit.

The broker binds 127.0.0.1 only and keeps no persistence on disk unless asked. With
``username`` it requires that account; with ``bridge_user`` (name, password) as well it has two
accounts and the contract's ACL, so ``username`` may only act as the SECC and ``bridge_user``
only as the bridge.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from secc.bus.broker import find_mosquitto, free_tcp_port, mosquitto_conf
from secc.contract import mosquitto_acl

__all__ = ["MosquittoBroker", "find_mosquitto"]


@dataclass
class MosquittoBroker:
    """A mosquitto process. Use as a context manager or call start()/stop()."""

    port: int = 0
    host: str = "127.0.0.1"
    username: str | None = None
    password: str | None = None
    persistence_dir: Path | None = None
    bridge_user: tuple[str, str] | None = None
    tcp_nodelay: bool = True   # False only to measure what Nagle's algorithm costs
    process: subprocess.Popen | None = field(default=None, init=False)
    _workdir: tempfile.TemporaryDirectory | None = field(default=None, init=False)

    def start(self, timeout: float = 10.0) -> MosquittoBroker:
        binary = find_mosquitto()
        if binary is None:
            raise RuntimeError("mosquitto is not installed (make install runs apt-get install mosquitto)")
        if not self.port:
            self.port = free_tcp_port(self.host)
        self._workdir = tempfile.TemporaryDirectory(prefix="pysecc-mqtt-")
        work = Path(self._workdir.name)
        passwd = acl = None
        if self.username:
            accounts = [(self.username, self.password or "")]
            if self.bridge_user:
                accounts.append(self.bridge_user)
            passwd = work / "passwd"
            passwd.write_text("".join(f"{user}:{pw}\n" for user, pw in accounts))
            passwd.chmod(0o600)
            subprocess.run(["mosquitto_passwd", "-U", str(passwd)], check=True,
                           capture_output=True)
            if self.bridge_user:
                acl = work / "acl"
                acl.write_text(mosquitto_acl(self.username, self.bridge_user[0]))
        conf = work / "mosquitto.conf"
        conf.write_text(mosquitto_conf(self.port, passwd, self.persistence_dir, host=self.host,
                                       acl_file=acl, tcp_nodelay=self.tcp_nodelay))
        self.process = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                raise RuntimeError(f"mosquitto exited with {self.process.returncode}: {err.strip()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on {self.host}:{self.port} within {timeout}s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process and self.process.stderr:
            self.process.stderr.close()
        self.process = None
        if self._workdir:
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> MosquittoBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

