"""A virtual-time PLC medium for SLAC tests: EVSE machine, simulated modem and EVs.

Every frame a station sends reaches every other station (PLC is a shared medium and the
EVSE host hears its modem), delivered in order; time only moves to the next deadline, so a
40 s timer costs microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from secc.slac import messages as m
from secc.slac.evse import EvseSlac, SendFrame
from sim.ev_slac import EvSlac
from sim.modem import SimModem

EVSE_MAC = bytes.fromhex("02000000e5e1")
EV_MAC = bytes.fromhex("02000000ee01")
EV2_MAC = bytes.fromhex("02000000ee02")


@dataclass
class Medium:
    evse: EvseSlac
    modem: SimModem
    evs: list[EvSlac] = field(default_factory=list)
    now: float = 0.0
    actions: list = field(default_factory=list)      # every non-frame EVSE action
    sent: list[tuple[float, str, m.Mme]] = field(default_factory=list)  # (t, who, mme)
    extra_stations: list = field(default_factory=list)  # other sans-I/O machines

    def _stations(self):
        return [("modem", self.modem), *[(f"ev{i}", ev) for i, ev in enumerate(self.evs)],
                *[(f"x{i}", s) for i, s in enumerate(self.extra_stations)]]

    def _record(self, who: str, frame: bytes) -> None:
        try:
            self.sent.append((self.now, who, m.decode(frame)))
        except m.MmeError:
            pass

    def evse_do(self, actions: list) -> None:
        """Carry out EVSE actions: frames go on the medium, the rest is recorded."""
        pending: list[tuple[str, bytes]] = []
        for action in actions:
            if isinstance(action, SendFrame):
                pending.append(("evse", action.frame))
            else:
                self.actions.append(action)
        self._deliver(pending)

    def inject(self, frame: bytes, who: str = "test") -> None:
        self._deliver([(who, frame)])

    def _deliver(self, pending: list[tuple[str, bytes]]) -> None:
        rounds = 0
        while pending:
            rounds += 1
            assert rounds < 10_000, "frame storm"
            who, frame = pending.pop(0)
            self._record(who, frame)
            if who != "evse":
                self.evse_do_later = self.evse.receive_frame(frame, self.now)
                for action in self.evse_do_later:
                    if isinstance(action, SendFrame):
                        pending.append(("evse", action.frame))
                    else:
                        self.actions.append(action)
            for name, station in self._stations():
                if name != who:
                    pending += [(name, out) for out in station.receive_frame(frame, self.now)]

    def next_time(self) -> float | None:
        deadlines = [self.evse.next_deadline()] + [s.next_deadline() for _, s in
                                                   self._stations()]
        deadlines = [d for d in deadlines if d is not None]
        return min(deadlines) if deadlines else None

    def run_until(self, end: float, stop=None) -> None:
        """Advance virtual time to ``end`` (or until ``stop()``), firing every timer."""
        for _ in range(100_000):
            if stop is not None and stop():
                return
            t = self.next_time()
            if t is None or t > end:
                self.now = max(self.now, end)
                return
            self.now = max(self.now, t)
            self.evse_do(self.evse.handle_timer(self.now))
            for name, station in self._stations():
                self._deliver([(name, out) for out in station.handle_timer(self.now)])
        raise AssertionError("virtual time did not advance")

    def start_evs(self) -> None:
        for i, ev in enumerate(self.evs):
            self._deliver([(f"ev{i}", f) for f in ev.start(self.now)])

    def of_type(self, kind: type) -> list:
        return [a for a in self.actions if isinstance(a, kind)]

    def frames(self, mmtype: int, who: str | None = None) -> list[m.Mme]:
        return [mme for _, w, mme in self.sent
                if mme.mmtype == mmtype and (who is None or w == who)]
