"""``secc info``: what this build contains (handy on a freshly flashed CCU)."""

from __future__ import annotations

import platform


def register(subparsers) -> None:
    parser = subparsers.add_parser("info", help="print version and platform")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from secc import __version__

    print(f"pysecc {__version__} python {platform.python_version()} {platform.machine()}")
    return 0
