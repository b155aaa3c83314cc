"""Josev's EVCC with named upstream fixes applied in memory — for diagnostic runs only.

Run by Josev's own interpreter (``interop/.venv-josev``), never by ours. ``make interop`` does
not use it: the plain run reports Josev as it is on PyPI. ``josev_interop.py --patch-josev
pr435`` uses it to look past a known Josev bug and see how far our SECC gets; the report then
says which patches were on.

Usage: ``python josev_evcc_patched.py PATCH[,PATCH...] EVCC_CONFIG.json``
"""

from __future__ import annotations

import sys


def pr435() -> None:
    """EcoG-io/iso15118 PR #435 (open): ISO 15118-20 ``ChargingScheduleType`` has an optional
    choice (``minOccurs="0"``) of AbsolutePriceSchedule / PriceLevelSchedule, but Josev's
    model demands exactly one, so a schema-valid ScheduleExchangeRes without price information
    fails Josev's validation (ChargingSchedule and, for BPT, DischargingSchedule). Drop that
    validator wherever a model carries it."""
    from iso15118.shared.messages.iso15118_20 import common_messages

    for model in vars(common_messages).values():
        validators = getattr(model, "__pre_root_validators__", None)
        if isinstance(model, type) and validators:
            model.__pre_root_validators__ = [
                v for v in validators if v.__name__ != "either_price_levels_or_absolute_prices"]


PATCHES = {"pr435": pr435}


def main() -> None:
    names = [n for n in sys.argv[1].split(",") if n]
    for name in names:
        PATCHES[name]()
        print(f"josev_evcc_patched: applied {name}", flush=True)
    sys.argv = [sys.argv[0], *sys.argv[2:]]
    from iso15118.evcc.main import run

    run()


if __name__ == "__main__":
    main()
