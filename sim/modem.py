"""Simulated EVSE-side HomePlug Green PHY modem (a QCA7000/7005 as seen from its host).

What the real modem does for the SECC, and this one imitates:

* answers CM_SET_KEY.REQ from its host with CM_SET_KEY.CNF (``set_key_failures`` makes the
  first N answers fail, like QCA7005s sometimes do; ``set_key_silent`` drops them instead);
* turns every CM_MNBC_SOUND.IND an EV sends into a CM_ATTEN_PROFILE.IND to the host with
  configurable attenuation (per EV MAC, so cross-talk tests can give a neighbour's car a
  high value); ``send_profiles=False`` imitates a QCA7420 that never sends them;
* notices the host's CM_SLAC_MATCH.CNF and, ``join_delay`` later, lists the EV's modem as a
  station of the host's network in VS_NW_INFO.CNF;
* answers VS_SW_VER.REQ (firmware string, device class) and VS_RS_DEV.REQ (forgets key and
  stations).

:class:`SimModem` is sans-I/O (``receive_frame(frame, now)`` returns frames to send);
:func:`run_modem` puts it on an interface. The modem taps the SECC's interface with an
all-EtherType socket so it sees the host's transmissions as a modem on the other end of the
host's Ethernet would; the SECC driver hears the modem's frames the same way.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from secc.common.logs import layer_logger
from secc.slac import messages as m
from secc.slac.driver import open_homeplug_socket
from sim.ev_slac import run_sans_io

log = layer_logger("sim")

DEFAULT_MODEM_MAC = bytes.fromhex("00b052a0c0de")
HOST_REQUESTS = frozenset({m.CM_SET_KEY_REQ, m.VS_SW_VER_REQ, m.VS_RS_DEV_REQ, m.VS_NW_INFO_REQ})


@dataclass
class SimModem:
    mac: bytes = DEFAULT_MODEM_MAC
    host_mac: bytes | None = None          # learned from the first CM_SET_KEY.REQ if None
    attenuation_db: int = 20               # every group of every profile
    attenuation_by_ev: dict[bytes, int] = field(default_factory=dict)
    num_groups: int = m.NUM_GROUPS
    send_profiles: bool = True
    set_key_failures: int = 0              # next N CM_SET_KEY.REQ are answered with failure
    set_key_silent: bool = False           # failures are silence instead of a bad result
    success_result: int = 0x01             # QCA firmware says 0x01 on success
    join_delay: float = 0.05
    firmware: str = "MAC-QCA7000-1.2.5.3207-00-20200603-CS"
    device_class: int = 0x22
    answers: dict[str, int] = field(default_factory=dict)  # MME name -> count (for tests)
    nid: bytes = b""
    nmk: bytes = b""
    ev_modem_mac: bytes = bytes.fromhex("00b052ee0001")
    joined_at: float | None = None
    mute: bool = False                     # a hung modem: answers nothing at all

    def next_deadline(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> list[bytes]:
        return []

    def drop_link(self) -> None:
        """The EV's modem leaves the network (cable cut, EV gone)."""
        self.joined_at = None

    def _count(self, name: str) -> None:
        self.answers[name] = self.answers.get(name, 0) + 1

    def _for_me(self, mme: m.Mme) -> bool:
        return mme.dst in (self.mac, m.QUALCOMM_LOCAL_MAC, m.BROADCAST_MAC)

    def receive_frame(self, frame: bytes, now: float) -> list[bytes]:
        try:
            mme = m.decode(frame)
        except m.MmeError:
            return []
        if mme.src == self.mac or self.mute:
            return []
        if self.host_mac is None and self._for_me(mme) and mme.mmtype in HOST_REQUESTS:
            self.host_mac = mme.src  # the first station that manages us is our host
        if self.host_mac is None:
            return []
        if mme.src == self.host_mac:
            if mme.mmtype == m.CM_SET_KEY_REQ and self._for_me(mme):
                return self._on_set_key(mme)
            return self._from_host(mme, now)
        if mme.mmtype == m.CM_MNBC_SOUND_IND and self.send_profiles:
            aag = [self.attenuation_by_ev.get(mme.src, self.attenuation_db)] * self.num_groups
            self._count("CM_ATTEN_PROFILE.IND")
            return [m.encode(m.atten_profile_ind(self.host_mac, self.mac, mme.src, aag))]
        return []

    def _on_set_key(self, mme: m.Mme) -> list[bytes]:
        if self.set_key_failures > 0:
            self.set_key_failures -= 1
            self._count("CM_SET_KEY.REQ(failed)")
            if self.set_key_silent:
                return []
            bad = 0x00 if self.success_result == 0x01 else 0x01
            return [m.encode(m.set_key_cnf(mme.src, self.mac, bad, 0, mme.my_nonce))]
        self.nid, self.nmk = bytes(mme.nid), bytes(mme.new_key)
        self.joined_at = None
        self._count("CM_SET_KEY.CNF")
        log.info("modem: new NMK set", extra={"nid": self.nid.hex()})
        return [m.encode(m.set_key_cnf(mme.src, self.mac, self.success_result, 0,
                                       mme.my_nonce))]

    def _from_host(self, mme: m.Mme, now: float) -> list[bytes]:
        assert self.host_mac is not None
        if mme.mmtype == m.CM_SLAC_MATCH_CNF and bytes(mme.nid) == self.nid:
            self.joined_at = now + self.join_delay  # the EV's modem will join our network
            return []
        if not self._for_me(mme):
            return []
        if mme.mmtype == m.VS_NW_INFO_REQ:
            self._count("VS_NW_INFO.CNF")
            stations = []
            if self.joined_at is not None and now >= self.joined_at:
                stations.append(dict(mac=self.ev_modem_mac, tei=2, bridge_mac=self.ev_modem_mac,
                                     avg_tx_rate=9, avg_rx_rate=9))
            networks = [dict(nid=self.nid, stations=stations, cco_mac=self.mac)] \
                if self.nid else []
            return [m.encode(m.vs_nw_info_cnf(self.host_mac, self.mac, networks))]
        if mme.mmtype == m.VS_SW_VER_REQ:
            self._count("VS_SW_VER.CNF")
            return [m.encode(m.vs_sw_ver_cnf(self.host_mac, self.mac, self.firmware,
                                             self.device_class))]
        if mme.mmtype == m.VS_RS_DEV_REQ:
            self._count("VS_RS_DEV.CNF")
            self.nid, self.nmk, self.joined_at = b"", b"", None
            return [m.encode(m.vs_rs_dev_cnf(self.host_mac, self.mac))]
        return []


async def run_modem(iface: str, modem: SimModem, stop: Callable[[], bool],
                    timeout: float = 60.0,
                    on_ready: Callable[[], None] | None = None) -> SimModem:
    """Serve ``modem`` on ``iface`` until ``stop()`` is true (e.g. a ``threading.Event``'s
    ``is_set``); call inside the SECC's network namespace. ``on_ready`` runs once the socket
    listens."""
    sock: socket.socket = open_homeplug_socket(iface)
    with sock:
        if on_ready is not None:
            on_ready()
        await run_sans_io(modem, sock, [], stop, timeout)
    return modem


def main(argv: list[str] | None = None) -> int:
    """``python -m sim.modem --iface IF``: stand in for the charger's QCA7000 on a bench link."""
    import argparse
    import asyncio
    import signal
    import threading

    from secc.common.logs import setup_logging

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--iface", required=True)
    parser.add_argument("--attenuation", type=int, default=20, help="dB in every group")
    parser.add_argument("--set-key-failures", type=int, default=0)
    parser.add_argument("--no-profiles", action="store_true", help="behave like a QCA7420")
    parser.add_argument("--join-delay", type=float, default=0.05)
    parser.add_argument("--duration", type=float, default=3600.0)
    args = parser.parse_args(argv)
    setup_logging("kv", "INFO")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    modem = SimModem(attenuation_db=args.attenuation, set_key_failures=args.set_key_failures,
                     send_profiles=not args.no_profiles, join_delay=args.join_delay)
    try:
        asyncio.run(run_modem(args.iface, modem, stop.is_set, args.duration))
    except KeyboardInterrupt:
        pass
    print(modem.answers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
