"""ISO 15118-20 SECC speed: CPU per charge-loop message (decode + core + encode) for DC and AC,
and request->response latency (p50/p99) with 1 and 10 concurrent in-process sessions.

Run: ``.venv/bin/python benchmarks/iso20_bench.py [--iterations N]``. Prints the figures.
Budget: -20 cars allow 0.5 s per charge-loop exchange; real DC chargers answer in 7-20 ms
(FIELD_NOTES), so the SECC's own share should stay well below 1 ms.

The latency part runs each session's SECC and EVCC as asyncio tasks joined by queues (no
sockets: this measures the SECC stack and event-loop scheduling, not TCP/TLS). "paced" EVs send
a charge-loop request every 50 ms like real cars (all ten in step, so their requests queue
behind each other); "flood" EVs send the next request as soon as the response arrives.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from secc.iso20 import Energy, Iso20Adapter  # noqa: E402
from sim.iso20_loopback import LoopbackCharger, exchange  # noqa: E402
from sim.evcc import Battery, EvccConfig  # noqa: E402
from sim.evcc.iso20 import Iso20Evcc, Iso20Options  # noqa: E402

CASES = [
    ("DC scheduled", "dc", "DC", 1),
    ("DC_BPT dynamic", "dc", "DC_BPT", 2),
    ("AC scheduled", "ac", "AC", 1),
    ("AC_BPT dynamic", "ac", "AC_BPT", 2),
]


def session_in_loop(mode: str, service: str, control_mode: int):
    """A core in its charge loop and the EV's next charge-loop request (bytes)."""
    adapter = Iso20Adapter(Energy(mode))
    core = adapter.new_core()
    evcc = Iso20Evcc(Battery(max_iterations=10_000), EvccConfig(mode=mode),
                     options=Iso20Options(service=service, control_mode=control_mode))
    charger = LoopbackCharger()
    now, out = 0.0, evcc.start(0.0)
    loop_step = f"{mode.upper()}_ChargeLoop"
    while True:
        out, now = exchange(core, adapter, charger, evcc, out, now)
        if out.step == loop_step and evcc.record.loop_iterations >= 2:
            return adapter, core, out.payload_type, out.payload, now


def cpu_per_message(iterations: int) -> None:
    print(f"SECC CPU per charge-loop message ({iterations} messages each; µs)")
    print(f"  {'case':16} {'decode':>8} {'core':>8} {'encode':>8} {'total':>8}")
    for label, mode, service, control_mode in CASES:
        adapter, core, payload_type, payload, now = session_in_loop(mode, service, control_mode)
        t_dec = t_core = t_enc = 0.0
        clock = time.perf_counter
        for _ in range(iterations):
            t0 = clock()
            request = adapter.decode(payload_type, payload)
            t1 = clock()
            reply = core.receive(request.name, request.body, now, request.session_id)
            t2 = clock()
            adapter.encode(reply.response_name, reply.response, core.session_id)
            t3 = clock()
            t_dec += t1 - t0
            t_core += t2 - t1
            t_enc += t3 - t2
            now += 0.1
        assert not core.terminated, core.state
        us = 1e6 / iterations
        print(f"  {label:16} {t_dec * us:8.1f} {t_core * us:8.1f} {t_enc * us:8.1f} "
              f"{(t_dec + t_core + t_enc) * us:8.1f}")


async def _secc(adapter, inbox: asyncio.Queue, outbox: asyncio.Queue) -> None:
    loop = asyncio.get_running_loop()
    core = adapter.new_core(now=loop.time())
    charger = LoopbackCharger()
    while not core.terminated:
        deadline = core.next_deadline()
        timeout = None if deadline is None else max(0.0, deadline - loop.time())
        try:
            payload_type, payload = await asyncio.wait_for(inbox.get(), timeout)
        except TimeoutError:
            reply = core.handle_timer(loop.time())
            if reply is not None and reply.close:
                await outbox.put(None)
                return
            continue
        now = loop.time()
        charger.tick(core, now)
        core.evse.cp_state = "C"
        request = adapter.decode(payload_type, payload)
        reply = core.receive(request.name, request.body, now, request.session_id)
        charger.apply(core, reply.actions, now)
        await outbox.put(adapter.encode(reply.response_name, reply.response, core.session_id))


async def _ev(mode: str, loops: int, interval: float, to_secc: asyncio.Queue,
              from_secc: asyncio.Queue, latencies: list[float]) -> None:
    loop = asyncio.get_running_loop()
    evcc = Iso20Evcc(Battery(max_iterations=loops),
                     EvccConfig(mode=mode, loop_interval=interval))
    out = evcc.start(loop.time())
    while hasattr(out, "payload"):
        delay = out.not_before - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        sent = time.perf_counter()
        await to_secc.put((out.payload_type, out.payload))
        response = await from_secc.get()
        if response is None:
            raise RuntimeError(f"SECC closed the session at {out.step}")
        if out.step.endswith("ChargeLoop"):
            latencies.append(time.perf_counter() - sent)
        out = evcc.receive(*response, loop.time())
    if out.record.failure is not None:
        raise RuntimeError(f"EV session failed: {out.record.failure}")


async def _sessions(count: int, mode: str, loops: int, interval: float) -> list[float]:
    latencies: list[float] = []
    adapter = Iso20Adapter(Energy(mode))
    tasks = []
    for _ in range(count):
        a, b = asyncio.Queue(), asyncio.Queue()
        tasks.append(_secc(adapter, a, b))
        tasks.append(_ev(mode, loops, interval, a, b, latencies))
    await asyncio.gather(*tasks)
    return latencies


def latency(loops: int) -> None:
    print(f"request->response latency of charge-loop messages ({loops} loops per session; ms)")
    print(f"  {'case':26} {'p50':>7} {'p99':>7} {'max':>7} {'n':>6}")
    for mode in ("dc", "ac"):
        for count in (1, 10):
            for label, interval in (("paced 50 ms", 0.05), ("flood", 0.0)):
                samples = asyncio.run(_sessions(count, mode, loops, interval))
                samples.sort()
                p50 = statistics.median(samples) * 1e3
                p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1e3
                name = f"{mode.upper()} x{count} {label}"
                print(f"  {name:26} {p50:7.3f} {p99:7.3f} {samples[-1] * 1e3:7.3f} "
                      f"{len(samples):6d}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--loops", type=int, default=100)
    args = parser.parse_args()
    cpu_per_message(args.iterations)
    latency(args.loops)


if __name__ == "__main__":
    main()
