"""Simulated EV side of ISO 15118-3 SLAC, with knobs to misbehave.

:class:`EvSlac` is sans-I/O like the EVSE machine (``start``/``receive_frame``/
``handle_timer`` return frames to send; ``next_deadline()``), so unit tests can run EV,
simulated modem and EVSE together in virtual time. :func:`run_ev` runs it on a real
interface (a raw socket in the EV's network namespace).

Nominal EV sequence (ISO 15118-3 9.2): CM_SLAC_PARM.REQ (broadcast, retried), collect
CM_SLAC_PARM.CNF for TT_match_response, CM_START_ATTEN_CHAR.IND x3 and CM_MNBC_SOUND.IND x10
(TP_EV_batch_msg_interval apart), answer every CM_ATTEN_CHAR.IND with CM_ATTEN_CHAR.RSP,
after ``decision_delay`` pick the EVSE with the lowest attenuation, CM_SLAC_MATCH.REQ to it
(retried), CM_SLAC_MATCH.CNF gives NID and NMK.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from dataclasses import dataclass, field

from secc.common.logs import layer_logger
from secc.slac import messages as m

log = layer_logger("sim")


@dataclass
class EvMisbehaviour:
    """Ways a real (or broken) car deviates; all off by default."""

    start_delay: float = 0.0           # slow start: wait before the first CM_SLAC_PARM.REQ
    garbage_frames: int = 0            # send this many malformed 0x88E1 frames first
    extra_parm_reqs: int = 0           # resend CM_SLAC_PARM.REQ (same RunID) this many times
    wrong_run_id: bool = False         # sounds and CM_SLAC_MATCH.REQ carry another RunID
    never_send_match_req: bool = False
    skip_atten_char_rsp: bool = False
    restart_after_fail: bool = False   # new RunID and CM_SLAC_PARM.REQ after a failure
    sounds: int = 10                   # number of CM_MNBC_SOUND.IND
    start_atten_char_inds: int = 3


@dataclass
class EvTiming:
    tt_match_response: float = 0.2     # wait for CNFs
    batch_interval: float = 0.02       # TP_EV_batch_msg_interval (20-50 ms)
    atten_results: float = 1.2         # TT_EV_atten_results from START_ATTEN_CHAR
    decision_delay: float = 0.05       # after the first ATTEN_CHAR.IND, then choose
    match_retries: int = 2             # C_EV_match_retry


@dataclass
class EvResult:
    matched: bool
    evse_mac: bytes = b""
    nid: bytes = b""
    nmk: bytes = b""
    run_id: bytes = b""
    reason: str = ""
    atten_char_inds: int = 0


@dataclass
class _Evse:
    mac: bytes
    attenuation: float | None = None


@dataclass
class EvSlac:
    ev_mac: bytes
    misbehaviour: EvMisbehaviour = field(default_factory=EvMisbehaviour)
    timing: EvTiming = field(default_factory=EvTiming)
    run_id: bytes = b""
    result: EvResult | None = None
    state: str = "idle"
    _deadline: float | None = None
    _queue: list[bytes] = field(default_factory=list)  # frames still to send, paced
    _evses: dict[bytes, _Evse] = field(default_factory=dict)
    _tries: int = 0
    _chosen: bytes = b""
    _atten_inds: int = 0
    _restarted: bool = False

    def next_deadline(self) -> float | None:
        return self._deadline

    def start(self, now: float) -> list[bytes]:
        self.state = "delayed"
        self._deadline = now + self.misbehaviour.start_delay
        if self.misbehaviour.start_delay <= 0:
            return self.handle_timer(now)
        return []

    def _new_run(self, now: float) -> list[bytes]:
        self.run_id = os.urandom(8)
        self._evses.clear()
        self._tries = 1
        self.state = "parm"
        self._deadline = now + self.timing.tt_match_response
        frames = [self._garbage(i) for i in range(self.misbehaviour.garbage_frames)]
        parm = m.encode(m.slac_parm_req(m.BROADCAST_MAC, self.ev_mac, self.run_id))
        frames += [parm] * (1 + self.misbehaviour.extra_parm_reqs)
        log.info("EV: CM_SLAC_PARM.REQ", extra={"run_id": self.run_id.hex()})
        return frames

    def _garbage(self, i: int) -> bytes:
        header = m.BROADCAST_MAC + self.ev_mac + b"\x88\xe1"
        junk = [b"\x01\x64\x60\x00\x00\x00", b"\x07\xff\xff", b"\x01\x7c\x60\x00\x00" + bytes(9)]
        return header + junk[i % len(junk)]

    def _wire_run_id(self) -> bytes:
        if self.misbehaviour.wrong_run_id:
            return bytes(b ^ 0xFF for b in self.run_id)
        return self.run_id

    def receive_frame(self, frame: bytes, now: float) -> list[bytes]:
        try:
            mme = m.decode(frame)
        except m.MmeError:
            return []
        if mme.dst not in (self.ev_mac, m.BROADCAST_MAC) or mme.src == self.ev_mac:
            return []
        if mme.mmtype == m.CM_SLAC_PARM_CNF and self.state == "parm" \
                and bytes(mme.run_id) == self.run_id:
            self._evses.setdefault(mme.src, _Evse(mme.src))
            return []
        if mme.mmtype == m.CM_ATTEN_CHAR_IND and self.state in ("sounding", "results") \
                and bytes(mme.run_id) == self.run_id and mme.src in self._evses:
            self._atten_inds += 1
            groups = list(mme.aag)
            self._evses[mme.src].attenuation = sum(groups) / len(groups) if groups else 0.0
            if self.state == "sounding":
                self.state = "results"
                self._deadline = now + self.timing.decision_delay
            if self.misbehaviour.skip_atten_char_rsp:
                return []
            return [m.encode(m.atten_char_rsp(mme.src, self.ev_mac, self.run_id))]
        if mme.mmtype == m.CM_SLAC_MATCH_CNF and self.state == "match" \
                and mme.src == self._chosen and bytes(mme.run_id) == self.run_id:
            self.state = "done"
            self._deadline = None
            self.result = EvResult(True, mme.src, bytes(mme.nid), bytes(mme.nmk), self.run_id,
                                   atten_char_inds=self._atten_inds)
            log.info("EV: matched", extra={"evse": m.mac_str(mme.src),
                                           "nid": bytes(mme.nid).hex()})
        return []

    def handle_timer(self, now: float) -> list[bytes]:
        if self._deadline is None or now < self._deadline:
            return []
        if self.state == "delayed":
            return self._new_run(now)
        if self.state == "parm":
            if self._evses:
                self.state = "sounding"
                mb = self.misbehaviour
                self._queue = [m.encode(m.start_atten_char_ind(
                    self.ev_mac, self.run_id, mb.sounds, 6))] * mb.start_atten_char_inds
                self._queue += [m.encode(m.mnbc_sound_ind(
                    self.ev_mac, self._wire_run_id(), mb.sounds - 1 - i, os.urandom(16)))
                    for i in range(mb.sounds)]
                self._sounding_end = now + self.timing.atten_results
                return self._pace(now)
            if self._tries <= self.timing.match_retries:
                self._tries += 1
                self._deadline = now + self.timing.tt_match_response
                return [m.encode(m.slac_parm_req(m.BROADCAST_MAC, self.ev_mac, self.run_id))]
            return self._fail(now, "no CM_SLAC_PARM.CNF")
        if self.state == "sounding":
            if self._queue:
                return self._pace(now)
            return self._fail(now, "no CM_ATTEN_CHAR.IND")
        if self.state == "results":
            candidates = [e for e in self._evses.values() if e.attenuation is not None]
            if self.misbehaviour.never_send_match_req:
                self.state = "silent"
                self._deadline = None
                return []
            best = min(candidates, key=lambda e: e.attenuation or 0.0)
            self._chosen = best.mac
            self.state = "match"
            self._tries = 1
            self._deadline = now + self.timing.tt_match_response
            return [self._match_req()]
        if self.state == "match":
            if self._tries <= self.timing.match_retries:
                self._tries += 1
                self._deadline = now + self.timing.tt_match_response
                return [self._match_req()]
            return self._fail(now, "no CM_SLAC_MATCH.CNF")
        return []

    def _pace(self, now: float) -> list[bytes]:
        frame = self._queue.pop(0)
        self._deadline = now + self.timing.batch_interval if self._queue else \
            self._sounding_end
        return [frame]

    def _match_req(self) -> bytes:
        return m.encode(m.slac_match_req(self._chosen, self.ev_mac, self._wire_run_id(),
                                         self._chosen))

    def _fail(self, now: float, reason: str) -> list[bytes]:
        log.info("EV: SLAC failed", extra={"reason": reason})
        if self.misbehaviour.restart_after_fail and not self._restarted:
            self._restarted = True
            self.misbehaviour.wrong_run_id = False
            self.misbehaviour.never_send_match_req = False
            return self._new_run(now)
        self.state = "failed"
        self._deadline = None
        self.result = EvResult(False, reason=reason, run_id=self.run_id,
                               atten_char_inds=self._atten_inds)
        return []


def open_ev_socket(iface: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(m.ETH_P_HOMEPLUG))
    sock.bind((iface, m.ETH_P_HOMEPLUG))
    sock.setblocking(False)
    return sock


def interface_mac(iface: str) -> bytes:
    """MAC of ``iface`` in the calling thread's network namespace (/sys shows the host's)."""
    from secc.slac.driver import interface_info

    return interface_info(iface, bring_up=False).mac


async def run_sans_io(machine, sock: socket.socket, first: list[bytes],  # noqa: ANN001
                      done, timeout: float) -> None:  # noqa: ANN001
    """Drive a sans-I/O machine (EV or modem) on a non-blocking raw socket until ``done()``."""
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()

    def readable() -> None:
        for _ in range(64):
            try:
                frame = sock.recv(2048)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # interface gone (test tear-down): stop reading
                loop.remove_reader(sock.fileno())
                break
            for out in machine.receive_frame(frame, loop.time()):
                sock.send(out)
        wake.set()

    loop.add_reader(sock.fileno(), readable)
    try:
        for out in first:
            sock.send(out)
        end = loop.time() + timeout
        while not done() and loop.time() < end:
            deadline = machine.next_deadline()
            wait = max(0.0, min(end, deadline if deadline is not None else end) - loop.time())
            wait = min(wait, 0.1)  # look at done() regularly: it may be set from another thread
            wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wake.wait(), wait)
            for out in machine.handle_timer(loop.time()):
                sock.send(out)
    finally:
        loop.remove_reader(sock.fileno())


async def run_ev(iface: str, misbehaviour: EvMisbehaviour | None = None,
                 timing: EvTiming | None = None, timeout: float = 20.0) -> EvResult:
    """One EV SLAC run on ``iface`` (call inside the EV's network namespace)."""
    mac = await asyncio.to_thread(interface_mac, iface)  # pyroute2 wants its own thread
    ev = EvSlac(mac, misbehaviour or EvMisbehaviour(), timing or EvTiming())
    with open_ev_socket(iface) as sock:
        loop = asyncio.get_running_loop()
        first = ev.start(loop.time())
        await run_sans_io(ev, sock, first, lambda: ev.result is not None, timeout)
    return ev.result or EvResult(False, reason="timeout", run_id=ev.run_id)


def main(argv: list[str] | None = None) -> int:
    """``python -m sim.ev_slac --iface IF``: play the EV's SLAC once against a charger."""
    import argparse
    import json

    from secc.common.logs import setup_logging

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--iface", required=True)
    parser.add_argument("--start-delay", type=float, default=0.0)
    parser.add_argument("--decision-delay", type=float, default=0.05,
                        help="seconds between the first CM_ATTEN_CHAR.IND and MATCH.REQ "
                             "(real cars: ~0.9)")
    parser.add_argument("--garbage", type=int, default=0, help="malformed frames to send first")
    parser.add_argument("--extra-parm-reqs", type=int, default=0)
    parser.add_argument("--wrong-run-id", action="store_true")
    parser.add_argument("--no-match-req", action="store_true")
    parser.add_argument("--restart-after-fail", action="store_true")
    parser.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args(argv)
    setup_logging("kv", "INFO")
    misbehaviour = EvMisbehaviour(
        start_delay=args.start_delay, garbage_frames=args.garbage,
        extra_parm_reqs=args.extra_parm_reqs, wrong_run_id=args.wrong_run_id,
        never_send_match_req=args.no_match_req, restart_after_fail=args.restart_after_fail)
    result = asyncio.run(run_ev(args.iface, misbehaviour,
                                EvTiming(decision_delay=args.decision_delay), args.timeout))
    print(json.dumps({"matched": result.matched, "evse_mac": m.mac_str(result.evse_mac),
                      "nid": result.nid.hex(), "run_id": result.run_id.hex(),
                      "reason": result.reason}))
    return 0 if result.matched else 1


if __name__ == "__main__":
    raise SystemExit(main())
