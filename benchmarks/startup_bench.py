"""Cold start to READY=1 and memory of both processes, as systemd starts them.

* the SECC daemon: ``secc run`` on a simulated board (start_at_sdp, a veth pair in network
  namespaces, the bus on), from exec to its READY=1 datagram on a NOTIFY_SOCKET;
* the OCPP bridge: ``python -m ocpp_bridge`` against mosquitto and the test CSMS, from exec
  to READY=1 (connected to the broker);
* RSS (VmRSS, /proc) of each at READY and after a few idle seconds; VmHWM (peak).

``--ccu`` pins everything the benchmark starts to one core (``taskset -c 0``): the nearest this
x86 box gets to a single-core CCU; it does not emulate a slower CPU.

Run: ``.venv/bin/python benchmarks/startup_bench.py [--ccu] [--runs N]`` (``make bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ocpp_bridge.config import (  # noqa: E402
    BridgeConfig,
    BusConfig,
    CsmsConfig,
    StationConfig,
    StorageConfig,
    to_toml,
)
from sim.csms import TestCsms  # noqa: E402
from sim.testing.broker import MosquittoBroker  # noqa: E402
from sim.testing.netns import VethLink, netns_supported  # noqa: E402

BOARD = """
[board]
name = "bench"
kind = "sim"
evse_id = "DE*PNX*E00001*1"
[plc]
interface = "{iface}"
start_at_sdp = true
[v2g]
tls = "none"
protocols = ["iso2", "din"]
[bus]
enabled = true
mqtt_host = "127.0.0.1"
mqtt_port = {port}
username = "secc"
password = "bench-secc"
state_dir = "{state}"
"""


def rss_kib(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


async def measure(argv: list[str], env: dict[str, str], work: Path,
                  idle: float = 3.0) -> tuple[float, dict[str, int], dict[str, int]]:
    """exec -> READY=1 (seconds), RSS at READY, RSS after ``idle`` seconds."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(work / f"notify-{time.monotonic_ns()}"))
    sock.setblocking(False)
    env = {**env, "NOTIFY_SOCKET": sock.getsockname()}
    started = time.perf_counter()
    # Popen from this thread: the child lives in this thread's network namespace
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            data = (await asyncio.wait_for(loop.sock_recv(sock, 4096), 60)).decode()
            if "READY=1" in data.splitlines():
                ready = time.perf_counter() - started
                break
        at_ready = rss_kib(proc.pid)
        await asyncio.sleep(idle)
        return ready, at_ready, rss_kib(proc.pid)
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 20)
        sock.close()


async def bench(link: VethLink, runs: int, pin: list[str]) -> dict[str, list]:
    """Inside the SECC's network namespace, as on a CCU: broker, test CSMS, both processes."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    results: dict[str, list] = {"secc": [], "bridge": []}
    with tempfile.TemporaryDirectory(prefix="pysecc-startup-") as tmp, \
            MosquittoBroker(username="secc", password="bench-secc",
                            bridge_user=("ocpp-bridge", "bench-bridge")) as broker:
        work = Path(tmp)
        csms = await TestCsms(passwords={"BENCH": "bench-station"}).start()
        try:
            board = work / "board.toml"
            board.write_text(BOARD.format(iface=link.ifnames["secc"], port=broker.port,
                                          state=work))
            bridge_toml = work / "bridge.toml"
            bridge_toml.write_text(to_toml(BridgeConfig(
                csms=CsmsConfig(url=csms.url, station_id="BENCH", password="bench-station"),
                bus=BusConfig(broker.host, broker.port, "ocpp-bridge", "bench-bridge"),
                storage=StorageConfig(work / "q.db", work / "certs"),
                station=StationConfig(evse_ids=(1,)))))
            for _ in range(runs):
                results["bridge"].append(await measure(
                    pin + [sys.executable, "-m", "ocpp_bridge", "--config", str(bridge_toml),
                           "--log-level", "WARNING"], env, work))
                results["secc"].append(await measure(
                    pin + [sys.executable, "-m", "secc", "run", "--board", str(board)],
                    env, work))
        finally:
            await csms.stop()
    return results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ccu", action="store_true", help="pin to one core (taskset -c 0)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    ok, why = netns_supported()
    if not ok:
        print(f"skipped: {why}")
        return 0
    pin = ["taskset", "-c", "0"] if args.ccu and shutil.which("taskset") else []
    with VethLink() as link:
        results = link.run_coroutine("secc", lambda: bench(link, args.runs, pin)).result(600)
    label = "CCU profile (1 core)" if pin else "this box"
    for name, runs in results.items():
        ready = [r[0] * 1000 for r in runs]
        rss = [r[1]["VmRSS"] / 1024 for r in runs]
        idle = [r[2]["VmRSS"] / 1024 for r in runs]
        hwm = [r[2]["VmHWM"] / 1024 for r in runs]
        print(f"{name:>6} [{label}]: cold start to READY p50 {statistics.median(ready):.0f} ms "
              f"(min {min(ready):.0f}, max {max(ready):.0f}); RSS at READY "
              f"{statistics.median(rss):.1f} MiB, after 3 s idle {statistics.median(idle):.1f} "
              f"MiB, peak {max(hwm):.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
