"""``secc run``: the daemon for one charging point."""

from __future__ import annotations

import asyncio
import signal
import sys


def _startup_errors() -> tuple[type[BaseException], ...]:
    from hal.board import BoardError
    from secc.tls.context import TLSConfigError
    from secc.v2gtp.link import InterfaceError

    return (InterfaceError, TLSConfigError, BoardError, OSError, TimeoutError)


def register(subparsers) -> None:
    parser = subparsers.add_parser("run", help="run the SECC daemon for one charging point")
    parser.add_argument("--board", required=True, help="board config TOML file")
    parser.add_argument("--iface", help="PLC interface (default: [plc].interface)")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from secc.config import ConfigError, load_board_config

    try:
        config = load_board_config(args.board)
    except ConfigError as exc:
        print(exc)
        return 2
    from secc.common.logs import setup_logging

    if args.log_format == "kv" and args.log_level == "INFO":  # CLI defaults: the board decides
        setup_logging(config.logging.format, config.logging.level)
    return asyncio.run(_main(config, args.iface or config.plc.interface))


async def _main(config, iface: str) -> int:
    from secc.boards import board_from_config
    from secc.daemon import SeccDaemon, bus_from_config, server_tls_context

    bus, authorizer = bus_from_config(config)
    daemon = SeccDaemon(config, board_from_config(config), iface, authorizer=authorizer,
                        bus=bus, tls_context=server_tls_context(config))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await daemon.run(stop)
    except _startup_errors() as exc:
        print(f"secc run: cannot start on {iface}: {exc}", file=sys.stderr)
        return 2
    return 0
