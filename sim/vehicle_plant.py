"""The vehicle's physical side on the simulated board, for the demo and end-to-end tests.

The EV simulator speaks only V2G; on a real charger the car also moves the control pilot
(state B at plug-in, C when ready for power), presents its battery voltage at the inlet and
closes its own contactors. ``VehiclePlant`` does that on a ``SimBoard`` from the session
events the SECC publishes, as a car would at the same points of the protocol:

* plug-in: pilot B                 * SessionStarted/Resumed: pilot C, battery voltage at the inlet
* ChargingStarted: EV contactors closed
* ChargingStopped (PowerDeliveryRes(Stop)), SessionPaused/Stopped: EV contactors open, pilot B;
  ``unplug()``: A.

All calls are marshalled onto the SECC's event loop (the board belongs to it).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from secc.v2g.evse import PublishEvent


@dataclass
class VehiclePlant:
    board: object
    loop: asyncio.AbstractEventLoop
    battery_voltage: float = 380.0
    events: list[str] = field(default_factory=list)

    def _call(self, fn, *args) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    def plug_in(self) -> None:
        self._call(self.board.ev_set_pilot, "B")

    def unplug(self) -> None:
        self._call(self.board.ev_close_contactors, False)
        self._call(self.board.ev_set_pilot, "A")

    def on_session_event(self, event: PublishEvent) -> None:
        """Hook for ``BoardController(publish=...)`` (runs on the SECC loop)."""
        self.events.append(event.kind)
        if event.kind in ("SessionStarted", "SessionResumed"):
            self.board.ev_set_battery_voltage(self.battery_voltage)
            self.board.ev_set_pilot("C")
        elif event.kind == "ChargingStarted":
            self.board.ev_close_contactors(True)
        elif event.kind in ("ChargingStopped", "SessionPaused", "SessionStopped"):
            # S2 opens after PowerDeliveryRes(Stop): the SECC holds WeldingDetection /
            # SessionStop until the pilot shows B (docs/conformance.md, CP interlock)
            self.board.ev_close_contactors(False)
            self.board.ev_set_pilot("B")
