"""The bridge's configuration: one typed object, validated when the TOML file is loaded.

Example (``python -m ocpp_bridge --config bridge.toml``)::

    [csms]
    url = "wss://csms.example.com/ocpp"   # the station id is appended as the last path segment
    station_id = "CS0001"
    security_profile = 2                   # 1: ws + basic auth, 2: wss + basic auth, 3: mTLS
    password = "0123456789abcdef"           # SP1/SP2 (BasicAuthPassword)
    ca_file = "/etc/pysecc/csms_root.pem"   # SP2/SP3: roots to verify the CSMS
    client_cert = "/etc/pysecc/cs_chain.pem" # SP3: charging-station certificate chain
    client_key = "/etc/pysecc/cs_key.pem"

    [bus]
    host = "127.0.0.1"
    port = 1883
    username = "bridge"
    password = "..."

    [storage]
    queue = "/var/lib/pysecc/bridge-queue.db"
    certificates = "/var/lib/pysecc/certs"

    [station]
    evse_ids = [1]
    vendor = "pysecc"
    model = "pysecc-dc"
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """The configuration file is unusable; the message names the key."""


@dataclass(frozen=True)
class CsmsConfig:
    url: str
    station_id: str
    security_profile: int = 1
    password: str | None = None
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    response_timeout: float = 10.0
    heartbeat_interval: int = 60
    retry_initial: float = 0.5
    retry_max: float = 30.0
    message_attempts: int = 5          # CallError answers before a queued message is parked


@dataclass(frozen=True)
class BusConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    client_id: str = "ocpp-bridge"


@dataclass(frozen=True)
class StorageConfig:
    queue: Path = Path("/var/lib/pysecc/bridge-queue.db")
    certificates: Path = Path("/var/lib/pysecc/certs")


@dataclass(frozen=True)
class StationConfig:
    evse_ids: tuple[int, ...] = (1,)
    vendor: str = "pysecc"
    model: str = "pysecc"
    serial_number: str | None = None
    firmware_version: str | None = None
    command_timeout: float = 5.0       # how long the SECC gets to answer a CSMS command
    # smart charging: the EVSE rating the composite schedule starts from, and A <-> W
    max_power_w: float = 350_000.0
    max_current_a: float = 500.0
    nominal_voltage: float = 230.0
    phases: int = 3
    # firmware update (docs/firmware.md): what restarts the units on the new version, and
    # whether installing builds a venv from the package's wheels
    firmware_restart_command: str = ""
    firmware_create_venv: bool = True


@dataclass(frozen=True)
class BridgeConfig:
    csms: CsmsConfig
    bus: BusConfig = field(default_factory=BusConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    station: StationConfig = field(default_factory=StationConfig)

    def __post_init__(self) -> None:
        sp = self.csms.security_profile
        if sp not in (1, 2, 3):
            raise ConfigError(f"csms.security_profile must be 1, 2 or 3, not {sp}")
        scheme = self.csms.url.split(":", 1)[0]
        if sp == 1 and scheme != "ws":
            raise ConfigError("security profile 1 uses ws:// (no TLS)")
        if sp in (2, 3) and scheme != "wss":
            raise ConfigError(f"security profile {sp} needs a wss:// url")
        if sp in (1, 2) and not self.csms.password:
            raise ConfigError(f"security profile {sp} needs csms.password (basic auth)")
        if sp == 3 and not (self.csms.client_cert and self.csms.client_key):
            raise ConfigError("security profile 3 needs csms.client_cert and csms.client_key")
        if not self.station.evse_ids:
            raise ConfigError("station.evse_ids is empty")


def _section(cls: type, data: dict[str, Any], name: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise ConfigError(f"[{name}] unknown keys: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for key, value in data.items():
        kind = str(known[key].type)
        if "Path" in kind and value is not None:
            value = Path(value)
        elif "tuple" in kind:
            value = tuple(value)
        values[key] = value
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"[{name}] {exc}") from None


def from_dict(data: dict[str, Any]) -> BridgeConfig:
    if "csms" not in data:
        raise ConfigError("missing [csms] section")
    return BridgeConfig(
        csms=_section(CsmsConfig, data["csms"], "csms"),
        bus=_section(BusConfig, data.get("bus", {}), "bus"),
        storage=_section(StorageConfig, data.get("storage", {}), "storage"),
        station=_section(StationConfig, data.get("station", {}), "station"),
    )


def load(path: Path | str) -> BridgeConfig:
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return from_dict(data)


def to_toml(config: BridgeConfig) -> str:
    """Write a config back as TOML (tests and the demo start the bridge from a file)."""
    lines: list[str] = []
    for section in ("csms", "bus", "storage", "station"):
        lines.append(f"[{section}]")
        obj = getattr(config, section)
        for f in fields(obj):
            value = getattr(obj, f.name)
            if value is None:
                continue
            if isinstance(value, Path):
                value = str(value)
            if isinstance(value, tuple):
                lines.append(f"{f.name} = [{', '.join(str(v) for v in value)}]")
            elif isinstance(value, str):
                lines.append(f'{f.name} = "{value}"')
            elif isinstance(value, bool):
                lines.append(f"{f.name} = {'true' if value else 'false'}")
            else:
                lines.append(f"{f.name} = {value}")
        lines.append("")
    return "\n".join(lines)
