"""The broker configuration the bus contract expects, and a runner for the demo and benchmark.

Production mosquitto settings that matter for the bus:

* ``listener PORT 127.0.0.1`` - the bus never leaves the box;
* ``allow_anonymous false`` + ``password_file`` - SECC and bridge authenticate;
* ``set_tcp_nodelay true`` - mosquitto's default (false) leaves Nagle's algorithm on, and with
  delayed ACKs a request/reply waits ~40 ms: measured 44 ms vs 2.2 ms p50 per Authorize round
  trip on localhost (benchmarks/bus_bench.py; our clients set TCP_NODELAY themselves);
* ``persistence true`` - QoS 1 messages queued for a disconnected persistent session and
  retained state survive a broker restart (our outboxes make loss impossible anyway).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

MOSQUITTO_CANDIDATES = ("mosquitto", "/usr/sbin/mosquitto")


def find_mosquitto() -> str | None:
    for candidate in MOSQUITTO_CANDIDATES:
        path = shutil.which(candidate) or (candidate if Path(candidate).is_file() else None)
        if path:
            return path
    return None


def free_tcp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]




def mosquitto_conf(port: int, password_file: Path | None, persistence_dir: Path | None = None,
                   host: str = "127.0.0.1", acl_file: Path | None = None) -> str:
    lines = [f"listener {port} {host}", "set_tcp_nodelay true", "log_dest stderr",
             "log_type error", "log_type warning"]
    if os.geteuid() == 0:
        lines.append("user root")
    if password_file:
        lines += ["allow_anonymous false", f"password_file {password_file}"]
        if acl_file:
            lines.append(f"acl_file {acl_file}")
    else:
        lines.append("allow_anonymous true")
    if persistence_dir:
        lines += ["persistence true", f"persistence_location {persistence_dir}/"]
    return "\n".join(lines) + "\n"


@dataclass
class LocalBroker:
    """mosquitto with the recommended bus settings (for the demo and the benchmark)."""

    username: str
    password: str
    port: int = 0
    # with ``bridge_user`` (name, password) the broker has two accounts and the contract's ACL:
    # ``username`` may then only act as the SECC, ``bridge_user`` only as the bridge
    bridge_user: tuple[str, str] | None = None
    host: str = "127.0.0.1"
    process: subprocess.Popen | None = field(default=None, init=False)
    _workdir: tempfile.TemporaryDirectory | None = field(default=None, init=False)

    def __enter__(self) -> LocalBroker:
        binary = find_mosquitto()
        if binary is None:
            raise RuntimeError("mosquitto is not installed (make install installs it)")
        self.port = self.port or free_tcp_port(self.host)
        self._workdir = tempfile.TemporaryDirectory(prefix="pysecc-bus-")
        work = Path(self._workdir.name)
        passwd = work / "passwd"
        accounts = [(self.username, self.password)] + ([self.bridge_user]
                                                          if self.bridge_user else [])
        passwd.write_text("".join(f"{user}:{pw}\n" for user, pw in accounts))
        passwd.chmod(0o600)
        subprocess.run(["mosquitto_passwd", "-U", str(passwd)], check=True, capture_output=True)
        acl = None
        if self.bridge_user:
            from secc.contract import mosquitto_acl
            acl = work / "acl"
            acl.write_text(mosquitto_acl(self.username, self.bridge_user[0]))
        conf = work / "mosquitto.conf"
        conf.write_text(mosquitto_conf(self.port, passwd, host=self.host, acl_file=acl))
        self.process = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        self.__exit__()
        raise RuntimeError("mosquitto did not start")

    def __exit__(self, *exc: object) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(5)
        if self._workdir:
            self._workdir.cleanup()
