"""Start a private mosquitto broker on a free localhost port, and stop it.

The broker binds 127.0.0.1 only (the bus is never reachable from outside the box), keeps no
persistence on disk unless asked, and is killed when the context exits.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from secc.bus.broker import find_mosquitto, free_tcp_port


@dataclass
class MosquittoBroker:
    """A mosquitto process. Use as a context manager or call start()/stop()."""

    port: int = 0
    host: str = "127.0.0.1"
    username: str | None = None
    password: str | None = None
    persistence_dir: Path | None = None
    process: subprocess.Popen | None = field(default=None, init=False)
    _workdir: tempfile.TemporaryDirectory | None = field(default=None, init=False)

    def start(self, timeout: float = 10.0) -> "MosquittoBroker":
        binary = find_mosquitto()
        if binary is None:
            raise RuntimeError("mosquitto is not installed (make install runs apt-get install mosquitto)")
        if not self.port:
            self.port = free_tcp_port(self.host)
        self._workdir = tempfile.TemporaryDirectory(prefix="pysecc-mqtt-")
        work = Path(self._workdir.name)
        lines = [f"listener {self.port} {self.host}", "log_dest stderr", "log_type error",
                 "log_type warning",
                 "set_tcp_nodelay true"]  # else Nagle adds ~40 ms to every bus round trip
        if os.geteuid() == 0:
            lines.append("user root")  # keep access to our private 0700 work directory
        if self.username:
            passwd = work / "passwd"
            passwd.write_text(f"{self.username}:{self.password or ''}\n")
            passwd.chmod(0o600)
            subprocess.run(["mosquitto_passwd", "-U", str(passwd)], check=True,
                           capture_output=True)
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        if self.persistence_dir:
            lines += ["persistence true", f"persistence_location {self.persistence_dir}/"]
        conf = work / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
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

    def __enter__(self) -> "MosquittoBroker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
