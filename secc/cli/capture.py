"""``secc capture --iface IF --out FILE.pcap``: record SLAC (EtherType 0x88E1) and V2G (IPv6)
traffic of the PLC interface into a pcap for Wireshark (dsV2Gshark decodes V2G).

Stops on Ctrl-C / SIGTERM, after ``--count`` packets or after ``--duration`` seconds. The
pcap is flushed after every packet, so a capture cut short by a power loss is still usable.
"""

from __future__ import annotations

import signal
import sys

ETH_P_HOMEPLUG = 0x88E1
ETH_P_IPV6 = 0x86DD


def register(subparsers) -> None:
    parser = subparsers.add_parser("capture", help="record SLAC + V2G traffic into a pcap")
    parser.add_argument("--iface", required=True, help="PLC interface")
    parser.add_argument("--out", required=True, help="pcap file to write")
    parser.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    parser.add_argument("--count", type=int, default=0, help="stop after N packets")
    parser.set_defaults(handler=run)


def is_slac_or_v2g(packet) -> bool:
    """HomePlug management frames and IPv6 (SDP, V2GTP/TLS, ICMPv6) only."""
    raw = bytes(packet)
    if len(raw) < 14:
        return False
    ethertype = int.from_bytes(raw[12:14], "big")
    if ethertype == 0x8100 and len(raw) >= 18:
        ethertype = int.from_bytes(raw[16:18], "big")
    return ethertype in (ETH_P_HOMEPLUG, ETH_P_IPV6)


def run(args) -> int:
    import scapy.layers.inet6  # noqa: F401  registers the IPv6 dissectors
    import scapy.layers.l2  # noqa: F401  registers Ethernet for the interface's link type
    from scapy.sendrecv import sniff
    from scapy.utils import PcapWriter

    def stop(signum, frame) -> None:  # noqa: ARG001
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    counted = 0

    def write(packet) -> None:
        nonlocal counted
        writer.write(packet)
        counted += 1

    def started() -> None:
        print(f"capturing SLAC and IPv6 on {args.iface} into {args.out}", flush=True)

    with PcapWriter(args.out, append=False, sync=True, linktype=1) as writer:
        try:
            sniff(iface=args.iface, store=False, prn=write, lfilter=is_slac_or_v2g,
                  count=args.count, timeout=args.duration, started_callback=started)
        except KeyboardInterrupt:
            pass
        except OSError as exc:
            print(f"secc capture: cannot capture on {args.iface}: {exc}", file=sys.stderr)
            return 1
    print(f"{counted} packets written to {args.out}", flush=True)
    return 0
