"""``secc doctor [--board FILE] [--json]``: one command for a misbehaving charger.

Runs every check of ``secc.doctor`` for one charging point and prints each finding with its
fix; exit 0 when nothing failed, 1 when something did, 2 when the board file is invalid.
"""

from __future__ import annotations

import asyncio
import json
import sys

DEFAULT_BOARD = "/etc/pysecc/boards/left.toml"
MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "skip": "skip"}


def register(subparsers) -> None:
    parser = subparsers.add_parser("doctor", help="check a charger and say how to fix what "
                                                  "is wrong (PLC, modem, certificates, TLS, "
                                                  "bus, bridge, CSMS)")
    parser.add_argument("--board", default=DEFAULT_BOARD,
                        help=f"board TOML file (default {DEFAULT_BOARD})")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument("--no-set-key", action="store_true",
                        help="do not send CM_SET_KEY to the modem (it sets a new random key)")
    parser.add_argument("--bus-wait", type=float, default=1.5,
                        help="seconds to wait for the bridge's retained state (default 1.5)")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from secc.config import ConfigError, load_board_config
    from secc.doctor import Status, run_doctor, worst

    try:
        config = load_board_config(args.board)
    except ConfigError as exc:
        if args.json:
            print(json.dumps({"board": args.board, "result": "fail", "findings": [
                {"check": "board.file", "status": "fail", "summary": str(issue),
                 "fix": "edit the board file; secc board check FILE lists every problem"}
                for issue in exc.issues]}))
        else:
            print(f"FAIL board.file  the board file is invalid:\n{exc}")
        return 2
    findings = asyncio.run(run_doctor(config, set_key=not args.no_set_key,
                                      bus_wait=args.bus_wait))
    result = worst(findings)
    if args.json:
        print(json.dumps({"board": args.board, "result": result.value,
                          "findings": [f.as_dict() for f in findings]}, indent=1))
    else:
        width = max(len(f.check) for f in findings)
        for f in findings:
            print(f"{MARK[f.status.value]} {f.check:<{width}}  {f.summary}")
            if f.fix and f.status in (Status.FAIL, Status.WARN):
                print(f"     {'':<{width}}  fix: {f.fix}")
        print(f"\n{result.value.upper()}: {sum(f.status is Status.FAIL for f in findings)} "
              f"failed, {sum(f.status is Status.WARN for f in findings)} warnings")
    sys.stdout.flush()
    return 1 if result is Status.FAIL else 0
