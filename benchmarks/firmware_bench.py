"""Firmware update timings (issue 17): SignedUpdateFirmware through the real bridge process.

mosquitto (with the product's ACLs), the test CSMS and its file server, the OCPP bridge as its
own process (``python -m ocpp_bridge``) and a SECC bus client. The package (``--mb`` MB of
payload) is downloaded, its signature checked against the ManufacturerRootCertificate and it
is installed side by side; at the switch the bridge runs its restart command, which here ends
the bridge process (as ``systemctl restart`` would), and this script starts it again at once
(systemd with RestartSec=0). Printed:

* download + signature + install: UpdateFirmware -> InstallRebooting;
* switch-over downtime: InstallRebooting -> the CSMS hears the station again
  (BootNotification with the new firmwareVersion) -> Installed (READY: accepted by the CSMS and
  the SECC online). The SECC daemon's own restart is not part of this figure.

    python benchmarks/firmware_bench.py [--mb 20] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ocpp_bridge.config import (  # noqa: E402
    BridgeConfig,
    BusConfig,
    CsmsConfig,
    StationConfig,
    StorageConfig,
)
from ocpp_bridge.firmware import build_package, sign_package  # noqa: E402
from secc.bus.client import SeccBusClient, SeccBusConfig  # noqa: E402
from secc.common.mqtt import BrokerConfig  # noqa: E402
from sim.charger import (  # noqa: E402
    BRIDGE_PASSWORD,
    BRIDGE_USER,
    BUS_PASSWORD,
    BUS_USER,
    STATION_ID,
    STATION_PASSWORD,
    start_bridge_process,
)
from sim.csms import TestCsms  # noqa: E402
from sim.file_server import FileServer  # noqa: E402
from sim.testing.broker import MosquittoBroker  # noqa: E402
from sim.testing.pki import TestPKI  # noqa: E402


def statuses(csms: TestCsms, request_id: int) -> list[tuple[float, str]]:
    return [(r.at, r.payload["status"]) for r in csms.received
            if r.action == "FirmwareStatusNotification"
            and r.payload.get("requestId") == request_id]


async def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise TimeoutError(what)


async def run(args: argparse.Namespace) -> int:
    pki = TestPKI()
    root = pki.make_root("Manufacturer Root CA", "pysecc OEM", None)
    signer = pki.issue_leaf(root, "pysecc firmware signing", "pysecc OEM")
    installs, downtimes, back_online = [], [], []
    with tempfile.TemporaryDirectory() as tmp, MosquittoBroker(
            username=BUS_USER, password=BUS_PASSWORD,
            bridge_user=(BRIDGE_USER, BRIDGE_PASSWORD)) as broker:
        work = Path(tmp)
        csms = await TestCsms(passwords={STATION_ID: STATION_PASSWORD}).start()
        files = FileServer().start()
        config = BridgeConfig(
            csms=CsmsConfig(url=csms.url, station_id=STATION_ID, password=STATION_PASSWORD,
                            retry_initial=0.05, retry_max=0.5),
            bus=BusConfig(broker.host, broker.port, BRIDGE_USER, BRIDGE_PASSWORD, "ocpp-bridge"),
            storage=StorageConfig(work / "queue.db", work / "certs"),
            station=StationConfig(evse_ids=(1,), firmware_version="0.1.0",
                                  firmware_create_venv=False,
                                  firmware_restart_command="kill -TERM $PPID"))

        def start_bridge() -> subprocess.Popen:
            return start_bridge_process(config, work / "bridge.toml")

        secc = SeccBusClient(SeccBusConfig(
            broker=BrokerConfig(broker.host, broker.port, BUS_USER, BUS_PASSWORD),
            evse_id=1, outbox_path=work / "outbox.db"))
        await secc.start()
        bridge = start_bridge()
        try:
            await csms.wait_for("BootNotification", timeout=20)
            await csms.call(STATION_ID, "InstallCertificate", {
                "certificateType": "ManufacturerRootCertificate",
                "certificate": root.cert_pem.decode()})
            for run_no in range(args.runs):
                version = f"0.{run_no + 2}.0"
                wheel = work / f"pysecc-{version}-py3-none-any.whl"
                wheel.write_bytes(os.urandom(args.mb * 1024 * 1024))
                package = build_package(version, [wheel])
                url = files.serve(f"/fw/{version}.tar", package)
                request_id = 100 + run_no
                boots_before = len(csms.messages("BootNotification"))
                started = time.time()
                await csms.call(STATION_ID, "UpdateFirmware", {
                    "requestId": request_id, "firmware": {
                        "location": url, "retrieveDateTime": "2020-01-01T00:00:00Z",
                        "signingCertificate": signer.cert_pem.decode(),
                        "signature": sign_package(package, signer.key_pem)}})
                await wait_for(lambda: any(s == "InstallRebooting"
                                           for _, s in statuses(csms, request_id)), 120,
                               "InstallRebooting")
                switched = next(t for t, s in statuses(csms, request_id)
                                if s == "InstallRebooting")
                await asyncio.to_thread(bridge.wait, 30)          # the restart command
                bridge = start_bridge()                            # systemd, RestartSec=0
                await wait_for(lambda: any(s == "Installed" for _, s in statuses(
                    csms, request_id)), 60, "Installed")
                installed = next(t for t, s in statuses(csms, request_id) if s == "Installed")
                boot = next(r for r in csms.received[::-1] if r.action == "BootNotification")
                assert len(csms.messages("BootNotification")) > boots_before
                assert boot.payload["chargingStation"]["firmwareVersion"] == version, boot
                installs.append(switched - started)
                downtimes.append(installed - switched)
                back_online.append(boot.at - switched)
        finally:
            bridge.terminate()
            await asyncio.to_thread(bridge.wait, 10)
            await secc.stop()
            files.stop()
            await csms.stop()
    ms = lambda xs: f"p50 {1000 * statistics.median(xs):.0f} ms, max {1000 * max(xs):.0f} ms"  # noqa: E731
    print(f"SignedUpdateFirmware, {args.runs} updates of a {args.mb} MB package "
          "(bridge process restarted at the switch)")
    print(f"  download + signature + install (-> InstallRebooting): {ms(installs)}")
    print(f"  switch-over: InstallRebooting -> BootNotification of the new version: "
          f"{ms(back_online)}")
    print(f"  switch-over downtime: InstallRebooting -> Installed (READY): {ms(downtimes)}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=20, help="payload size of the package")
    parser.add_argument("--runs", type=int, default=3)
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
