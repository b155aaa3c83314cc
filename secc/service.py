"""``secc run`` under systemd: the status line, and what SIGHUP may change in a running daemon.

* :class:`StatusLine` turns the daemon's state into the ``STATUS=`` text ``systemctl status``
  shows: ``idle, PLC link up, CSMS connected`` or ``charging EVSE 1 ISO-2 DC 42 kW``;
* :func:`reload_plan` compares the running board config with the file as it is now and says
  what a SIGHUP applies (log level, quirks, timers, limits for the next session, meter
  interval) and what it must refuse (anything that needs a restart: board kind, ports,
  interface, protocols, TLS, bus), each refusal a line naming the setting.

Pure functions over data; the daemon edge (``secc.cli.run``) calls them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from secc.config import BoardConfig

# session adapter name -> what a person reads
PROTOCOL_NAMES = {"din": "DIN", "iso2": "ISO-2", "iso20-dc": "ISO-20", "iso20-ac": "ISO-20",
                  "iso20": "ISO-20"}


@dataclass
class StatusLine:
    """What the daemon knows about its charging point, and its one-line rendering."""

    evse: int = 1
    output: str = "dc"
    plc: bool | None = None          # PLC interface carrier; None: no SLAC (start_at_sdp)
    csms: str | None = None          # "connected", "offline", "bridge down", "bus down"; None
    pilot: str = "A"                 # IEC 61851 state letter
    protocol: str | None = None      # running V2G session's adapter name
    charging: bool = False
    power_w: float = 0.0
    stopping: bool = False
    extra: list[str] = field(default_factory=list)

    def on_event(self, kind: str, data: dict[str, Any]) -> None:
        """Session events of the cores (a ``SeccDaemon.event_listeners`` entry)."""
        if kind in ("SessionStarted", "SessionResumed"):
            self.protocol = str(data.get("protocol") or self.protocol or "")
        elif kind == "ChargingStarted":
            self.charging = True
        elif kind in ("ChargingStopped", "Standby"):
            self.charging = False
        elif kind == "SessionStopped":
            self.protocol, self.charging, self.power_w = None, False, 0.0

    def text(self) -> str:
        protocol = PROTOCOL_NAMES.get(self.protocol or "", self.protocol or "")
        if self.stopping:
            head = "stopping: ending the session safely"
        elif self.charging:
            power = f" {abs(self.power_w) / 1000:.0f} kW" if self.power_w else ""
            return (f"charging EVSE {self.evse} {protocol} {self.output.upper()}{power}"
                    + "".join(f", {e}" for e in self.extra))
        elif protocol:
            head = f"session EVSE {self.evse} {protocol}, not charging"
        elif self.pilot in ("B", "C", "D"):
            head = f"EV plugged in on EVSE {self.evse}, no session yet"
        elif self.pilot in ("E", "F"):
            head = f"EVSE {self.evse} faulted (pilot {self.pilot})"
        else:
            head = "idle"
        parts = [head]
        if self.plc is not None:
            parts.append("PLC link up" if self.plc else "PLC link DOWN")
        if self.csms is not None:
            parts.append(f"CSMS {self.csms}")
        return ", ".join(parts + self.extra)


def status_source(daemon: Any) -> Any:
    """A :class:`StatusLine` fed by ``daemon``'s session events; returns the coroutine function
    that refreshes it from the board and the bus and renders it (for the watchdog loop)."""
    config = daemon.config
    status = StatusLine(evse=config.bus.evse, output=config.board.output)
    daemon.event_listeners.append(lambda event: status.on_event(event.kind, event.data))

    async def text() -> str:
        board = daemon.board
        status.pilot = board.pilot_state.value
        slac = daemon.slac_driver
        status.plc = None if slac is None or slac.info is None else slac.info.carrier
        status.csms = csms_state(daemon.bus)
        status.stopping = daemon.shutting_down
        if status.charging:
            if daemon.config.board.output == "dc":
                out = await board.read_dc_output()
                status.power_w = out.voltage_v * out.current_a
            else:
                status.power_w = (await board.read_meter()).power_w
        return status.text()

    return text


def csms_state(bus: Any) -> str | None:
    """The CSMS as the SECC's bus client sees it (None without a bus)."""
    if bus is None:
        return None
    if not bus.endpoint.connected:
        return "unreachable (bus down)"
    if not bus.bridge_online:
        return "unreachable (OCPP bridge down)"
    return "connected" if bus.csms_available else "offline"


# --- SIGHUP: what a running daemon may take from the edited board file ---------------------------
#: (section, field) changes applied at once or from the next session on; anything else needs a
#: restart. Whole sections are named by (section, None).
RELOADABLE: frozenset[tuple[str, str | None]] = frozenset({
    ("logging", None),                       # level and format
    ("v2g", "quirks"), ("v2g", "timers"),    # next session
    ("v2g", "tariff"), ("v2g", "meter_info"),  # next session
    ("slac", None),                          # next matching attempt
    ("bus", "meter_interval"),
    ("board", "max_current_a"), ("board", "max_voltage_v"), ("board", "min_voltage_v"),
    ("board", "max_power_w"), ("board", "max_discharge_current_a"),
    ("board", "max_discharge_power_w"),
})

WHY_RESTART = {
    "board": "the board driver is built at start",
    "serial": "the MCU link is opened at start",
    "gpio": "the GPIO lines, PWM and ADC are claimed at start",
    "plc": "the PLC interface and its sockets are opened at start",
    "v2g": "the V2G servers and TLS are set up at start",
    "bus": "the bus connection is made at start",
    "pilot": "the pilot is configured at start",
}


@dataclass(frozen=True)
class ReloadPlan:
    apply: tuple[str, ...]           # "[v2g].quirks", ...
    refuse: tuple[str, ...]          # one line per refused setting, with why

    @property
    def changed(self) -> bool:
        return bool(self.apply or self.refuse)


def _changes(old: BoardConfig, new: BoardConfig) -> list[tuple[str, str]]:
    found = []
    for section in (f.name for f in dataclasses.fields(BoardConfig) if f.name != "source"):
        a, b = getattr(old, section), getattr(new, section)
        if a == b:
            continue
        for f in dataclasses.fields(a):
            if getattr(a, f.name) != getattr(b, f.name):
                found.append((section, f.name))
    return found


#: ratings the board (HAL) enforces as built at start: SIGHUP may lower them, not raise them
RATINGS = frozenset({"max_current_a", "max_voltage_v", "max_power_w", "max_discharge_current_a",
                     "max_discharge_power_w"})


def reload_plan(old: BoardConfig, new: BoardConfig,
                started: BoardConfig | None = None) -> ReloadPlan:
    """What SIGHUP applies from ``new`` to a daemon running ``old`` (started with
    ``started``, default ``old``)."""
    started = started or old
    apply, refuse = [], []
    for section, name in _changes(old, new):
        key = f"[{section}].{name}"
        if section == "board" and name in RATINGS and \
                getattr(new.board, name) > getattr(started.board, name):
            refuse.append(f"{key} raised to {getattr(new.board, name):g}: not applied, the "
                          f"board enforces the {getattr(started.board, name):g} it started "
                          "with (lowering applies at once; raising needs systemctl restart "
                          "pysecc-secc@<board>)")
        elif (section, None) in RELOADABLE or (section, name) in RELOADABLE:
            apply.append(key)
        else:
            refuse.append(f"{key} changed: not applied until restart "
                          f"({WHY_RESTART.get(section, 'set up at start')}; "
                          "systemctl restart pysecc-secc@<board>)")
    return ReloadPlan(tuple(apply), tuple(refuse))


def merged_config(old: BoardConfig, new: BoardConfig, plan: ReloadPlan) -> BoardConfig:
    """``old`` with exactly the reloadable changes of ``new`` taken over."""
    sections: dict[str, Any] = {}
    for key in plan.apply:
        section, name = key[1:].split("].")
        current = sections.get(section, getattr(old, section))
        sections[section] = dataclasses.replace(current,
                                                **{name: getattr(getattr(new, section), name)})
    return dataclasses.replace(old, **sections)
