"""The ``secc`` command line.

Each subcommand lives in its own module in this package and exposes
``register(subparsers)``; modules are discovered, so adding a subcommand never touches
this file. A subcommand's handler returns the process exit code.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from secc import __version__
from secc.common.logs import FORMATTERS, setup_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="secc", description="pysecc SECC firmware stack")
    parser.add_argument("--version", action="version", version=f"pysecc {__version__}")
    parser.add_argument("--log-format", choices=sorted(FORMATTERS), default="kv")
    parser.add_argument("--log-level", default="INFO")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    setup_logging(args.log_format, args.log_level)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
