"""OCPP 2.0.1 Advanced Security at the bridge: the security log (A04) and GetLog (N01).

* ``SecurityLog``: every security event the bridge raises (``Bridge.enqueue_security_event``:
  startup, failed logins at the CSMS, invalid CSMS or station certificates, security settings
  changed, firmware signature failures ...) is appended as one JSON line to ``security.log``
  in the storage directory, rotated at ``MAX_BYTES`` keeping ``BACKUPS`` old files, besides
  going to the CSMS as SecurityEventNotification through the persistent queue.
* The diagnostics log: the bridge's own log lines (INFO and above) as JSON lines in
  ``diagnostics.log``, rotated the same way.
* ``LogUploads``: GetLog. The log of the asked type, cut to ``oldestTimestamp`` ..
  ``latestTimestamp``, is gzipped (``<station>-<logType>-<requestId>.jsonl.gz``) and uploaded
  with HTTP(S) PUT to ``remoteLocation`` (a URL ending in ``/`` gets the file name appended),
  each attempt bounded by ``UPLOAD_TIMEOUT``, ``retries`` more attempts ``retryInterval`` apart;
  LogStatusNotification Uploading, then Uploaded or UploadFailure, goes through the queue. A
  new GetLog while one runs cancels it (answer AcceptedCanceled).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import json
import logging
import logging.handlers
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ocpp.routing import after, on
from ocpp.v201 import call_result
from ocpp.v201.enums import Action

from secc.common.logs import layer_logger

if TYPE_CHECKING:
    from ocpp_bridge.app import Bridge

log = layer_logger("ocpp")

MAX_BYTES = 256 * 1024
BACKUPS = 4
UPLOAD_TIMEOUT = 10.0             # s per HTTP attempt (connect + send + answer)
DEFAULT_RETRIES = 1
DEFAULT_RETRY_INTERVAL = 5
REPEAT_INTERVAL = 600.0          # s between two identical connection security events
LOG_FILES = {"SecurityLog": "security.log", "DiagnosticsLog": "diagnostics.log"}


def _utc(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")


def _epoch(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _rotating(path: Path) -> logging.handlers.RotatingFileHandler:
    path.parent.mkdir(parents=True, exist_ok=True)
    return logging.handlers.RotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS,
                                                encoding="utf-8")


class SecurityLog:
    """Append-only, rotating JSON-lines file of security events."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handler = _rotating(path)

    def record(self, event_type: str, tech_info: str = "", when: float | None = None) -> None:
        line = {"timestamp": _utc(time.time() if when is None else when), "type": event_type}
        if tech_info:
            line["techInfo"] = tech_info
        self._handler.emit(logging.makeLogRecord({"msg": json.dumps(line, sort_keys=True),
                                                  "levelno": logging.INFO,
                                                  "levelname": "INFO"}))
        self._handler.flush()

    def close(self) -> None:
        self._handler.close()


class _JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"timestamp": _utc(record.created), "level": record.levelname,
                           "logger": record.name, "message": record.getMessage()})


def log_lines(path: Path, oldest: float | None, latest: float | None) -> list[str]:
    """The JSON lines of a rotating log (oldest file first) within [oldest, latest]."""
    files = [path.with_name(f"{path.name}.{i}") for i in range(BACKUPS, 0, -1)] + [path]
    out = []
    for file in files:
        if not file.exists():
            continue
        for line in file.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                when = _epoch(json.loads(line)["timestamp"])
            except (ValueError, KeyError, TypeError):
                continue
            if (oldest is None or when >= oldest) and (latest is None or when <= latest):
                out.append(line)
    return out


def upload_target(remote_location: str, filename: str) -> str:
    """Where the file goes; raises ValueError for anything but an http(s) URL."""
    url = urllib.parse.urlsplit(remote_location)
    if url.scheme not in ("http", "https") or not url.netloc:
        raise ValueError(f"remoteLocation {remote_location!r} is not an http(s) URL")
    return remote_location + filename if remote_location.endswith("/") else remote_location


def put(url: str, data: bytes, timeout: float = UPLOAD_TIMEOUT) -> int:
    """One HTTP(S) PUT; returns the status, raises OSError/URLError on failure."""
    request = urllib.request.Request(url, data=data, method="PUT", headers={
        "Content-Type": "application/gzip", "Content-Length": str(len(data))})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - checked
        return response.status


class SecurityService:
    """The bridge's security log, diagnostics log and GetLog uploads."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        directory = Path(bridge.config.storage.queue).parent
        self.paths = {kind: directory / name for kind, name in LOG_FILES.items()}
        self.security_log = SecurityLog(self.paths["SecurityLog"])
        self._diagnostics = _rotating(self.paths["DiagnosticsLog"])
        self._diagnostics.setFormatter(_JsonLines())
        self._diagnostics.setLevel(logging.INFO)
        logging.getLogger("pysecc").addHandler(self._diagnostics)
        self.upload: asyncio.Task | None = None
        self.upload_request: int | None = None
        self._raised: dict[str, float] = {}

    def due(self, event_type: str, now: float | None = None) -> bool:
        """Whether a repeating event (a failed login on every reconnect attempt) should be
        raised again: at most once per ``REPEAT_INTERVAL`` per type."""
        now = time.monotonic() if now is None else now
        last = self._raised.get(event_type)
        if last is not None and now - last < REPEAT_INTERVAL:
            return False
        self._raised[event_type] = now
        return True

    def close(self) -> None:
        logging.getLogger("pysecc").removeHandler(self._diagnostics)
        self._diagnostics.close()
        self.security_log.close()

    def notify_status(self, status: str, request_id: int | None) -> None:
        payload: dict[str, Any] = {"status": status}
        if request_id is not None:
            payload["requestId"] = request_id
        self.bridge.queue.enqueue_plain(uuid.uuid4().hex, "LogStatusNotification", payload,
                                        now=time.time())
        self.bridge.wake_queue()

    def filename(self, log_type: str, request_id: int) -> str:
        return f"{self.bridge.config.csms.station_id}-{log_type}-{request_id}.jsonl.gz"

    def bundle(self, log_type: str, oldest: str | None, latest: str | None) -> bytes:
        lines = log_lines(self.paths[log_type], _epoch(oldest) if oldest else None,
                          _epoch(latest) if latest else None)
        return gzip.compress(("\n".join(lines) + "\n" if lines else "").encode())

    async def run_upload(self, log_type: str, request_id: int, parameters: dict[str, Any],
                         retries: int, retry_interval: int) -> str:
        """Upload one log; returns the final status (Uploaded or UploadFailure)."""
        filename = self.filename(log_type, request_id)
        url = upload_target(parameters["remoteLocation"], filename)
        data = self.bundle(log_type, parameters.get("oldestTimestamp"),
                           parameters.get("latestTimestamp"))
        self.notify_status("Uploading", request_id)
        for attempt in range(retries + 1):
            try:
                status = await asyncio.wait_for(asyncio.to_thread(put, url, data),
                                                UPLOAD_TIMEOUT + 2)
                if 200 <= status < 300:
                    log.info("log uploaded", extra={"log_type": log_type, "url": url,
                                                    "bytes": len(data), "request": request_id})
                    self.notify_status("Uploaded", request_id)
                    return "Uploaded"
                error = f"HTTP {status}"
            except urllib.error.HTTPError as exc:
                error = f"HTTP {exc.code}"
            except (OSError, urllib.error.URLError, asyncio.TimeoutError, TimeoutError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            log.warning("log upload failed", extra={"url": url, "attempt": attempt + 1,
                                                    "of": retries + 1, "error": error})
            if attempt < retries:
                await asyncio.sleep(retry_interval)
        self.notify_status("UploadFailure", request_id)
        return "UploadFailure"


class SecurityHandlers:
    """``@on`` handlers for BridgeChargePoint (``self.bridge`` is the Bridge)."""

    bridge: Bridge

    @on(Action.get_log)
    async def on_get_log(self, log: dict, log_type: str, request_id: int,
                         retries: int | None = None, retry_interval: int | None = None,
                         **_: Any):
        service = self.bridge.security
        try:
            upload_target(log["remote_location"], "x")
        except ValueError as exc:
            return call_result.GetLog(status="Rejected", status_info={
                "reason_code": "InvalidURL", "additional_info": str(exc)[:512]})
        status = "Accepted"
        if service.upload is not None and not service.upload.done():
            service.upload.cancel()
            status = "AcceptedCanceled"
        return call_result.GetLog(status=status,
                                  filename=service.filename(log_type, request_id))

    @after(Action.get_log)
    async def after_get_log(self, log: dict, log_type: str, request_id: int,
                            retries: int | None = None, retry_interval: int | None = None,
                            **_: Any) -> None:
        service = self.bridge.security
        parameters = {"remoteLocation": log["remote_location"]}
        for key, name in (("oldest_timestamp", "oldestTimestamp"),
                          ("latest_timestamp", "latestTimestamp")):
            if log.get(key):
                parameters[name] = log[key]
        try:
            upload_target(parameters["remoteLocation"], "x")
        except ValueError:
            return  # answered Rejected
        service.upload = asyncio.ensure_future(service.run_upload(
            log_type, request_id, parameters,
            DEFAULT_RETRIES if retries is None else max(0, retries),
            DEFAULT_RETRY_INTERVAL if retry_interval is None else max(0, retry_interval)))
        service.upload_request = request_id
