"""The SLAC tester (ISO 15118-3, tested ISO 15118-5 style): the EV side of the matching process
and the SECC's local HomePlug Green PHY modem, on raw Ethernet (EtherType 0x88E1) in the EV
namespace of the veth link.

The SECC's host frames leave its end of the veth and arrive here, so this one socket plays

* the **EV** (its own MAC): CM_SLAC_PARM.REQ, CM_START_ATTEN_CHAR.IND, CM_MNBC_SOUND.IND,
  CM_ATTEN_CHAR.RSP, CM_VALIDATE.REQ, CM_SLAC_MATCH.REQ, each buildable with any field broken;
* the SECC's **local modem** (catalogue ‡, MAC 00:b0:52:..): it answers CM_SET_KEY.REQ (QCA
  firmware result 0x01) and VS_NW_INFO.REQ (the EV's modem joins once CM_SLAC_MATCH.CNF went
  out), and injects one CM_ATTEN_PROFILE.IND to the host for every sound the EV sends.

It uses the MME layouts of :mod:`secc.slac.messages` (construct definitions and builders), never
the SECC's state machine (secc/slac/evse.py), driver, nor the EV simulator (sim/ev_slac.py).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from secc.slac import messages as m

# ISO 15118-3 Table A.1 / the catalogue (N3 timer_cfg): seconds
TT_MATCH_RESPONSE = 0.2
TT_MATCH_SEQUENCE = 0.4
TP_MATCH_SEQUENCE = 0.1
TT_EVSE_MATCH_MNBC = 0.6
TT_EV_ATTEN_RESULTS = 1.2
TT_EVSE_MATCH_SESSION = 10.0
TT_EVSE_SLAC_INIT_MIN = 20.0
TT_EVSE_SLAC_INIT_MAX = 50.0
TP_EV_BATCH_MSG_INTERVAL = 0.03
T_CONN_MAX_COMM = 8.0
TP_MATCH_LEAVE = 1.0
C_EV_MATCH_RETRY = 2
C_EV_MATCH_MNBC = 10

SLACK = 0.0   # extra time granted under load (the long-timer module raises it)

MODEM_MAC = bytes.fromhex("00b052c0ffee")
QCA_SET_KEY_OK = 0x01


@dataclass
class Received:
    at: float
    mme: m.Mme
    raw: bytes


@dataclass
class SlacTester:
    iface: str
    ev_mac: bytes = b""
    secc_mac: bytes = b""
    modem_mac: bytes = MODEM_MAC
    set_key_delay: float = 0.0          # the modem's time to program a key
    answer_set_key: bool = True
    inbox: list[Received] = field(default_factory=list)
    set_keys: list[Received] = field(default_factory=list)   # CM_SET_KEY.REQ seen by the modem
    nw_info_requests: int = 0
    ev_joined: bool = False             # the modem lists the EV's modem in VS_NW_INFO.CNF
    plugged_at: float = 0.0             # when the car plugged in (CP B), monotonic
    _sock: socket.socket | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    # --- lifecycle ------------------------------------------------------------------------
    async def __aenter__(self) -> SlacTester:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(m.ETH_P_HOMEPLUG))
        sock.bind((self.iface, m.ETH_P_HOMEPLUG))
        sock.setblocking(False)
        self._sock = sock
        if not self.ev_mac:
            self.ev_mac = sock.getsockname()[4][:6]
        asyncio.get_running_loop().add_reader(sock.fileno(), self._on_readable)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    def clear(self) -> None:
        self.inbox.clear()

    # --- wire -------------------------------------------------------------------------------
    def send(self, mme: m.Mme | bytes) -> float:
        frame = mme if isinstance(mme, bytes) else m.encode(mme)
        assert self._sock is not None
        self._sock.send(frame)
        return time.monotonic()

    def _on_readable(self) -> None:
        assert self._sock is not None
        while True:
            try:
                frame, address = self._sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                break
            if address[2] == socket.PACKET_OUTGOING:
                continue
            try:
                mme = m.decode(frame)
            except m.MmeError:
                continue
            if mme.src in (self.ev_mac, self.modem_mac):
                continue
            got = Received(time.monotonic(), mme, frame)
            if self._modem(got):
                continue
            self.inbox.append(got)
        self._changed.set()

    def _modem(self, got: Received) -> bool:
        """The SECC's local modem: True when the frame was for it (not for the EV)."""
        mme = got.mme
        if mme.mmtype == m.CM_SET_KEY_REQ:
            self.secc_mac = mme.src
            self.set_keys.append(got)
            self.ev_joined = False
            if self.answer_set_key:
                cnf = m.set_key_cnf(mme.src, self.modem_mac, QCA_SET_KEY_OK, 0, mme.my_nonce)
                if self.set_key_delay:
                    asyncio.get_running_loop().call_later(self.set_key_delay, self.send, cnf)
                else:
                    self.send(cnf)
            return True
        if mme.mmtype == m.VS_NW_INFO_REQ:
            self.nw_info_requests += 1
            key = self.set_keys[-1].mme if self.set_keys else None
            stations = [dict(mac=self.ev_mac, tei=2, bridge_mac=self.ev_mac, avg_tx_rate=9,
                             avg_rx_rate=9)] if self.ev_joined else []
            networks = [dict(nid=bytes(key.nid), stations=stations, cco_mac=self.modem_mac)] \
                if key is not None else []
            self.send(m.vs_nw_info_cnf(mme.src, self.modem_mac, networks))
            return True
        if mme.mmtype in (m.VS_SW_VER_REQ, m.VS_RS_DEV_REQ):
            return True
        if mme.mmtype == m.CM_SLAC_MATCH_CNF:
            self.ev_joined = True   # the EV's modem takes the NMK and joins (TT_match_join)
        return False

    # --- expectations -----------------------------------------------------------------------
    async def expect(self, mmtype: int, within: float,
                     where: Callable[[m.Mme], bool] | None = None,
                     since: float | None = None) -> Received:
        """The first frame of ``mmtype`` (matching ``where``) received after ``since``."""
        deadline = time.monotonic() + within + SLACK
        start = since if since is not None else 0.0
        while True:
            for got in self.inbox:
                if got.at >= start and got.mme.mmtype == mmtype and (where is None
                                                                    or where(got.mme)):
                    return got
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = ", ".join(g.mme.name for g in self.inbox if g.at >= start) or "nothing"
                raise AssertionError(f"no {m.mmtype_name(mmtype)} within {within:g} s "
                                     f"(received: {seen})")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except (TimeoutError, asyncio.TimeoutError):
                pass

    async def expect_none(self, mmtype: int, during: float, since: float | None = None,
                          where: Callable[[m.Mme], bool] | None = None) -> None:
        """No frame of ``mmtype`` for ``during`` seconds (from now; ``since``: count earlier)."""
        start = since if since is not None else time.monotonic()
        await asyncio.sleep(during)
        bad = [g for g in self.inbox if g.at >= start and g.mme.mmtype == mmtype
               and (where is None or where(g.mme))]
        assert not bad, f"unexpected {m.mmtype_name(mmtype)} ({len(bad)}x)"

    def count(self, mmtype: int, since: float = 0.0) -> int:
        return sum(1 for g in self.inbox if g.at >= since and g.mme.mmtype == mmtype)

    async def wait_set_key(self, within: float = 3.0) -> Received:
        deadline = time.monotonic() + within
        while not self.set_keys:
            if time.monotonic() > deadline:
                raise AssertionError("the SECC never sent CM_SET_KEY.REQ to its modem")
            await asyncio.sleep(0.01)
        return self.set_keys[-1]

    # --- EV messages (valid ones; tests break fields with ``over``) ---------------------------
    def parm_req(self, rid: bytes, **over: Any) -> m.Mme:
        return _over(m.slac_parm_req(m.BROADCAST_MAC, self.ev_mac, rid), over)

    def start_atten_char(self, rid: bytes, num_sounds: int = C_EV_MATCH_MNBC,
                         **over: Any) -> m.Mme:
        time_out = round(TT_EVSE_MATCH_MNBC * 10)
        return _over(m.start_atten_char_ind(self.ev_mac, rid, num_sounds, time_out), over)

    def mnbc_sound(self, run_id: bytes, count: int) -> m.Mme:
        return m.mnbc_sound_ind(self.ev_mac, run_id, count, os.urandom(16))

    def atten_profile(self, db: int = 20) -> m.Mme:
        return m.atten_profile_ind(self.secc_mac, self.modem_mac, self.ev_mac,
                                   [db] * m.NUM_GROUPS)

    def atten_char_rsp(self, rid: bytes, **over: Any) -> m.Mme:
        return _over(m.atten_char_rsp(self.secc_mac, self.ev_mac, rid), over)

    def validate_req(self, **over: Any) -> m.Mme:
        return _over(m.validate_req(self.secc_mac, self.ev_mac, timer=0,
                                    result=m.VALIDATE_READY), over)

    def match_req(self, rid: bytes, **over: Any) -> m.Mme:
        return _over(m.slac_match_req(self.secc_mac, self.ev_mac, rid, self.secc_mac), over)

    # --- procedures ---------------------------------------------------------------------------
    async def parm(self, run_id: bytes) -> Received:
        """CM_SLAC_PARM.REQ with up to C_EV_match_retry repetitions, each waiting
        TT_match_response; returns the CNF."""
        for attempt in range(1 + C_EV_MATCH_RETRY):
            sent = self.send(self.parm_req(run_id))
            try:
                return await self.expect(m.CM_SLAC_PARM_CNF, TT_MATCH_RESPONSE, since=sent,
                                         where=lambda x: bytes(x.run_id) == run_id)
            except AssertionError:
                if attempt == C_EV_MATCH_RETRY:
                    raise
        raise AssertionError("unreachable")

    async def sound(self, run_id: bytes, sounds: int = C_EV_MATCH_MNBC,
                    announced: int | None = None, profiles: bool = True,
                    start: m.Mme | None = None, sound_run_id: bytes | None = None) -> float:
        """3x CM_START_ATTEN_CHAR.IND, then ``sounds`` CM_MNBC_SOUND.IND every
        TP_EV_batch_msg_interval, each followed by the modem's CM_ATTEN_PROFILE.IND.
        Returns the time the last sound went out."""
        announced = sounds if announced is None else announced
        start = start or self.start_atten_char(run_id, announced)
        for _ in range(3):
            self.send(start)
        last = time.monotonic()
        for i in range(sounds):
            await asyncio.sleep(TP_EV_BATCH_MSG_INTERVAL)
            last = self.send(self.mnbc_sound(sound_run_id or run_id, announced - 1 - i))
            if profiles:
                self.send(self.atten_profile())
        return last

    async def atten_char(self, run_id: bytes, sounds: int = C_EV_MATCH_MNBC) -> Received:
        """Sounding, then the SECC's CM_ATTEN_CHAR.IND (within TT_EV_atten_results)."""
        last = await self.sound(run_id, sounds)
        return await self.expect(m.CM_ATTEN_CHAR_IND, TT_EV_ATTEN_RESULTS, since=last - 1.0,
                                 where=lambda x: bytes(x.run_id) == run_id)

    async def to_match(self, run_id: bytes, validate: bool = False) -> None:
        """PARM, sounding, ATTEN_CHAR.IND/RSP (and a CM_VALIDATE step 1 answered): the EV may
        send CM_SLAC_MATCH.REQ next."""
        await self.parm(run_id)
        await self.atten_char(run_id)
        self.send(self.atten_char_rsp(run_id))
        if validate:
            sent = self.send(self.validate_req())
            await self.expect(m.CM_VALIDATE_CNF, TT_MATCH_RESPONSE, since=sent)


def _over(mme: m.Mme, over: dict[str, Any]) -> m.Mme:
    """``mme`` with body fields replaced (``dst``/``src`` replace the Ethernet addresses)."""
    for key, value in over.items():
        if key in ("dst", "src"):
            setattr(mme, key, value)
        else:
            mme.body[key] = value
    return mme


def run_id() -> bytes:
    """A fresh random 8-byte RunID per matching (ISO 15118-3)."""
    return os.urandom(8)
