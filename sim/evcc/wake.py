"""The simulated car's side of a paused session's sleep: waking the charger again.

After SessionStop(Pause) a real car sleeps; the charger switches its oscillator off (X1) and
offers no communication. To resume, the car wakes the charger with a BCB toggle (ISO 15118-3
§7.6): it closes S2 for TP_EV_vald_state_duration (200-400 ms, CP B -> C) and opens it again
(-> B); the charger answers with the 5 % PWM and the car starts SDP again. A charger that wakes
first (its own wake-up time, B1 -> B2) needs no toggle: the car sees the 5 % PWM and goes.

``bcb_wake_up(line, sleep_s=...)`` builds the ``EvSessionConfig.wake_up`` hook that does this
through a ``PilotLine``: whatever moves the car's pilot and reads the charger's signal. Two are
here: ``ControlSocketLine`` (a ``secc run`` sim board's ``[sim].control_socket``, the CLI's
``--control-socket``) and ``BoardLine`` (an in-process ``hal.sim.SimBoard``, the vehicle plant of
the demo and the tests). The runner also drives the car's pilot and contactors through the line
while charging (``signals_hook``), as a car does.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from sim.evcc.core import VehicleSignals

#: ISO 15118-3 TP_EV_vald_state_duration: 200-400 ms in each state of the toggle
TOGGLE_STATE_S = 0.3
#: how long the car waits for the 5 % PWM after its toggle before it gives up
PWM_WITHIN_S = 3.0
#: how often the car looks at the pilot while it waits
POLL_S = 0.02
HLC_DUTY = 5.0

#: ``EvSessionConfig.wake_up``: called after SessionStop(Pause); returns once the charger
#: offers communication again (raises ``WakeUpFailed`` when it does not)
WakeUpHook = Callable[[], Awaitable[None]]


class WakeUpFailed(Exception):
    """The charger did not come back with the 5 % PWM."""


class PilotLine(Protocol):
    """The car's end of the control pilot."""

    async def set_pilot(self, state: str) -> None:
        """Pull CP to ``state`` (A..D): the car's S2 / plug."""

    async def set_contactors(self, closed: bool) -> None:
        """The car's own contactors (DC: battery to the inlet)."""

    async def duty_percent(self) -> float | None:
        """The charger's PWM duty, None when its oscillator is off (X1) or it drives -12 V."""


def is_hlc_duty(duty: float | None) -> bool:
    return duty is not None and abs(duty - HLC_DUTY) < 0.5


async def wait_for_hlc_pwm(line: PilotLine, within: float) -> bool:
    """True once the charger drives 5 % PWM, False after ``within`` seconds without it."""
    deadline = time.monotonic() + within
    while True:
        if is_hlc_duty(await line.duty_percent()):
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(POLL_S)


def bcb_wake_up(line: PilotLine, sleep_s: float = 1.0, toggle_state_s: float = TOGGLE_STATE_S,
                pwm_within_s: float = PWM_WITHIN_S,
                on_toggle: Callable[[], None] | None = None) -> WakeUpHook:
    """The car's sleep and wake-up: it sleeps in B for ``sleep_s``, at least
    ``toggle_state_s`` (so the charger's debounce sees B before the toggle's C; woken earlier
    by the charger's own 5 % PWM: no toggle then), makes a BCB toggle, and waits up to
    ``pwm_within_s`` for the 5 % PWM. ``on_toggle`` is told when the toggle starts (tests)."""

    async def wake_up() -> None:
        await line.set_pilot("B")
        if await wait_for_hlc_pwm(line, max(sleep_s, toggle_state_s)):
            return   # the charger woke first (B1 -> B2)
        if on_toggle is not None:
            on_toggle()
        await line.set_pilot("C")
        await asyncio.sleep(toggle_state_s)
        await line.set_pilot("B")
        if not await wait_for_hlc_pwm(line, pwm_within_s):
            raise WakeUpFailed(f"no 5 % PWM within {pwm_within_s:g} s after the BCB toggle")

    return wake_up


def signals_hook(line: PilotLine) -> Callable[[VehicleSignals], Awaitable[None]]:
    """An ``EvSessionConfig.on_signals`` hook playing the car's pilot and contactors on
    ``line`` (only what changed)."""
    applied: dict[str, Any] = {}

    async def apply(signals: VehicleSignals) -> None:
        if applied.get("pilot") != signals.pilot:
            await line.set_pilot(signals.pilot)
            applied["pilot"] = signals.pilot
        if applied.get("contactors") != signals.contactors_closed:
            await line.set_contactors(signals.contactors_closed)
            applied["contactors"] = signals.contactors_closed

    return apply


class ControlSocketLine:
    """The pilot of a ``secc run`` simulated board through its ``[sim].control_socket``
    (JSON lines, hal/sim_control.py). Unix sockets cross network namespaces."""

    def __init__(self, path: str) -> None:
        self.path = str(path)

    async def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        reader, writer = await asyncio.open_unix_connection(self.path)
        try:
            writer.write(json.dumps(request).encode() + b"\n")
            await writer.drain()
            answer = json.loads(await reader.readline() or b"{}")
        finally:
            writer.close()
        if not answer.get("ok"):
            raise WakeUpFailed(f"control socket {self.path} refused {request}: {answer}")
        return answer

    async def set_pilot(self, state: str) -> None:
        await self.ask({"cmd": "cp", "state": state})

    async def set_contactors(self, closed: bool) -> None:
        await self.ask({"cmd": "ev_contactors", "closed": closed})

    async def duty_percent(self) -> float | None:
        status = await self.ask({"cmd": "status"})
        return status["duty_percent"] if status.get("pwm") == "pwm" else None


class BoardLine:
    """The pilot of an in-process ``hal.sim.SimBoard``. Pass the board's loop when the car
    runs in another thread (another network namespace): calls then run on that loop."""

    def __init__(self, board: Any, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.board = board
        self.loop = loop

    async def _on_board(self, call: Callable[[], Any]) -> Any:
        if self.loop is None or self.loop is asyncio.get_running_loop():
            return call()

        async def run() -> Any:
            return call()
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(run(), self.loop))

    async def set_pilot(self, state: str) -> None:
        await self._on_board(lambda: self.board.ev_set_pilot(state))

    async def set_contactors(self, closed: bool) -> None:
        await self._on_board(lambda: self.board.ev_close_contactors(closed))

    async def duty_percent(self) -> float | None:
        def read() -> float | None:
            signal = self.board.pilot_signal
            return signal.duty_percent if signal.kind.value == "pwm" else None
        return await self._on_board(read)
