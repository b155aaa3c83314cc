"""``python -m ocpp_bridge --config FILE``: run the OCPP 2.0.1 bridge until killed."""

from __future__ import annotations

import argparse
import asyncio
import sys

from ocpp_bridge.config import ConfigError, load
from secc.common.logs import FORMATTERS, layer_logger, setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ocpp_bridge")
    parser.add_argument("--config", required=True, help="bridge TOML file")
    parser.add_argument("--log-format", choices=sorted(FORMATTERS), default="kv")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    setup_logging(args.log_format, args.log_level)
    try:
        config = load(args.config)
    except ConfigError as exc:
        layer_logger("ocpp").error(f"bad configuration: {exc}")
        return 2
    from ocpp_bridge.app import Bridge

    async def run() -> None:
        bridge = Bridge(config)
        notify = asyncio.ensure_future(_systemd(bridge))
        try:
            await bridge.run()
        finally:
            notify.cancel()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        return 0
    return 0


async def _systemd(bridge) -> None:
    """READY=1 once the bridge serves the bus (the CSMS may be down: it queues), then the
    watchdog pings and the status line (secc.common.sdnotify)."""
    from secc.common.sdnotify import SystemdNotifier, watchdog_loop

    notifier = SystemdNotifier()
    if not notifier.enabled:
        await asyncio.Event().wait()
    await bridge.bus.wait_connected()
    notifier.ready(bridge_status(bridge))
    await watchdog_loop(notifier, lambda: bridge_status(bridge))


def bridge_status(bridge) -> str:
    """``systemctl status`` line: bus, CSMS link, security profile, queue."""
    bus = "bus connected" if bridge.bus.connected else "bus DOWN"
    profile = bridge.config.csms.security_profile
    if bridge.online:
        csms = f"CSMS connected (security profile {profile})"
    elif bridge.cp is not None:
        csms = f"CSMS registration {bridge.registration or 'pending'}"
    else:
        csms = "CSMS offline"
    return f"{bus}, {csms}, {bridge.queue.pending()} queued"


if __name__ == "__main__":
    sys.exit(main())
