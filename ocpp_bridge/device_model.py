"""The part of the OCPP 2.0.1 device model this bridge reports and lets the CSMS change.

One table (``DEFINITIONS``) lists every (component, variable): its type, mutability and
default. Get/SetVariables are lookups in it; values the CSMS sets are persisted to a JSON
file so they survive restarts (BasicAuthPassword, HeartbeatInterval, PnC switches...).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from secc.common.logs import layer_logger

log = layer_logger("ocpp")


@dataclass(frozen=True)
class VariableDef:
    kind: type                 # bool, int or str
    mutability: str            # ReadOnly, ReadWrite, WriteOnly
    default: Any
    min_value: int | None = None
    max_length: int | None = None


DEFINITIONS: dict[tuple[str, str], VariableDef] = {
    ("ISO15118Ctrlr", "PnCEnabled"): VariableDef(bool, "ReadWrite", True),
    ("ISO15118Ctrlr", "CentralContractValidationAllowed"): VariableDef(bool, "ReadWrite", True),
    ("ISO15118Ctrlr", "ContractValidationOffline"): VariableDef(bool, "ReadWrite", True),
    ("ISO15118Ctrlr", "V2GCertificateInstallationEnabled"): VariableDef(bool, "ReadWrite", True),
    ("ISO15118Ctrlr", "ContractCertificateInstallationEnabled"):
        VariableDef(bool, "ReadWrite", True),
    ("ISO15118Ctrlr", "SeccId"): VariableDef(str, "ReadWrite", "", max_length=64),
    ("ISO15118Ctrlr", "CountryName"): VariableDef(str, "ReadWrite", "DE", max_length=2),
    ("ISO15118Ctrlr", "OrganizationName"): VariableDef(str, "ReadWrite", "pysecc", max_length=64),
    ("ISO15118Ctrlr", "RequestMeteringReceipt"): VariableDef(bool, "ReadWrite", False),
    ("SecurityCtrlr", "SecurityProfile"): VariableDef(int, "ReadOnly", 1),
    ("SecurityCtrlr", "BasicAuthPassword"): VariableDef(str, "WriteOnly", "", max_length=40),
    ("SecurityCtrlr", "Identity"): VariableDef(str, "ReadOnly", "", max_length=48),
    ("SecurityCtrlr", "OrganizationName"): VariableDef(str, "ReadWrite", "pysecc", max_length=64),
    ("SecurityCtrlr", "CertificateEntries"): VariableDef(int, "ReadOnly", 0),
    ("OCPPCommCtrlr", "HeartbeatInterval"): VariableDef(int, "ReadWrite", 60, min_value=1),
    ("OCPPCommCtrlr", "MessageAttempts"): VariableDef(int, "ReadWrite", 5, min_value=1),
    ("OCPPCommCtrlr", "MessageTimeout"): VariableDef(int, "ReadWrite", 10, min_value=1),
    ("AuthCtrlr", "AuthorizeRemoteStart"): VariableDef(bool, "ReadWrite", True),
    ("AuthCtrlr", "LocalAuthorizeOffline"): VariableDef(bool, "ReadWrite", False),
    ("AuthCtrlr", "LocalPreAuthorize"): VariableDef(bool, "ReadOnly", False),
    ("AuthCacheCtrlr", "Enabled"): VariableDef(bool, "ReadWrite", True),
    ("AuthCacheCtrlr", "Available"): VariableDef(bool, "ReadOnly", True),
    ("AuthCacheCtrlr", "LifeTime"): VariableDef(int, "ReadWrite", 7 * 86400, min_value=0),
    ("LocalAuthListCtrlr", "Enabled"): VariableDef(bool, "ReadWrite", True),
    ("LocalAuthListCtrlr", "Available"): VariableDef(bool, "ReadOnly", True),
    ("LocalAuthListCtrlr", "Entries"): VariableDef(int, "ReadOnly", 0),
    ("LocalAuthListCtrlr", "ItemsPerMessage"): VariableDef(int, "ReadOnly", 250),
    ("LocalAuthListCtrlr", "BytesPerMessage"): VariableDef(int, "ReadOnly", 2 ** 20),
    ("SampledDataCtrlr", "TxUpdatedInterval"): VariableDef(int, "ReadWrite", 60, min_value=0),
    ("SampledDataCtrlr", "SignReadings"): VariableDef(bool, "ReadWrite", True),
    ("SmartChargingCtrlr", "Enabled"): VariableDef(bool, "ReadWrite", True),
    # what ocpp_bridge.smart_charging.Limits enforces (reported, not settable)
    ("SmartChargingCtrlr", "ProfileStackLevel"): VariableDef(int, "ReadOnly", 8),
    ("SmartChargingCtrlr", "PeriodsPerSchedule"): VariableDef(int, "ReadOnly", 24),
    ("SmartChargingCtrlr", "RateUnit"): VariableDef(str, "ReadOnly", "A,W"),
    ("DeviceDataCtrlr", "ItemsPerMessage"): VariableDef(int, "ReadOnly", 32),
    ("DeviceDataCtrlr", "BytesPerMessage"): VariableDef(int, "ReadOnly", 2 ** 20),
}

KNOWN_COMPONENTS = {component for component, _ in DEFINITIONS}


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _parse(definition: VariableDef, text: str) -> Any:
    """Raise ValueError when ``text`` is not a valid value for the variable."""
    if definition.kind is bool:
        if text.lower() not in ("true", "false"):
            raise ValueError("expected true or false")
        return text.lower() == "true"
    if definition.kind is int:
        value = int(text)
        if definition.min_value is not None and value < definition.min_value:
            raise ValueError(f"below minimum {definition.min_value}")
        return value
    if definition.max_length is not None and len(text) > definition.max_length:
        raise ValueError(f"longer than {definition.max_length}")
    return text


class DeviceModel:
    def __init__(self, path: Path | None, overrides: dict[tuple[str, str], Any] | None = None):
        self.path = path
        self._values: dict[tuple[str, str], Any] = {k: d.default for k, d in DEFINITIONS.items()}
        self._values.update(overrides or {})
        # read-only variables the bridge computes when asked (counts of stored entries)
        self.live: dict[tuple[str, str], Any] = {}
        if path and path.exists():
            try:
                stored = json.loads(path.read_text())
                for key, value in stored.items():
                    component, variable = key.split(".", 1)
                    if (component, variable) in DEFINITIONS:
                        self._values[(component, variable)] = value
            except (ValueError, OSError) as exc:
                log.error("device model file unreadable, using defaults",
                          extra={"path": str(path), "error": str(exc)})

    def get(self, component: str, variable: str) -> Any:
        live = self.live.get((component, variable))
        return live() if live is not None else self._values[(component, variable)]

    def set_local(self, component: str, variable: str, value: Any) -> None:
        """Set from the bridge itself (e.g. the configured security profile)."""
        self._values[(component, variable)] = value

    def get_variable(self, component: str, variable: str, attribute: str = "Actual"
                     ) -> tuple[str, str | None]:
        """OCPP GetVariableStatus and value."""
        definition = DEFINITIONS.get((component, variable))
        if definition is None:
            return ("UnknownComponent" if component not in KNOWN_COMPONENTS
                    else "UnknownVariable"), None
        if attribute != "Actual":
            return "NotSupportedAttributeType", None
        if definition.mutability == "WriteOnly":
            return "Rejected", None
        return "Accepted", _render(self.get(component, variable))

    def set_variable(self, component: str, variable: str, text: str,
                     attribute: str = "Actual") -> str:
        """OCPP SetVariableStatus."""
        definition = DEFINITIONS.get((component, variable))
        if definition is None:
            return "UnknownComponent" if component not in KNOWN_COMPONENTS else "UnknownVariable"
        if attribute != "Actual":
            return "NotSupportedAttributeType"
        if definition.mutability == "ReadOnly":
            return "Rejected"
        try:
            value = _parse(definition, text)
        except ValueError:
            return "Rejected"
        self._values[(component, variable)] = value
        self._save()
        return "Accepted"

    def _save(self) -> None:
        if not self.path:
            return
        defaults = {k: d.default for k, d in DEFINITIONS.items()}
        changed = {f"{c}.{v}": val for (c, v), val in self._values.items()
                   if val != defaults[(c, v)]}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(changed, indent=1))
        tmp.replace(self.path)


DATA_TYPES = {bool: "boolean", int: "integer", str: "string"}


def report_data(model: DeviceModel, configuration_only: bool) -> list[dict[str, Any]]:
    """NotifyReport reportData for every variable (ConfigurationInventory: writable ones)."""
    items = []
    for (component, variable), definition in DEFINITIONS.items():
        if configuration_only and definition.mutability == "ReadOnly":
            continue
        attribute: dict[str, Any] = {"type": "Actual", "mutability": definition.mutability}
        if definition.mutability != "WriteOnly":
            attribute["value"] = _render(model.get(component, variable))
        items.append({"component": {"name": component}, "variable": {"name": variable},
                      "variableAttribute": [attribute],
                      "variableCharacteristics": {"dataType": DATA_TYPES[definition.kind],
                                                  "supportsMonitoring": False}})
    return items
