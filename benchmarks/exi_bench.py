"""EXI codec speed: µs per encode+decode of the hot charge-loop messages and a large
ISO-2 CertificateInstallationRes (documents taken from the reference vectors when present).

Run: ``.venv/bin/python benchmarks/exi_bench.py [--josev]``. Target: <= 30 µs for a
CurrentDemandReq encode+decode in pure Python (cars allow ~100 ms per exchange; Josev's
Java bridge costs 12-36 ms per message, FIELD_NOTES).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import exi_schemas as exi  # noqa: E402

VECTORS = ROOT.parent / "shared" / "exi_vectors" / "vectors.jsonl"
CASES = [
    ("DIN CurrentDemandReq", "din70121", "CurrentDemandReq"),
    ("ISO-2 CurrentDemandReq", "iso15118_2", "CurrentDemandReq"),
    ("ISO-2 CurrentDemandRes", "iso15118_2", "CurrentDemandRes"),
    ("ISO-20 DC_ChargeLoopReq", "iso15118_20_dc", "DC_ChargeLoopReq"),
    ("ISO-2 CertificateInstallationRes", "iso15118_2", "CertificateInstallationRes"),
]


def pick(protocol: str, message: str) -> bytes | None:
    """The vector named .../full if any, else the longest one of that message."""
    best = None
    for line in VECTORS.read_text().splitlines():
        v = json.loads(line)
        if v["protocol"] != protocol or v["message"] != message:
            continue
        data = bytes.fromhex(v["exi_hex"])
        if v["id"].endswith("/full"):
            return data
        if best is None or len(data) > len(best):
            best = data
    return best


def measure(data: bytes, schema: str) -> tuple[float, float]:
    msg = exi.decode(data, schema)
    assert exi.encode(msg) == data
    n = max(200, int(200_000 / max(len(data), 40)))
    best_dec = best_enc = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            exi.decode(data, schema)
        t1 = time.perf_counter()
        for _ in range(n):
            exi.encode(msg)
        t2 = time.perf_counter()
        best_dec = min(best_dec, (t1 - t0) / n)
        best_enc = min(best_enc, (t2 - t1) / n)
    return best_dec * 1e6, best_enc * 1e6


JOSEV_VENV = Path("/tmp/pysecc-josev-venv")
JOSEV_SCRIPT = """
import json, os, sys, time, logging
logging.disable(logging.CRITICAL)
os.environ["MESSAGE_LOG_JSON"] = "False"
from iso15118.shared.settings import load_shared_settings
load_shared_settings()
from iso15118.shared.exi_codec import EXI
from iso15118.shared.exificient_exi_codec import ExificientEXICodec
from iso15118.shared.messages.enums import Namespace
NS = {"din70121": Namespace.DIN_MSG_DEF, "iso15118_2": Namespace.ISO_V2_MSG_DEF,
      "iso15118_20_dc": Namespace.ISO_V20_DC}
codec = EXI()
codec.set_exi_codec(ExificientEXICodec())
for label, protocol, hexdata in json.loads(sys.argv[1]):
    data = bytes.fromhex(hexdata)
    try:
        msg = codec.from_exi(data, NS[protocol])
        n = 30
        t0 = time.perf_counter()
        for _ in range(n):
            codec.from_exi(data, NS[protocol])
        t1 = time.perf_counter()
        for _ in range(n):
            codec.to_exi(msg, NS[protocol])
        t2 = time.perf_counter()
        print(json.dumps([label, (t1 - t0) / n * 1e6, (t2 - t1) / n * 1e6]))
    except Exception as exc:
        print(json.dumps([label, None, str(exc)[:100]]))
"""


def josev(cases: list[list[str]]) -> dict[str, tuple]:
    """Josev (PyPI iso15118, EXIficient over py4j/Java) timings, from its own venv in /tmp."""
    import subprocess

    py = JOSEV_VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(JOSEV_VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "iso15118==0.31.2"], check=True)
    out = subprocess.run([str(py), "-c", JOSEV_SCRIPT, json.dumps(cases)], capture_output=True,
                         text=True, timeout=900, cwd="/tmp", check=False)
    return {row[0]: (row[1], row[2]) for row in map(json.loads, out.stdout.splitlines())}


def main() -> int:
    if not VECTORS.is_file():
        print(f"skipped: {VECTORS} is absent")
        return 0
    print(f"{'message':36} {'bytes':>6} {'decode µs':>10} {'encode µs':>10} {'enc+dec µs':>11}")
    cases = []
    for label, protocol, message in CASES:
        data = pick(protocol, message)
        if data is None:
            print(f"{label:36} (no vector)")
            continue
        cases.append([label, protocol, data.hex()])
        dec, enc = measure(data, protocol)
        print(f"{label:36} {len(data):6d} {dec:10.1f} {enc:10.1f} {dec + enc:11.1f}")
    if "--josev" in sys.argv:
        print("\nJosev 0.31.2 (EXIficient via py4j/Java, pydantic models), same documents:")
        for label, (dec, enc) in josev(cases).items():
            if dec is None:
                print(f"{label:36} failed: {enc}")
            else:
                print(f"{label:36} {'':6} {dec:10.0f} {enc:10.0f} {dec + enc:11.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
