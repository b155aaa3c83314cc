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

    board_logging = args.log_format == "kv" and args.log_level == "INFO"  # CLI defaults
    if board_logging:
        setup_logging(config.logging.format, config.logging.level)
    return asyncio.run(_main(config, args.iface or config.plc.interface, args.board,
                             board_logging))


async def _main(config, iface: str, path: str = "", board_logging: bool = False) -> int:
    from secc.boards import board_from_config
    from secc.common.sdnotify import SystemdNotifier, watchdog_loop
    from secc.daemon import SeccDaemon, bus_from_config, server_tls_context
    from secc.service import status_source

    bus, authorizer = bus_from_config(config)
    notifier = SystemdNotifier()
    daemon = SeccDaemon(config, board_from_config(config), iface, authorizer=authorizer,
                        bus=bus, tls_context=server_tls_context(config), notifier=notifier)
    status_text = status_source(daemon)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    started = config
    if path:
        loop.add_signal_handler(signal.SIGHUP, lambda: reload_board(daemon, path, started,
                                                                    board_logging, notifier))

    async def watched() -> None:
        await daemon.ready.wait()
        await watchdog_loop(notifier, status_text)

    watchdog = loop.create_task(watched(), name="systemd-watchdog")
    try:
        await daemon.run(stop)
    except _startup_errors() as exc:
        print(f"secc run: cannot start on {iface}: {exc}", file=sys.stderr)
        return 2
    finally:
        watchdog.cancel()
        notifier.close()
    return 0


def reload_board(daemon, path: str, started, board_logging: bool, notifier) -> None:
    """SIGHUP: re-read the board file; apply what is safe, refuse the rest line by line."""
    from secc.common.logs import layer_logger, setup_logging
    from secc.config import ConfigError, load_board_config
    from secc.service import merged_config, reload_plan

    log = layer_logger("cli")
    notifier.reloading()
    try:
        try:
            new = load_board_config(path)
        except ConfigError as exc:
            log.error("SIGHUP: board file invalid, nothing changed",
                      extra={"file": path, "problems": "; ".join(str(i) for i in exc.issues)})
            return
        plan = reload_plan(daemon.config, new, started)
        for line in plan.refuse:
            log.warning(f"SIGHUP: refused {line}")
        if not plan.apply:
            log.info("SIGHUP: nothing to apply", extra={"file": path,
                                                        "refused": len(plan.refuse)})
            return
        daemon.apply_config(merged_config(daemon.config, new, plan))
        if board_logging and any(k.startswith("[logging]") for k in plan.apply):
            setup_logging(daemon.config.logging.format, daemon.config.logging.level)
        log.info("SIGHUP: applied", extra={"file": path, "applied": ", ".join(plan.apply),
                                           "refused": len(plan.refuse)})
    finally:
        notifier.ready()
