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
        await Bridge(config).run()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
