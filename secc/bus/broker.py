"""The broker configuration the bus contract expects (the one mosquitto launcher, for the demo,
tests and benchmarks, is ``sim.testing.broker.MosquittoBroker``; it uses this configuration).

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
                   host: str = "127.0.0.1", acl_file: Path | None = None,
                   tcp_nodelay: bool = True) -> str:
    """mosquitto.conf for the bus (``tcp_nodelay=False`` only to measure what it costs)."""
    lines = [f"listener {port} {host}", "log_dest stderr", "log_type error", "log_type warning"]
    if tcp_nodelay:
        lines.append("set_tcp_nodelay true")
    if os.geteuid() == 0:
        lines.append("user root")  # keep access to the private 0700 work directory
    if password_file:
        lines += ["allow_anonymous false", f"password_file {password_file}"]
        if acl_file:
            lines.append(f"acl_file {acl_file}")
    else:
        lines.append("allow_anonymous true")
    if persistence_dir:
        lines += ["persistence true", f"persistence_location {persistence_dir}/"]
    return "\n".join(lines) + "\n"
