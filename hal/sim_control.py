"""Outside control of the simulated board's car side: a control-pilot hook for external testers.

On a real charger the car moves the control pilot; on the simulated board nothing does unless
someone plays the car's electrical side. Two ways, both switched on in the board file's
``[sim]`` table (docs/conformance.md):

* ``control_socket = "/run/pysecc/sim.sock"``: a local Unix socket speaking JSON lines. An
  external tester (an ISO 15118-4/-5 style suite, another EV stack's harness) sets the car's
  CP state and reads what the SECC drives::

      {"cmd": "cp", "state": "C"}           -> {"ok": true, "cp": "C"}
      {"cmd": "status"}                     -> {"ok": true, "cp_raw": "C", "cp": "C",
                                                "pwm": "pwm", "duty_percent": 5.0,
                                                "contactors_closed": true, "lock": "locked",
                                                "output_voltage_v": ..., "output_current_a": ...,
                                                "insulation_test": {...} | null}
      {"cmd": "ev_contactors", "closed": true}   (the car's own DC contactors: battery on)
      {"cmd": "isolation", "ohm": 50000}         (insulation fault injection; null: healthy)
      {"cmd": "estop", "active": true}
      {"cmd": "authorization", "mode": "hold"}   (the SECC's authorization source: "pass" lets
                                                   the board's authorizer decide; "hold" keeps
                                                   the car at Ongoing; "accept"; "reject")
      {"cmd": "schedule", "held": true}          (no schedule for the car yet: the
                                                   ChargeParameterDiscovery answers Ongoing)

  The last two are registered by the daemon (``commands``): they reach the SECC, not the
  board, and their bound is the SECC's ``[v2g.timers].ongoing_timeout``.
  ``cp`` is the debounced state the SECC acts on, ``cp_raw`` what the car pulls; ``pwm`` is the
  pilot signal kind the SECC drives (``x1`` = +12 V steady, i.e. oscillator off / 100 %,
  ``pwm`` with ``duty_percent``, ``state_f`` = -12 V). Anything else gets
  ``{"ok": false, "error": "..."}``. The socket is created with mode 0600 (root only).
* ``ev_follows_session = true``: for peers that have no pilot at all, the simulated car
  follows the V2G session by itself: plugged in (B) at start; S2 closes (C) after
  PowerDeliveryReq(Start) on an AC board, and on a DC board once authorized (a DC car closes
  S2 before the cable check, which the SECC refuses in state B); the battery is switched to
  the inlet after PowerDeliveryReq(Start); back to B after PowerDeliveryReq(Stop) or
  SessionStop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from typing import Any

from hal.pilot import PilotState

log = logging.getLogger("pysecc.hal")

MAX_LINE = 4096


class SessionFollower:
    """The simulated car's electrical side, following the SECC's session events (their
    ``kind``: SessionStarted, ChargingStarted, ChargingStopped, SessionStopped)."""

    def __init__(self, board: Any, battery_voltage_v: float = 400.0) -> None:
        self.board = board
        self.battery_voltage_v = battery_voltage_v

    def plug_in(self) -> None:
        self.board.ev_set_battery_voltage(self.battery_voltage_v)
        self.board.ev_set_pilot(PilotState.B)

    def on_session_event(self, event: Any) -> None:
        kind = getattr(event, "kind", "")
        if kind == "Authorized" and not self.board.plant.ac:
            self.board.ev_set_pilot(PilotState.C)   # DC: ready before the cable check
        elif kind == "ChargingStarted":         # PowerDeliveryReq(Start) answered OK
            self.board.ev_set_pilot(PilotState.C)
            self.board.ev_close_contactors(True)
        elif kind in ("ChargingStopped", "SessionStopped"):
            self.board.ev_close_contactors(False)
            if self.board.plant.pilot_raw in (PilotState.C, PilotState.D):
                self.board.ev_set_pilot(PilotState.B)


def board_status(board: Any) -> dict[str, Any]:
    """What an external tester may read of the simulated board."""
    signal = board.pilot_signal
    test = board.insulation_test()
    plant = board.plant
    return {
        "ok": True, "cp_raw": plant.pilot_raw.value, "cp": board.pilot_state.value,
        "pwm": signal.kind.value, "duty_percent": signal.duty_percent,
        "contactors_closed": board.contactors_closed, "lock": board.lock_state.value,
        "output_voltage_v": round(plant.output_voltage_v, 3),
        "output_current_a": round(plant.output_current_a, 3),
        "ev_contactors_closed": plant.ev_contactors_closed,
        "emergency_stop": plant.emergency_stop,
        "insulation_test": None if test is None else {
            "token": test.token, "voltage_v": test.voltage_v, "complete": test.complete,
            "state": test.state.value},
    }


def handle_command(board: Any, request: dict[str, Any],
                   commands: dict[str, Any] | None = None) -> dict[str, Any]:
    """One control request -> its answer (pure: the board's scripting methods only, and the
    ``commands`` the daemon registered: name -> callable(request) -> answer)."""
    cmd = request.get("cmd")
    if commands and cmd in commands:
        return commands[cmd](request)
    if cmd == "status":
        return board_status(board)
    if cmd == "cp":
        try:
            state = PilotState(str(request.get("state", "")).upper())
        except ValueError:
            return {"ok": False, "error": "state must be one of A B C D E F"}
        board.ev_set_pilot(state)
        return {"ok": True, "cp": state.value}
    if cmd == "ev_contactors":
        board.ev_close_contactors(bool(request.get("closed")))
        return {"ok": True}
    if cmd == "isolation":
        ohm = request.get("ohm")
        board.inject_isolation_resistance(None if ohm is None else float(ohm))
        return {"ok": True}
    if cmd == "estop":
        (board.press_emergency_stop if request.get("active") else
         board.release_emergency_stop)()
        return {"ok": True}
    known = " ".join(["status cp ev_contactors isolation estop", *(commands or {})])
    return {"ok": False, "error": f"unknown cmd {cmd!r}; known: {known}"}


class SimControlServer:
    """The Unix-socket control hook of one simulated board (see the module docstring)."""

    def __init__(self, board: Any, path: str,
                 commands: dict[str, Any] | None = None) -> None:
        self.board = board
        self.path = path
        self.commands = commands or {}
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._client, path=self.path,
                                                           limit=MAX_LINE)
        finally:
            os.umask(old)
        log.info("simulated board control socket", extra={"path": self.path})

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    line = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    writer.write(b'{"ok": false, "error": "line too long"}\n')
                    break
                if not line:
                    break
                try:
                    request = json.loads(line)
                    answer = handle_command(self.board, request, self.commands) if isinstance(request, dict) \
                        else {"ok": False, "error": "expected a JSON object"}
                except json.JSONDecodeError as exc:
                    answer = {"ok": False, "error": f"not JSON: {exc}"}
                except Exception as exc:  # a tester's mistake never stops the board
                    answer = {"ok": False, "error": repr(exc)}
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
