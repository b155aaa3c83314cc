"""The optional SalesTariff a board offers with its ISO 15118-2 schedule (sans-I/O).

``[v2g.tariff]`` in the board file (``SalesTariffConfig``) describes the tariff as price levels
over time from the start of the schedule; ``tariff_entries`` cuts it to what one
SAScheduleTuple may carry: the same period as the PMaxSchedule it travels with (ISO 15118-2
§8.5.2.13: a tuple's SalesTariff and PMaxSchedule describe the same time span, from the
ChargeParameterDiscoveryRes on) and, together with the PMaxSchedule's entries, no more entries
than the car's MaxEntriesSAScheduleTuple. The PMax entries come first (they bound the power);
when no entry is left over the tariff is left out (it is optional).

Who signs it: for Contract (Plug & Charge) payment a SalesTariff travels signed by the
secondary actor (the mobility operator); this SECC holds no such signed tariff, so a Contract
session is offered the PMaxSchedule alone. For ExternalPayment (EIM) the tariff is sent
unsigned (docs/conformance.md, "SalesTariff, hooks and meter info").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: SalesTariffEntry elements per SalesTariff in the ISO-2 schema
MAX_TARIFF_ENTRIES = 1024
#: RelativeTimeInterval duration bound in the ISO-2 schema (s)
MAX_DURATION = 86400


@dataclass(frozen=True)
class SalesTariffConfig:
    """``[v2g.tariff]``: an optional SalesTariff offered with the ISO-2 SAScheduleTuple.

    ``entry_starts_s``: where each tariff entry begins, seconds from the schedule's start
    (the first is 0, strictly increasing); ``entry_price_levels``: its EPriceLevel (0 is the
    cheapest, below ``price_levels``); ``entry_relative_prices_percent``: optional, a
    ConsumptionCost (costKind relativePricePercentage, from 0 W) per entry."""

    enabled: bool = False
    sales_tariff_id: int = 1
    description: str = ""
    price_levels: int = 1
    entry_starts_s: tuple[int, ...] = (0,)
    entry_price_levels: tuple[int, ...] = (0,)
    entry_relative_prices_percent: tuple[int, ...] = ()

    def cross_check(self) -> Iterable[tuple[str, str]]:
        starts = self.entry_starts_s
        if not starts or starts[0] != 0:
            yield "entry_starts_s", f"expected a list starting at 0, got {list(starts)}"
        elif any(b <= a for a, b in zip(starts, starts[1:], strict=False)):
            yield "entry_starts_s", f"expected strictly increasing starts, got {list(starts)}"
        if len(starts) > MAX_TARIFF_ENTRIES:
            yield "entry_starts_s", (f"expected at most {MAX_TARIFF_ENTRIES} entries, got "
                                     f"{len(starts)}")
        if len(self.entry_price_levels) != len(starts):
            yield "entry_price_levels", (f"expected one level per entry_starts_s entry "
                                         f"({len(starts)}), got {len(self.entry_price_levels)}")
        bad = [lv for lv in self.entry_price_levels if not 0 <= lv < self.price_levels]
        if bad:
            yield "entry_price_levels", (f"expected levels in 0..{self.price_levels - 1} "
                                         f"(below price_levels), got {bad}")
        prices = self.entry_relative_prices_percent
        if prices and len(prices) != len(starts):
            yield "entry_relative_prices_percent", (
                f"expected none or one per entry_starts_s entry ({len(starts)}), "
                f"got {len(prices)}")
        if any(not 0 <= p <= 4_294_967_295 for p in prices):
            yield "entry_relative_prices_percent", "expected unsignedInt amounts (0 or more)"


@dataclass(frozen=True)
class TariffEntry:
    start: int
    duration: int | None          # set on the last entry only (like the PMaxSchedule's)
    price_level: int
    relative_price_percent: int | None


def tariff_entries(config: SalesTariffConfig, horizon: int,
                   budget: int | None, elapsed: int = 0) -> list[TariffEntry]:
    """The tariff's entries for a schedule covering ``horizon`` seconds from now, at most
    ``budget`` of them (None: no limit but the schema's). Empty: leave the tariff out.

    ``elapsed``: the tariff's own clock started that many seconds ago (a resumed session's
    tuple continued, [V2G2-741]): entries already over are left out, the running one starts
    now (0), the later ones ``elapsed`` earlier than configured."""
    limit = MAX_TARIFF_ENTRIES if budget is None else min(budget, MAX_TARIFF_ENTRIES)
    if not config.enabled or limit < 1:
        return []
    starts = config.entry_starts_s
    rows = [(max(0, start - elapsed), config.entry_price_levels[i],
             config.entry_relative_prices_percent[i]
             if config.entry_relative_prices_percent else None)
            for i, start in enumerate(starts)
            if start - elapsed < horizon and (i + 1 == len(starts) or starts[i + 1] > elapsed)
            ][:limit]
    # one interval lasts at most a day (the schema's bound): a longer last entry is repeated
    if horizon - rows[-1][0] > MAX_DURATION and len(rows) < limit:
        rows.append((horizon - MAX_DURATION, *rows[-1][1:]))
    last = len(rows) - 1
    return [TariffEntry(start, min(horizon - start, MAX_DURATION) if i == last else None,
                        level, price) for i, (start, level, price) in enumerate(rows)]
