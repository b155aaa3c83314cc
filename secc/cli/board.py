"""``secc board check FILE``: validate a board configuration before deploying it.

Prints the effective configuration (every default filled in, as TOML) and exits 0, or prints
every problem, one per line as ``file: [section].key: expected ..., got ...``, and exits 2.
"""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser("board", help="board configuration tools")
    actions = parser.add_subparsers(dest="board_command", metavar="ACTION", required=True)
    check = actions.add_parser("check", help="validate a board TOML file and print the result")
    check.add_argument("file", help="board configuration, e.g. board_configs/sim.toml")
    check.set_defaults(handler=run_check)


def run_check(args) -> int:
    from secc.config import ConfigError, dumps_board_config, load_board_config

    try:
        config = load_board_config(args.file)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        print(f"{args.file}: {len(exc.issues)} problem(s)", file=sys.stderr)
        return 2
    print(f"# {args.file}: valid")
    print(dumps_board_config(config), end="")
    return 0
