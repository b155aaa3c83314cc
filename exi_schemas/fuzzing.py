"""Mutation fuzzing of the decoders: the contract is that malformed input only ever raises
``ExiDecodeError`` (with a bit offset), quickly, whatever the bytes are.

Used by the CI test (tens of thousands of inputs) and ``benchmarks/exi_fuzz.py`` (millions).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from . import decode
from ._runtime import ExiDecodeError


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One random corruption: bit flips, truncation, insertion, deletion, splice or junk."""
    b = bytearray(data)
    kind = rng.randrange(7)
    if kind == 0 or len(b) < 2:  # flip 1..4 bits
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(b) * 8) if b else 0
            if b:
                b[i // 8] ^= 0x80 >> (i % 8)
    elif kind == 1:  # truncate
        del b[rng.randrange(1, len(b)):]
    elif kind == 2:  # insert random bytes
        i = rng.randrange(len(b) + 1)
        b[i:i] = rng.randbytes(rng.randint(1, 8))
    elif kind == 3:  # delete a run
        i = rng.randrange(len(b))
        del b[i:i + rng.randint(1, 8)]
    elif kind == 4:  # overwrite a byte with an extreme value (absurd lengths / codes)
        b[rng.randrange(1, len(b))] = rng.choice((0x00, 0xFF, 0x7F, 0x80))
    elif kind == 5:  # duplicate a slice (repeated elements, loops)
        i = rng.randrange(len(b))
        j = min(len(b), i + rng.randint(1, 32))
        b[j:j] = b[i:j]
    else:  # random bytes after the header
        b = bytearray(b[:1]) + rng.randbytes(rng.randint(0, 64))
    return bytes(b)


@dataclass
class FuzzReport:
    inputs: int = 0
    rejected: int = 0  # ExiDecodeError
    accepted: int = 0  # still a valid document
    crashes: list[tuple[str, bytes, str]] = field(default_factory=list)  # (schema, input, error)
    slowest_s: float = 0.0


def run(seeds: Iterable[tuple[str, bytes]], count: int, seed: int = 0,
        slow_limit_s: float = 1.0) -> FuzzReport:
    """Decode ``count`` mutations of the (schema, bytes) seeds; collect anything but
    ``ExiDecodeError`` (and any single decode slower than ``slow_limit_s``) as a crash."""
    rng = random.Random(seed)
    pool = list(seeds)
    for schema, data in pool:  # warm up: import every codec module before timing decodes
        try:
            decode(data, schema)
        except ExiDecodeError:
            pass
    report = FuzzReport()
    for _ in range(count):
        schema, data = rng.choice(pool)
        bad = mutate(data, rng)
        t0 = time.perf_counter()
        try:
            decode(bad, schema)
            report.accepted += 1
        except ExiDecodeError as exc:
            if not isinstance(exc.bit_offset, int) or exc.bit_offset < 0:
                report.crashes.append((schema, bad, f"bad bit offset {exc.bit_offset!r}"))
            report.rejected += 1
        except Exception as exc:  # noqa: BLE001 - this is what the fuzzer looks for
            report.crashes.append((schema, bad, f"{type(exc).__name__}: {exc}"))
        dt = time.perf_counter() - t0
        report.slowest_s = max(report.slowest_s, dt)
        if dt > slow_limit_s:
            report.crashes.append((schema, bad, f"slow decode {dt:.3f} s"))
        report.inputs += 1
    return report


def iter_vector_seeds(path: str) -> Iterator[tuple[str, bytes]]:
    import json

    with open(path, encoding="utf-8") as fh:
        for line in fh:
            v = json.loads(line)
            yield v["protocol"], bytes.fromhex(v["exi_hex"])
