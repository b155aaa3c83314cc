"""OCPP 2.0.1 SignedUpdateFirmware (L01) and the pysecc firmware package (docs/firmware.md).

A package is a tar file: ``manifest.json`` (``format``, ``version``, ``files``: path + SHA-256
of every other member) and the payload (the wheels of that pysecc version). The CSMS sends
the package's URL with ``signingCertificate`` (PEM) and ``signature`` (base64 of the
certificate key's signature over the SHA-256 of the whole package file: ECDSA or RSA PKCS#1
v1.5). ``python -m ocpp_bridge.firmware build`` makes both.

On disk, under ``<storage>/firmware``::

    versions/<version>/         every installed version, side by side (+ ``venv/``)
    current -> versions/<v>     what the units run; switched atomically (symlink rename)
    previous -> versions/<v0>   what a rollback returns to
    pending.json                a switch not yet confirmed: version, previous, deadline

Steps (each sent as FirmwareStatusNotification through the persistent queue):
DownloadScheduled (retrieveDateTime ahead) -> Downloading -> Downloaded | DownloadFailed
(``retries`` more attempts, ``retryInterval`` apart; a short or broken download fails) ->
SignatureVerified | InvalidSignature -> InstallScheduled (installDateTime ahead, or a
transaction still running: the switch waits for the next idle moment) -> Installing ->
InstallVerificationFailed (manifest, hashes, version) | InstallRebooting (``current`` switched,
``pending.json`` written, restart command run) -> after the restart: Installed once the new
version is READY (the bridge accepted by the CSMS and every SECC online) before the deadline,
otherwise InstallationFailed and ``current`` goes back to the previous version (restart again).
Nothing replaces the running version before the signature and every hash check out.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ocpp.charge_point import snake_to_camel_case
from ocpp.routing import on
from ocpp.v201 import call_result
from ocpp.v201.enums import Action

from secc.common.lazy import lazy_module
from secc.common.logs import layer_logger
from secc.common.pki.chain import CertificateRejected, verify_chain

crypto_exceptions = lazy_module("cryptography.exceptions")
ec = lazy_module("cryptography.hazmat.primitives.asymmetric.ec")
hashes = lazy_module("cryptography.hazmat.primitives.hashes")
padding = lazy_module("cryptography.hazmat.primitives.asymmetric.padding")
rsa = lazy_module("cryptography.hazmat.primitives.asymmetric.rsa")
serialization = lazy_module("cryptography.hazmat.primitives.serialization")
x509 = lazy_module("cryptography.x509")

if TYPE_CHECKING:
    from ocpp_bridge.app import Bridge

log = layer_logger("ocpp")

FORMAT = "pysecc-firmware/1"
DOWNLOAD_TIMEOUT = 30.0          # s per download attempt
MAX_PACKAGE_BYTES = 128 * 1024 * 1024   # checked in memory: a CCU has little to spare
READY_TIMEOUT = 300.0            # s the new version gets to become READY after the switch
IDLE_POLL = 5.0                  # s between checks for an idle moment
FLUSH_TIMEOUT = 10.0             # s the queue gets to deliver InstallRebooting before restart


class FirmwareRejected(Exception):
    """A check failed; ``status`` is the FirmwareStatus (or UpdateFirmware status) to report."""

    def __init__(self, status: str, detail: str) -> None:
        self.status = status
        super().__init__(detail)


# --- pure checks ----------------------------------------------------------------------------------
def check_signing_certificate(pem: str, roots: list[x509.Certificate]) -> x509.Certificate:
    """The signing certificate (with any sub-CAs after it) must chain to an installed
    ManufacturerRootCertificate. Raises FirmwareRejected("InvalidCertificate")."""
    try:
        chain = x509.load_pem_x509_certificates(pem.encode())
    except ValueError as exc:
        raise FirmwareRejected("InvalidCertificate", f"signingCertificate unreadable: {exc}") \
            from None
    if not roots:
        raise FirmwareRejected("InvalidCertificate", "no ManufacturerRootCertificate installed "
                               "(InstallCertificate with certificateType "
                               "ManufacturerRootCertificate)")
    try:
        verify_chain(chain[0], chain[1:], roots)
    except CertificateRejected as exc:
        raise FirmwareRejected("InvalidCertificate", f"signing certificate: {exc}") from None
    return chain[0]


def verify_signature(package: bytes, certificate: x509.Certificate, signature_b64: str) -> None:
    """Raise FirmwareRejected("InvalidSignature") unless ``signature`` signs the package."""
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except ValueError:
        raise FirmwareRejected("InvalidSignature", "signature is not base64") from None
    key = certificate.public_key()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, package, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, package, padding.PKCS1v15(), hashes.SHA256())
        else:
            raise FirmwareRejected("InvalidSignature", f"unsupported key {type(key).__name__}")
    except crypto_exceptions.InvalidSignature:
        raise FirmwareRejected("InvalidSignature", "signature does not match the package "
                               "(tampered, truncated or signed with another key)") from None


def read_manifest(package: bytes) -> dict[str, Any]:
    """Open the tar, check manifest and every hash; returns the manifest.
    Raises FirmwareRejected("InstallVerificationFailed")."""
    def fail(why: str) -> FirmwareRejected:
        return FirmwareRejected("InstallVerificationFailed", why)

    try:
        with tarfile.open(fileobj=io.BytesIO(package)) as tar:
            members = {m.name: m for m in tar.getmembers()}
            if "manifest.json" not in members:
                raise fail("no manifest.json in the package")
            manifest = json.loads(tar.extractfile(members["manifest.json"]).read())
            if manifest.get("format") != FORMAT:
                raise fail(f"format {manifest.get('format')!r}, expected {FORMAT}")
            version = str(manifest.get("version", ""))
            if not version or "/" in version or version.startswith("."):
                raise fail(f"bad version {version!r}")
            listed = {f["path"]: f["sha256"] for f in manifest.get("files", [])}
            for name, member in members.items():
                if name == "manifest.json" or member.isdir():
                    continue
                if not member.isfile() or name.startswith("/") or ".." in name.split("/"):
                    raise fail(f"unsafe member {name}")
                if name not in listed:
                    raise fail(f"{name} is not in the manifest")
                digest = hashlib.sha256(tar.extractfile(member).read()).hexdigest()
                if digest != listed.pop(name):
                    raise fail(f"{name}: SHA-256 does not match the manifest")
            if listed:
                raise fail(f"missing from the package: {', '.join(sorted(listed))}")
            return manifest
    except (tarfile.TarError, ValueError, KeyError, TypeError, OSError) as exc:
        raise fail(f"package unreadable: {exc}") from None


# --- the side-by-side store -------------------------------------------------------------------------
@dataclass
class FirmwareStore:
    root: Path

    def __post_init__(self) -> None:
        (self.root / "versions").mkdir(parents=True, exist_ok=True)

    @property
    def pending_file(self) -> Path:
        return self.root / "pending.json"

    def _link(self, name: str) -> str | None:
        path = self.root / name
        return Path(os.readlink(path)).name if path.is_symlink() else None

    def current_version(self) -> str | None:
        return self._link("current")

    def previous_version(self) -> str | None:
        return self._link("previous")

    def _point(self, name: str, version: str) -> None:
        tmp = self.root / f".{name}.{uuid.uuid4().hex[:6]}"
        os.symlink(Path("versions") / version, tmp)
        os.replace(tmp, self.root / name)   # atomic: never a moment without the link

    def install(self, package: bytes, manifest: dict[str, Any], create_venv: bool) -> Path:
        """Extract next to the running version (never over it)."""
        version = manifest["version"]
        target = self.root / "versions" / version
        if version == self.current_version():
            raise FirmwareRejected("InstallVerificationFailed",
                                   f"version {version} is already running")
        staging = self.root / "versions" / f".{version}.{uuid.uuid4().hex[:6]}"
        with tarfile.open(fileobj=io.BytesIO(package)) as tar:
            # members were checked by read_manifest: regular files, relative, no ".."
            for member in tar.getmembers():
                if not member.isfile():
                    continue
                path = staging / member.name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(tar.extractfile(member).read())
        if create_venv:
            wheels = sorted(str(p) for p in staging.rglob("*.whl"))
            subprocess.run([sys.executable, "-m", "venv", str(staging / "venv")], check=True)
            subprocess.run([str(staging / "venv" / "bin" / "pip"), "install", "--no-index",
                            *wheels], check=True, capture_output=True)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
        return target

    def switch(self, version: str, request_id: int, deadline: float) -> None:
        current = self.current_version()
        self.pending_file.write_text(json.dumps({"request_id": request_id, "version": version,
                                                 "previous": current, "deadline": deadline}))
        if current:
            self._point("previous", current)
        self._point("current", version)

    def pending(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.pending_file.read_text())
        except (OSError, ValueError):
            return None

    def confirm(self) -> None:
        self.pending_file.unlink(missing_ok=True)

    def rollback(self) -> str | None:
        pending = self.pending() or {}
        previous = pending.get("previous")
        if previous:
            self._point("current", previous)
        else:
            (self.root / "current").unlink(missing_ok=True)
        self.confirm()
        return previous


# --- the bridge's updater ---------------------------------------------------------------------------
def download(url: str, timeout: float = DOWNLOAD_TIMEOUT) -> bytes:
    """One GET; a body shorter than Content-Length (a cut connection) is an error."""
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - http(s) only
        expected = response.headers.get("Content-Length")
        data = response.read(MAX_PACKAGE_BYTES + 1)
    if len(data) > MAX_PACKAGE_BYTES:
        raise OSError(f"package larger than {MAX_PACKAGE_BYTES} bytes")
    if expected is not None and len(data) != int(expected):
        raise OSError(f"download truncated: {len(data)} of {expected} bytes")
    return data


def _epoch(text: str | None) -> float | None:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() if text else None


class FirmwareUpdater:
    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        self.store = FirmwareStore(Path(bridge.config.storage.queue).parent / "firmware")
        station = bridge.config.station
        self.restart_command = station.firmware_restart_command
        self.create_venv = station.firmware_create_venv
        self.ready_timeout = READY_TIMEOUT
        self.idle_poll = IDLE_POLL
        self.task: asyncio.Task | None = None
        self.secc_online: dict[int, bool] = {}
        self.statuses: list[tuple[int | None, str]] = []

    def running_version(self) -> str | None:
        return self.store.current_version()

    def notify(self, status: str, request_id: int | None) -> None:
        payload: dict[str, Any] = {"status": status}
        if request_id is not None:
            payload["requestId"] = request_id
        self.statuses.append((request_id, status))
        log.info("firmware status", extra={"status": status, "request": request_id})
        self.bridge.queue.enqueue_plain(uuid.uuid4().hex, "FirmwareStatusNotification", payload,
                                        now=time.time())
        self.bridge.wake_queue()

    def start(self, request_id: int, firmware: dict[str, Any], retries: int,
              retry_interval: int) -> str:
        """UpdateFirmware: check the certificate now, run the rest in the background.
        Returns the UpdateFirmware status."""
        roots = self.bridge.certificates.roots("ManufacturerRootCertificate")
        try:
            certificate = check_signing_certificate(firmware.get("signingCertificate", ""), roots)
        except FirmwareRejected as exc:
            log.warning("UpdateFirmware refused", extra={"reason": str(exc)})
            self.bridge.enqueue_security_event("InvalidFirmwareSigningCertificate", str(exc))
            raise
        status = "Accepted"
        if self.task is not None and not self.task.done():
            self.task.cancel()
            status = "AcceptedCanceled"
        self.task = asyncio.ensure_future(self._update(request_id, firmware, certificate,
                                                       retries, retry_interval))
        return status

    async def _wait_until(self, when: float | None, status: str, request_id: int) -> None:
        if when is not None and when > time.time():
            self.notify(status, request_id)
            await asyncio.sleep(when - time.time())

    async def _update(self, request_id: int, firmware: dict[str, Any],
                      certificate: x509.Certificate, retries: int, retry_interval: int) -> None:
        try:
            await self._wait_until(_epoch(firmware.get("retrieveDateTime")),
                                   "DownloadScheduled", request_id)
            package = await self._download(firmware["location"], request_id, retries,
                                           retry_interval)
            if package is None:
                return
            verify_signature(package, certificate, firmware.get("signature", ""))
            self.notify("SignatureVerified", request_id)
            await self._wait_until(_epoch(firmware.get("installDateTime")),
                                   "InstallScheduled", request_id)
            self.notify("Installing", request_id)
            manifest = read_manifest(package)
            await asyncio.to_thread(self.store.install, package, manifest, self.create_venv)
            await self._wait_for_idle(request_id)
            self.notify("InstallRebooting", request_id)
            self.store.switch(manifest["version"], request_id,
                              time.time() + self.ready_timeout)
            log.warning("firmware switched, restarting", extra={
                "version": manifest["version"], "previous": self.store.previous_version()})
            await self._drain_queue()
            await self.restart()
        except FirmwareRejected as exc:
            log.error("firmware update stopped", extra={"status": exc.status,
                                                        "reason": str(exc)})
            if exc.status == "InvalidSignature":
                self.bridge.enqueue_security_event("InvalidFirmwareSignature", str(exc))
            self.notify(exc.status, request_id)
        except (OSError, subprocess.CalledProcessError) as exc:
            log.error("firmware installation failed", extra={"error": str(exc)})
            self.notify("InstallationFailed", request_id)

    async def _download(self, url: str, request_id: int, retries: int,
                        retry_interval: int) -> bytes | None:
        self.notify("Downloading", request_id)
        for attempt in range(retries + 1):
            try:
                data = await asyncio.wait_for(asyncio.to_thread(download, url),
                                              DOWNLOAD_TIMEOUT + 5)
                self.notify("Downloaded", request_id)
                return data
            except (OSError, urllib.error.URLError, asyncio.TimeoutError, TimeoutError,
                    ValueError) as exc:
                log.warning("firmware download failed", extra={
                    "url": url, "attempt": attempt + 1, "of": retries + 1, "error": str(exc)})
            if attempt < retries:
                await asyncio.sleep(retry_interval)
        self.notify("DownloadFailed", request_id)
        return None

    async def _wait_for_idle(self, request_id: int) -> None:
        told = False
        while self.bridge.queue.running_transaction_starts():
            if not told:
                self.notify("InstallScheduled", request_id)
                told = True
            await asyncio.sleep(self.idle_poll)

    async def _drain_queue(self, timeout: float = FLUSH_TIMEOUT) -> None:
        """Let the CSMS hear InstallRebooting (and what is queued before it) before the
        restart; the queue is persistent, so after ``timeout`` the rest goes out later."""
        deadline = time.monotonic() + timeout
        while self.bridge.queue.pending() and time.monotonic() < deadline:
            self.bridge.wake_queue()
            await asyncio.sleep(0.02)

    async def restart(self) -> None:
        """Run the configured restart command (systemd restarts the units on the new
        version); without one the bridge only logs that a restart is due."""
        if not self.restart_command:
            log.error("firmware switched but station.firmware_restart_command is empty: "
                      "restart the pysecc units to run the new version")
            return
        await asyncio.to_thread(subprocess.run, self.restart_command, shell=True, check=False)

    # --- after a restart -----------------------------------------------------------------------
    def ready(self) -> bool:
        """READY: accepted by the CSMS and every configured SECC online on the bus."""
        return self.bridge.online and all(self.secc_online.get(evse)
                                          for evse in self.bridge.config.station.evse_ids)

    async def watch_pending(self) -> None:
        """At start: confirm a switched version once READY, or roll it back."""
        pending = self.store.pending()
        if pending is None:
            return
        request_id = pending.get("request_id")
        version = pending["version"]
        while time.time() < pending["deadline"]:
            if self.ready():
                self.store.confirm()
                log.info("firmware version confirmed", extra={"version": version})
                self.notify("Installed", request_id)
                return
            await asyncio.sleep(0.2)
        previous = self.store.rollback()
        log.error("new firmware did not become READY in time: rolled back", extra={
            "version": version, "back_to": previous})
        self.notify("InstallationFailed", request_id)
        await self.restart()


class FirmwareHandlers:
    """``@on`` handler for BridgeChargePoint (``self.bridge`` is the Bridge)."""

    bridge: Bridge

    @on(Action.update_firmware)
    async def on_update_firmware(self, request_id: int, firmware: dict,
                                 retries: int | None = None, retry_interval: int | None = None,
                                 **_: Any):
        try:
            status = self.bridge.firmware.start(
                request_id, snake_to_camel_case(firmware),
                1 if retries is None else max(0, retries),
                10 if retry_interval is None else max(0, retry_interval))
        except FirmwareRejected as exc:
            return call_result.UpdateFirmware(status=exc.status, status_info={
                "reason_code": "InvalidCertificate", "additional_info": str(exc)[:512]})
        return call_result.UpdateFirmware(status=status)


# --- building a package ------------------------------------------------------------------------------
def build_package(version: str, files: list[Path]) -> bytes:
    """A package (tar) of ``files`` (stored by name) with its manifest."""
    entries = [(f.name, f.read_bytes()) for f in files]
    manifest = {"format": FORMAT, "version": version,
                "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "files": [{"path": name, "sha256": hashlib.sha256(data).hexdigest()}
                          for name, data in entries]}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in [("manifest.json", json.dumps(manifest, indent=1).encode()), *entries]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def sign_package(package: bytes, key_pem: bytes) -> str:
    key = serialization.load_pem_private_key(key_pem, password=None)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(package, ec.ECDSA(hashes.SHA256()))
    elif isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(package, padding.PKCS1v15(), hashes.SHA256())
    else:
        raise ValueError(f"unsupported key {type(key).__name__}")
    return base64.b64encode(signature).decode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ocpp_bridge.firmware")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build and sign a firmware package")
    build.add_argument("--version", required=True)
    build.add_argument("--key", required=True, type=Path, help="signing key (PEM)")
    build.add_argument("--cert", required=True, type=Path,
                       help="signing certificate (PEM, sub-CAs after it)")
    build.add_argument("--out", required=True, type=Path, help="package file to write")
    build.add_argument("files", nargs="+", type=Path, help="wheels (and other payload)")
    args = parser.parse_args(argv)
    package = build_package(args.version, args.files)
    args.out.write_bytes(package)
    signature = sign_package(package, args.key.read_bytes())
    request = {"location": f"https://<your file server>/{args.out.name}",
               "retrieveDateTime": "<now>", "signingCertificate": args.cert.read_text(),
               "signature": signature}
    json.dump({"package": str(args.out), "bytes": len(package),
               "sha256": hashlib.sha256(package).hexdigest(),
               "updateFirmware": {"requestId": 1, "firmware": request}}, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
