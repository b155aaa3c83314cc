"""PhysicalValueType (DIN 70121 / ISO 15118-2): value × 10^multiplier, value a 16-bit short."""

from __future__ import annotations

from typing import Any

SHORT_MIN, SHORT_MAX = -32768, 32767


def split(x: float) -> tuple[int, int]:
    """(value, multiplier) with the finest multiplier in -3..3 whose value fits a short."""
    if x == 0:
        return 0, 0
    for multiplier in (-3, -2, -1, 0, 1, 2, 3):
        value = round(x / 10**multiplier)
        if SHORT_MIN <= value <= SHORT_MAX:
            # drop trailing zeros a real charger would not send (4000 * 10^-1, not 40000)
            while multiplier < 0 and value % 10 == 0 and value != 0:
                value //= 10
                multiplier += 1
            return value, multiplier
    return (SHORT_MAX if x > 0 else SHORT_MIN), 3


def physical(cls: Any, x: float, unit: str | None) -> Any:
    """A generated PhysicalValueType instance for ``x`` in ``unit``."""
    value, multiplier = split(x)
    return cls(multiplier=multiplier, unit=unit, value=value)


def to_float(pv: Any | None, default: float | None = None) -> float | None:
    if pv is None:
        return default
    return pv.value * 10.0 ** pv.multiplier
