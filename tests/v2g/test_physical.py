from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from secc.v2g.physical import physical, split, to_float


@dataclass
class PV:
    multiplier: int
    unit: str | None
    value: int


def test_split_prefers_compact_values():
    assert split(400.0) == (400, 0)
    assert split(123.4) == (1234, -1)
    assert split(0) == (0, 0)
    assert split(150_000) == (15000, 1)


@given(st.floats(min_value=-3e7, max_value=3e7, allow_nan=False))
def test_round_trip_within_resolution(x):
    pv = physical(PV, x, "W")
    assert -32768 <= pv.value <= 32767 and -3 <= pv.multiplier <= 3
    assert abs(to_float(pv) - x) <= max(abs(x) * 1e-3, 1e-3) + 0.5 * 10.0 ** pv.multiplier
