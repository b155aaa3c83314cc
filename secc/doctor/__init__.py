"""``secc doctor``: why a charger misbehaves, one finding per check, each with its fix.

Checks run at the edge (sockets, files, the bus) and return :class:`Finding` values; nothing
here changes the charger's configuration. The checks, in the order a field engineer would go:

* ``plc.*``   the PLC interface and its carrier; the modem's answer to VS_SW_VER (chip,
  firmware); the CM_SET_KEY.CNF result convention against ``[slac].set_key_success_mode``;
* ``certs.*`` the SECC's TLS chain and key, leaf expiry, the V2G/MO/OEM roots (and which
  OCPP InstallCertificate puts a missing one in place);
* ``tls.*``   the TLS versions and suites the V2G server offers against ISO 15118-2/-20,
  proven by an in-memory handshake with a client restricted to what each standard allows;
* ``bus.*``, ``bridge.*``, ``csms.*``  the broker with our credentials, the OCPP bridge's
  liveness, its CSMS connection and security profile, and the diagnostics the bridge
  recorded (15118 messages the CSMS answered NotImplemented/NotSupported, TLS failures,
  missing roots) from its retained ``bridge/csms`` state.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass, field
from typing import Any


class Status(enum.Enum):
    OK = "ok"
    WARN = "warn"        # works, but not as it should (or will stop working soon)
    FAIL = "fail"        # this is why something does not work
    SKIP = "skip"        # could not or need not be checked (the summary says why)


@dataclass(frozen=True)
class Finding:
    check: str           # "plc.interface", "certs.mo_root", ...
    status: Status
    summary: str         # what was found, one line
    fix: str = ""        # what to change, naming the setting or the command
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"check": self.check, "status": self.status.value,
                                "summary": self.summary}
        if self.fix:
            data["fix"] = self.fix
        if self.details:
            data["details"] = self.details
        return data


def worst(findings: list[Finding]) -> Status:
    for status in (Status.FAIL, Status.WARN):
        if any(f.status is status for f in findings):
            return status
    return Status.OK


async def run_doctor(config: Any, *, set_key: bool = True, bus_wait: float = 1.5,
                     now: Any = None) -> list[Finding]:
    """Every check for the charging point of board ``config`` (a ``secc.config.BoardConfig``),
    in the order a field engineer would go."""
    from secc.doctor.bus import BusSnapshot, bus_findings, read_bus, session_in_progress
    from secc.doctor.plc import check_interface, check_modem

    findings: list[Finding] = []
    snapshot = BusSnapshot()
    if config.bus.enabled:
        snapshot = await read_bus(config, bus_wait)
    interface, usable = await asyncio.to_thread(check_interface, config)
    findings.append(interface)
    if config.plc.start_at_sdp:
        findings.append(Finding("plc.modem", Status.SKIP, "[plc].start_at_sdp = true: no SLAC "
                                "and no modem on this board (test set-up)",
                                "set [plc].start_at_sdp = false on a real charger"))
    elif usable:
        busy = session_in_progress(snapshot)
        findings += await check_modem(config, set_key=set_key and not busy)
        if busy:
            findings.append(Finding("slac.set_key", Status.SKIP, "not probed: a session is in "
                                    "progress (a new key would drop the car's PLC link)"))
        elif not set_key:
            findings.append(Finding("slac.set_key", Status.SKIP, "not probed (--no-set-key)"))
    findings += check_certs_and_tls(config, now)
    if config.bus.enabled:
        findings += bus_findings(config, snapshot)
    else:
        findings.append(Finding("bus.broker", Status.SKIP, "[bus].enabled = false: no bus, no "
                                "OCPP bridge, no CSMS (local authorization only)",
                                "set [bus].enabled = true with the broker credentials to "
                                "connect the charger to a CSMS"))
    return findings


def check_certs_and_tls(config: Any, now: Any = None) -> list[Finding]:
    from secc.doctor.certs import check_certificates
    from secc.doctor.tls import check_tls

    if config.v2g.tls == "none" and not config.v2g.plug_and_charge:
        certs = [Finding("certs.directory", Status.SKIP, '[v2g].tls = "none" and no Plug & '
                         "Charge: no certificates needed")]
    else:
        certs = check_certificates(config, now)
    return certs + check_tls(config)
