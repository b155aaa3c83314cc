"""Structured logging for every pysecc layer.

One logger per layer (``pysecc.hal``, ``pysecc.slac``, ``pysecc.v2g`` ...), lines in
``key=value`` form (default, easy to grep on a charger) or JSON (for log shippers).
Every line logged while a session is active carries ``session=<id>``: the id is held in a
context variable, so asyncio tasks of one charging session inherit it.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterator

LAYERS = ("hal", "slac", "sdp", "v2gtp", "tls", "v2g", "exi", "pki", "bus", "ocpp", "cli", "sim")

_session_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "pysecc_session_id", default=None
)

# LogRecord attributes that are not user-supplied fields.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


def layer_logger(layer: str) -> logging.Logger:
    """The logger of one layer, e.g. ``layer_logger("slac")`` -> ``pysecc.slac``."""
    if layer not in LAYERS:
        raise ValueError(f"unknown log layer {layer!r}; known: {', '.join(LAYERS)}")
    return logging.getLogger(f"pysecc.{layer}")


class FieldsAdapter(logging.LoggerAdapter):
    """A logger with fixed fields (e.g. ``protocol``) that keeps the caller's ``extra`` too
    (the plain ``LoggerAdapter`` of Python < 3.13 replaces it, so ``request=``,
    ``response_code=`` and ``detail=`` of a log line were lost)."""

    def process(self, msg: object, kwargs: dict) -> tuple[object, dict]:
        kwargs["extra"] = {**(self.extra or {}), **(kwargs.get("extra") or {})}
        return msg, kwargs


@contextlib.contextmanager
def session_context(session_id: str) -> Iterator[None]:
    """Tag every log line emitted inside this block (and tasks it starts) with the session id."""
    token = _session_id.set(session_id)
    try:
        yield
    finally:
        _session_id.reset(token)


def set_session_id(session_id: str) -> None:
    """Tag the rest of the current task's lines (used once a SessionID is assigned)."""
    _session_id.set(session_id)


def current_session_id() -> str | None:
    return _session_id.get()


def _fields(record: logging.LogRecord) -> dict[str, object]:
    fields: dict[str, object] = {}
    session = getattr(record, "session", None) or _session_id.get()
    if session:
        fields["session"] = session
    for key, value in vars(record).items():
        if key not in _STANDARD_ATTRS and key != "session" and not key.startswith("_"):
            fields[key] = value
    return fields


def _kv_value(value: object) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' ="\n'):
        return json.dumps(text)
    return text


class KeyValueFormatter(logging.Formatter):
    """``ts=... level=info layer=slac session=ab12 msg="match done" ev_mac=...``"""

    def format(self, record: logging.LogRecord) -> str:
        layer = record.name.removeprefix("pysecc.")
        parts = [
            f"ts={time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(record.created))}"
            f".{int(record.msecs):03d}Z",
            f"level={record.levelname.lower()}",
            f"layer={layer}",
        ]
        parts += [f"{k}={_kv_value(v)}" for k, v in _fields(record).items()]
        parts.append(f"msg={_kv_value(record.getMessage())}")
        if record.exc_info:
            parts.append(f"exc={_kv_value(self.formatException(record.exc_info))}")
        return " ".join(parts)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": record.created,
            "level": record.levelname.lower(),
            "layer": record.name.removeprefix("pysecc."),
            "msg": record.getMessage(),
        }
        doc.update({k: v if isinstance(v, (int, float, bool)) else str(v)
                    for k, v in _fields(record).items()})
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, separators=(",", ":"))


FORMATTERS = {"kv": KeyValueFormatter, "json": JsonFormatter}


def setup_logging(fmt: str = "kv", level: str | int = "INFO", stream=None) -> logging.Handler:
    """Install one handler on the ``pysecc`` logger. Idempotent: replaces an earlier one."""
    if fmt not in FORMATTERS:
        raise ValueError(f"log format must be one of {sorted(FORMATTERS)}, not {fmt!r}")
    root = logging.getLogger("pysecc")
    for old in [h for h in root.handlers if getattr(h, "_pysecc", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(FORMATTERS[fmt]())
    handler._pysecc = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    root.propagate = False
    return handler
