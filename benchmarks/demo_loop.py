"""`make demo` N times in a row with two CPU hogs running; prints the tally (issue 13).

    python benchmarks/demo_loop.py [--runs 20] [--no-hogs] [--timeout-per-run 180]

Each run is the real ``python -m sim.demo`` (six charging sessions); a run passes when it
exits 0. For every failed run the lines naming the failure are printed. The hogs are killed
on the way out (also on Ctrl-C).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CPU_HOG = "while True: pass"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--no-hogs", action="store_true")
    p.add_argument("--timeout-per-run", type=float, default=180.0)
    args = p.parse_args()
    hogs = [] if args.no_hogs else [subprocess.Popen([sys.executable, "-c", CPU_HOG])
                                    for _ in range(2)]
    passed = 0
    durations: list[float] = []
    try:
        for run in range(1, args.runs + 1):
            started = time.monotonic()
            try:
                proc = subprocess.run([sys.executable, "-m", "sim.demo"], cwd=REPO,
                                      env={**os.environ, "PYTHONPATH": str(REPO)},
                                      capture_output=True, text=True,
                                      timeout=args.timeout_per_run)
                ok, out = proc.returncode == 0, proc.stdout + proc.stderr
            except subprocess.TimeoutExpired as exc:
                ok, out = False, f"timed out after {exc.timeout:g} s"
            durations.append(time.monotonic() - started)
            passed += ok
            tally = next((line.strip() for line in out.splitlines()
                          if "simulated charging sessions completed" in line), "")
            print(f"run {run:>2}: {'pass' if ok else 'FAIL'} {durations[-1]:5.1f} s  {tally}",
                  flush=True)
            if not ok:
                for line in out.splitlines():
                    if any(k in line for k in ("FAILED", "failure=", "no response", "Error",
                                               "stalled", "timed out")):
                        print(f"        {line.strip()[:220]}")
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    load = "no hogs" if args.no_hogs else "two CPU hogs"
    print(f"\nmake demo with {load}: {passed} of {args.runs} runs passed "
          f"(median {sorted(durations)[len(durations) // 2]:.1f} s per run)")
    return 0 if passed == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())
