"""HAL figures: MCU frame codec cost, command round trip over a real pty (pyserial host <->
simulated MCU firmware), and how fast the simulated board runs on virtual time.

Run: ``.venv/bin/python benchmarks/hal_bench.py`` (a few seconds, one core).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hal.board import DcCapabilities  # noqa: E402
from hal.mcu_protocol import (  # noqa: E402
    Frame,
    FrameDecoder,
    LinkTiming,
    MsgType,
    Status,
    StatusFlag,
    encode_frame,
)
from hal.mcu_sim import PtyMcu, SimulatedMcu  # noqa: E402
from hal.pilot import PilotSignal  # noqa: E402
from hal.serial_board import SerialBoard  # noqa: E402
from hal.sim import SimBoard  # noqa: E402
from secc.common.logs import setup_logging  # noqa: E402


def bench_codec(n: int = 20_000) -> None:
    status = Status(2, StatusFlag.CONTACTORS_CLOSED, 50, 400_000, 100_000, 5_000_000, 0,
                    1_234_567, 0, (250, 300)).encode()
    frame = Frame(MsgType.STATUS, 0, status)
    start = time.perf_counter()
    for _ in range(n):
        wire = encode_frame(frame)
    encode_us = (time.perf_counter() - start) / n * 1e6
    decoder = FrameDecoder()
    start = time.perf_counter()
    for _ in range(n):
        decoder.feed(wire)
    decode_us = (time.perf_counter() - start) / n * 1e6
    print(f"STATUS frame ({len(wire)} B on the wire): encode {encode_us:.1f} us, "
          f"decode {decode_us:.1f} us")


async def bench_pty(n: int = 200) -> None:
    mcu = SimulatedMcu()
    runner, path, slave = PtyMcu.open_pty(mcu)
    await runner.start()
    board = SerialBoard(path, timing=LinkTiming(), capabilities=DcCapabilities(1000, 200, 150e3))
    try:
        await board.start()
        await board.wait_connected()
        acked, proven = [], []
        for i in range(n):
            start = time.perf_counter()
            await board._drive_pilot(PilotSignal.hlc() if i % 2 else PilotSignal.x1())
            acked.append(time.perf_counter() - start)
        for _ in range(n // 4):
            start = time.perf_counter()
            await board.close_contactors()
            proven.append(time.perf_counter() - start)
            await board.open_contactors()
        def ms(values: list[float], q: float) -> float:
            return sorted(values)[int(q * (len(values) - 1))] * 1000
        print(f"command -> ACK over pty: median {statistics.median(acked) * 1000:.2f} ms, "
              f"p99 {ms(acked, 0.99):.2f} ms ({n} commands)")
        print(f"close_contactors incl. STATUS feedback: median "
              f"{statistics.median(proven) * 1000:.2f} ms, p99 {ms(proven, 0.99):.2f} ms")
        print(f"link stats: {board.link.stats}")
    finally:
        await board.close()
        await runner.stop()
        os.close(runner.fd)
        os.close(slave)


async def bench_sim() -> None:
    board = SimBoard()
    board.ev_set_pilot("C")
    board.advance(0.1)
    await board.close_contactors()
    board.ev_close_contactors(True)
    await board.set_dc_setpoint(450, 100)
    start = time.perf_counter()
    board.advance(60.0)
    wall = time.perf_counter() - start
    print(f"simulated board: 60 s of CurrentDemand (10 ms ticks) in {wall * 1000:.0f} ms "
          f"({60 / wall:.0f}x real time)")


def main() -> int:
    setup_logging("kv", "ERROR")
    bench_codec()
    asyncio.run(bench_pty())
    asyncio.run(bench_sim())
    return 0


if __name__ == "__main__":
    sys.exit(main())
