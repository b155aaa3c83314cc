"""``python -m sim.ev``: one simulated EV plug-in in the current network namespace.

    python -m sim.ev --iface veth-ev --protocol din --mode dc --no-slac
    python -m sim.ev --iface eth1 --protocol iso2 --mode ac --tls --v2g-root v2g_root.pem
    python -m sim.ev --iface eth1 --protocol iso20 --tls --v2g-root v2g_root.pem \
        --vehicle-chain vehicle_chain.pem --vehicle-key vehicle_key.pem \
        --contract-chain contract_chain.pem --contract-key contract_key.pem
    python -m sim.ev --iface veth-ev --protocol iso2 --mode ac --no-slac --pause-resume \
        --control-socket /run/pysecc/sim.sock          # sleeps, BCB toggle, resumes
    python -m sim.ev --iface eth1 --protocol iso2 --tls --v2g-root v2g_root.pem \
        --oem-chain oem_chain.pem --oem-key oem_key.pem     # installs its contract first

Prints the progress lines of the session (layer ``sim``) and, at the end, a JSON summary
(protocol, response times, energy, loops, failure). Exit status 0 when the session ended with
SessionStopRes, 1 when it failed, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from secc.common.logs import setup_logging
from sim.evcc import protocols
from sim.evcc.battery import Battery
from sim.evcc.core import EvccConfig, Misbehaviour, PncContract, ProvisioningCredential
from sim.evcc.runner import EvSessionConfig, run_ev_session
from sim.evcc.wake import ControlSocketLine, bcb_wake_up, signals_hook


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sim.ev", description=__doc__.split("\n")[0])
    p.add_argument("--iface", required=True, help="the EV's PLC (or veth) interface")
    p.add_argument("--protocol", default="din", choices=sorted(protocols.PROTOCOLS),
                   help="preferred protocol, offered first")
    p.add_argument("--mode", default="dc", choices=("dc", "ac"))
    p.add_argument("--offer", nargs="+", metavar="NAME",
                   help="protocols to offer, in priority order (default: preferred first, "
                        "then every other one with this mode)")
    p.add_argument("--vendor-first", action="store_true",
                   help="offer a Tesla-like vendor namespace at priority 1")
    p.add_argument("--tls", action="store_true", help="ask for TLS in SDP")
    p.add_argument("--v2g-root", type=Path,
                   help="V2G root certificate (PEM): verifies the SECC for --tls and the "
                        "certificate provisioning service for --oem-chain")
    p.add_argument("--vehicle-chain", type=Path, metavar="PEM",
                   help="-20 mutual TLS: the vehicle certificate chain (leaf first) the car "
                        "presents; a SECC with OEM roots serves -20 only to a car with one")
    p.add_argument("--vehicle-key", type=Path, metavar="PEM",
                   help="the vehicle certificate's private key")
    pnc = p.add_argument_group(
        "Plug & Charge (ISO 15118-2 and -20; the SECC offers it over --tls only, otherwise "
        "the car falls back to external identification)")
    pnc.add_argument("--contract-chain", type=Path, metavar="PEM",
                     help="contract certificate chain, leaf first (-20: a P-521 contract)")
    pnc.add_argument("--contract-key", type=Path, metavar="PEM",
                     help="the contract certificate's EC private key")
    pnc.add_argument("--oem-chain", type=Path, metavar="PEM",
                     help="ISO-2 contract installation: the car's OEM provisioning certificate "
                          "chain, leaf first; without --contract-chain the car installs its "
                          "contract by CertificateInstallation (needs --oem-key, --v2g-root)")
    pnc.add_argument("--oem-key", type=Path, metavar="PEM",
                     help="the OEM provisioning certificate's EC private key")
    p.add_argument("--no-slac", action="store_true", help="start at SDP (plain veth link)")
    p.add_argument("--soc", type=float, default=30.0, help="start SoC %%")
    p.add_argument("--target-soc", type=float, default=80.0)
    p.add_argument("--capacity-kwh", type=float, default=60.0)
    p.add_argument("--max-iterations", type=int, default=None,
                   help="stop charging after this many charge-loop iterations")
    p.add_argument("--seconds-per-iteration", type=float, default=None,
                   help="simulated charging time per loop iteration (speeds up a demo)")
    p.add_argument("--loop-interval", type=float, default=0.1,
                   help="seconds between charge-loop requests")
    p.add_argument("--pause-resume", action="store_true",
                   help="ISO-2/-20: end with SessionStop(Pause), sleep, wake the charger "
                        "(BCB toggle, with --control-socket), then resume the session")
    p.add_argument("--control-socket", metavar="PATH",
                   help="the simulated board's [sim].control_socket: the car moves its pilot "
                        "and contactors through it (and wakes the charger after a pause)")
    p.add_argument("--sleep", type=float, default=1.0, metavar="SECONDS",
                   help="--pause-resume: how long the car sleeps before its BCB toggle "
                        "(a charger whose own wake-up time comes first wakes it earlier)")
    p.add_argument("--renegotiate-after", type=int, default=None,
                   help="ISO-2/-20: renegotiate the schedule after this many loops")
    bad = p.add_argument_group("misbehaviour (for SECC tests)")
    bad.add_argument("--skip", nargs="+", default=[], metavar="STEP",
                     help="never send these requests (e.g. CableCheck)")
    bad.add_argument("--send-instead", nargs="+", default=[], metavar="STEP=OTHER",
                     help="send OTHER when STEP is due (out of sequence)")
    bad.add_argument("--wrong-session-id", nargs="+", default=[], metavar="STEP")
    bad.add_argument("--stall", nargs="+", default=[], metavar="STEP=SECONDS",
                     help="wait before sending STEP")
    bad.add_argument("--garbage", nargs="+", default=[], metavar="STEP",
                     help="send bytes that are not EXI instead of STEP")
    bad.add_argument("--pnc-misbehave", nargs="+", default=[], choices=sorted(PNC_KNOBS),
                     help="Plug & Charge: break the challenge, signature or certificate")
    p.add_argument("--log-format", default="kv", choices=("kv", "json"))
    return p


#: --pnc-misbehave choice -> Misbehaviour field
PNC_KNOBS = {"wrong-challenge": "pnc_wrong_challenge", "bad-signature": "pnc_bad_signature",
             "expired-certificate": "pnc_expired_certificate",
             "garbage-certificate": "pnc_garbage_certificate"}


def _pairs(items: list[str], convert=str) -> dict:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"expected STEP=VALUE, got {item!r}")
        pairs[key] = convert(value)
    return pairs


def _known_steps(protocol: str, mode: str) -> set[str] | None:
    flows = getattr(protocols.get(protocol).factory, "FLOWS", None)
    if not flows or mode not in flows:
        return None
    return set(flows[mode]) | set(flows[mode].values())


def misbehaviour_from_args(args: argparse.Namespace) -> Misbehaviour:
    known = _known_steps(args.protocol, args.mode)
    named = [*args.skip, *args.wrong_session_id, *args.garbage,
             *(_pairs(args.send_instead)), *_pairs(args.send_instead).values(),
             *_pairs(args.stall, float)]
    unknown = sorted({step for step in named if known is not None and step not in known})
    if unknown:
        raise ValueError(f"unknown step(s) {', '.join(unknown)}; "
                         f"{args.protocol} {args.mode} has {', '.join(sorted(known or ()))}")
    return Misbehaviour(
        skip=frozenset(args.skip), send_instead=_pairs(args.send_instead),
        wrong_session_id=frozenset(args.wrong_session_id), stall=_pairs(args.stall, float),
        garbage=frozenset(args.garbage), pause_instead_of_terminate=args.pause_resume,
        renegotiate_after=args.renegotiate_after,
        **{PNC_KNOBS[name]: True for name in args.pnc_misbehave})


def config_from_args(args: argparse.Namespace) -> EvSessionConfig:
    if args.tls and args.v2g_root is None:
        raise ValueError("--tls needs --v2g-root")
    if args.mode not in protocols.get(args.protocol).modes:
        raise ValueError(f"{args.protocol} has no {args.mode.upper()} mode")
    if (args.vehicle_chain is None) != (args.vehicle_key is None):
        raise ValueError("--vehicle-chain and --vehicle-key go together")
    contract = None
    if (args.contract_chain is None) != (args.contract_key is None):
        raise ValueError("--contract-chain and --contract-key go together")
    if args.contract_chain is not None:
        try:
            contract = PncContract.from_pem(args.contract_chain.read_bytes(),
                                            args.contract_key.read_bytes())
        except (OSError, ValueError, TypeError) as exc:
            raise ValueError(f"cannot load the contract credential: {exc}") from None
    provisioning = _provisioning_from_args(args)
    if args.sleep < 0:
        raise ValueError("--sleep must be >= 0")
    line = None if args.control_socket is None else ControlSocketLine(args.control_socket)
    offers = None
    if args.offer:
        offers = protocols.default_offers(args.offer, args.mode, vendor_first=args.vendor_first)
    return EvSessionConfig(
        interface=args.iface, protocol=args.protocol, mode=args.mode, offers=offers,
        vendor_first=args.vendor_first, tls=args.tls, v2g_root=args.v2g_root,
        vehicle_tls=(args.vehicle_chain, args.vehicle_key) if args.vehicle_chain else None,
        slac=not args.no_slac,
        battery=Battery(capacity_wh=args.capacity_kwh * 1000, soc=args.soc,
                        target_soc=args.target_soc, max_iterations=args.max_iterations),
        evcc=EvccConfig(mode=args.mode, loop_interval=args.loop_interval,
                        repeat_interval=0.1, seconds_per_iteration=args.seconds_per_iteration,
                        provisioning=provisioning),
        misbehaviour=misbehaviour_from_args(args),
        resume_after_pause=args.pause_resume, contract=contract,
        on_signals=None if line is None else signals_hook(line),
        wake_up=None if line is None or not args.pause_resume
        else bcb_wake_up(line, sleep_s=args.sleep))


def _provisioning_from_args(args: argparse.Namespace) -> ProvisioningCredential | None:
    """The OEM provisioning credential of a car that installs its contract (ISO-2 only:
    CertificateInstallation), or None without --oem-chain."""
    if (args.oem_chain is None) != (args.oem_key is None):
        raise ValueError("--oem-chain and --oem-key go together")
    if args.oem_chain is None:
        return None
    if args.v2g_root is None:
        raise ValueError("--oem-chain needs --v2g-root: the root the CPS chain must lead to")
    if "iso2" not in (args.offer or protocols.PROTOCOLS):
        raise ValueError("--oem-chain installs a contract over ISO 15118-2 only: offer iso2")
    try:
        return ProvisioningCredential.from_pem(args.oem_chain.read_bytes(),
                                               args.oem_key.read_bytes(),
                                               args.v2g_root.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"cannot load the OEM provisioning credential: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    setup_logging(args.log_format, "INFO")
    result = asyncio.run(run_ev_session(config))
    print(json.dumps(result.summary(), indent=2), flush=True)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
