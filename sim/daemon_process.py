"""The SECC daemon in its own process, with a simulated board whose car side is played from
outside (benchmarks/ccu_load.py, the READY test).

    python -m sim.daemon_process BOARD.toml CONTROL.sock SPAWNED_AT

builds the daemon exactly as ``secc run`` does (``bus_from_config``, ``board_from_config``,
``server_tls_context``) and binds a unix datagram socket at CONTROL.sock (unix sockets cross
network namespaces). Datagrams are JSON objects:

* ``{"pilot": "B", "battery_voltage": 350.0, "contactors": true}`` (any subset): the car's side
  of the simulated board (``sim.evcc.runner.VehicleSignals``);
* ``{"report": true}``: print the summaries of the sessions that ended since the last report;
* ``{"modules": true}``: print ``{"modules": [...]}``, the names in ``sys.modules`` (footprint).

Stdout carries one JSON object per line: ``{"ready": seconds since SPAWNED_AT, "ready_s":
daemon start -> READY, "warm_up": {...}}`` once at READY, then per report ``{"session":
{...}}`` lines and ``{"reported": n}``. SIGTERM stops the daemon (board to safe state).
:class:`DaemonProcess` is the other end.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def serve(board_path: str, control_path: str, spawned_at: float) -> int:
    from secc.common.logs import setup_logging
    from secc.config import load_board_config

    config = load_board_config(board_path)
    setup_logging(config.logging.format, config.logging.level)

    def say(**record: Any) -> None:
        print(json.dumps(record), flush=True)

    async def main() -> None:
        from secc.boards import board_from_config
        from secc.daemon import SeccDaemon, bus_from_config, server_tls_context

        bus, authorizer = bus_from_config(config)
        board = board_from_config(config)
        daemon = SeccDaemon(config, board, config.plc.interface, authorizer=authorizer,
                            bus=bus, tls_context=server_tls_context(config))
        control = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        control.bind(control_path)
        control.setblocking(False)
        loop = asyncio.get_running_loop()
        reported = 0

        def on_control() -> None:
            nonlocal reported
            while True:
                try:
                    signals = json.loads(control.recv(4096))
                except BlockingIOError:
                    return
                if "battery_voltage" in signals:
                    board.ev_set_battery_voltage(signals["battery_voltage"])
                if "contactors" in signals:
                    board.ev_close_contactors(signals["contactors"])
                if "pilot" in signals:
                    board.ev_set_pilot(signals["pilot"])
                if signals.get("modules"):
                    say(modules=sorted(sys.modules))
                if signals.get("report"):
                    for summary in daemon.summaries[reported:]:
                        say(session=dataclasses.asdict(summary))
                    reported = len(daemon.summaries)
                    say(reported=reported)

        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_reader(control.fileno(), on_control)
        daemon.ready_callbacks.append(lambda d: say(
            ready=time.time() - spawned_at, ready_s=d.ready_seconds,
            warm_up=dataclasses.asdict(d.warm_up_report)))
        try:
            await daemon.start()
            await stop.wait()
        finally:
            loop.remove_reader(control.fileno())
            await daemon.stop()

    asyncio.run(main())
    return 0


class DaemonProcess:
    """Start ``python -m sim.daemon_process`` in a network namespace (optionally in a cpu
    cgroup, joined *before* ``ip netns exec``, which remounts /sys without the cgroup tree)
    and play the car's side of its board."""

    def __init__(self, netns: str, board_path: Path, control_path: Path, *,
                 cgroup: Path | None = None, log_path: Path | None = None) -> None:
        self.control_path = str(control_path)
        join = f"echo $$ > {cgroup}/cgroup.procs && " if cgroup is not None else ""
        self.spawned_at = time.time()
        self._log = open(log_path, "w") if log_path is not None else None  # noqa: SIM115
        # sh and ip both exec: the pid is the daemon's own (RSS, SIGTERM)
        self.proc = subprocess.Popen(
            ["sh", "-c", f"{join}exec ip netns exec {netns} {sys.executable} -m "
                         f"sim.daemon_process {board_path} {control_path} {self.spawned_at}"],
            stdout=subprocess.PIPE, stderr=self._log, text=True, cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)})
        self._control = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.ready: dict[str, Any] = {}

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self) -> dict[str, Any]:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the daemon exited before READY (status {self.proc.wait()})")
        self.ready = json.loads(line)
        return self.ready

    def send(self, **signals: Any) -> None:
        self._control.sendto(json.dumps(signals).encode(), self.control_path)

    def on_signals(self, signals: Any) -> None:
        """A ``SignalsHook`` for ``sim.evcc.runner.EvSessionConfig``."""
        self.send(battery_voltage=signals.battery_voltage,
                  contactors=signals.contactors_closed, pilot=signals.pilot)

    def summaries(self, expected: int = 0, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The summaries of the sessions that ended since the last call; waits (up to
        ``timeout``) until there are at least ``expected`` (a session's summary follows its
        car's last message by a moment)."""
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            self.send(report=True)
            for line in self.proc.stdout:
                record = json.loads(line)
                if "session" in record:
                    found.append(record["session"])
                if "reported" in record:
                    break
            if len(found) >= expected or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def modules(self) -> list[str]:
        """The module names loaded in the daemon (call before or after ``summaries``)."""
        self.send(modules=True)
        for line in self.proc.stdout:
            record = json.loads(line)
            if "modules" in record:
                return record["modules"]
        raise RuntimeError(f"the daemon exited (status {self.proc.wait()})")

    def rss_kb(self) -> int | None:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            return None
        return None

    def memory_kb(self) -> dict[str, int]:
        """Rss, Pss and the private part (Private_Clean + Private_Dirty) from smaps_rollup:
        RSS counts shared-library pages that other processes (the bridge) share."""
        found: dict[str, int] = {}
        try:
            for line in Path(f"/proc/{self.pid}/smaps_rollup").read_text().splitlines():
                key, _, rest = line.partition(":")
                if key in ("Rss", "Pss", "Private_Clean", "Private_Dirty"):
                    found[key] = int(rest.split()[0])
        except OSError:
            return {}
        found["Private"] = found.get("Private_Clean", 0) + found.get("Private_Dirty", 0)
        return found

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._control.close()
        if self._log is not None:
            self._log.close()
        return self.proc.returncode


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1], sys.argv[2], float(sys.argv[3])))
