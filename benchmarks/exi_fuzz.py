"""Mutation fuzzing of the EXI decoders: >= 1 000 000 corrupted messages (bit flips,
truncation, insertion, deletion, duplication, junk) derived from the reference vectors and the
real-car captures. Prints the crash count: anything but ExiDecodeError, or a decode slower than
0.5 s, is a crash.

    .venv/bin/python benchmarks/exi_fuzz.py [--count N] [--seed S]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from exi_schemas import fuzzing  # noqa: E402

SHARED = ROOT.parent / "shared"


def seeds() -> list[tuple[str, bytes]]:
    out = list(fuzzing.iter_vector_seeds(str(SHARED / "exi_vectors" / "vectors.jsonl")))
    realcar = SHARED / "realcar" / "messages.jsonl"
    if realcar.is_file():
        for line in realcar.read_text().splitlines()[:300]:
            m = json.loads(line)
            out.append((m["protocol"], bytes.fromhex(m["exi_hex"])))
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if not (SHARED / "exi_vectors").is_dir():
        print(f"skipped: {SHARED} is absent")
        return 0
    t0 = time.perf_counter()
    report = fuzzing.run(seeds(), args.count, seed=args.seed, slow_limit_s=0.5)
    dt = time.perf_counter() - t0
    print(f"exi fuzz: {report.inputs} mutated inputs in {dt:.1f} s "
          f"({report.inputs / dt:.0f}/s): {report.rejected} rejected with ExiDecodeError, "
          f"{report.accepted} still valid, crashes: {len(report.crashes)}, "
          f"slowest decode {report.slowest_s * 1e3:.1f} ms")
    for schema, data, error in report.crashes[:20]:
        print(f"  CRASH {schema} {error}: {data.hex()}")
    return 1 if report.crashes else 0


if __name__ == "__main__":
    sys.exit(main())
