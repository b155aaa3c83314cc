"""Differential test against EXIficient (Josev's EXICodec.jar): random valid messages of every
message type are encoded by our codec, decoded and re-encoded by EXIficient (via py4j in its own
venv under /tmp, installed on first use), and the bytes compared.

    .venv/bin/python benchmarks/exi_josev_diff.py [--per-type N]

Needs java and network access to PyPI the first time. Known differences that are not ours:
Josev's JSON layer (JAXB/EclipseLink) fails on binary elements in some messages
("javax/mail/internet/MimeMultipart") and materialises absent optional primitives on the way
back (ISO-2 MeteringReceiptReq/SAScheduleTupleID, SalesTariff/NumEPriceLevels,
SalesTariffEntry/EPriceLevel = 0), so those documents re-encode longer: EXIficient read our
bytes as the same document plus the defaults.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import subprocess
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "exi"))

import exi_schemas as exi  # noqa: E402

VENV = Path("/tmp/pysecc-josev-venv")
NAMESPACES = {
    "din": "urn:din:70121:2012:MsgDef",
    "iso2": "urn:iso:15118:2:2013:MsgDef",
    "iso20": "urn:iso:std:iso:15118:-20:CommonMessages",
    "iso20-dc": "urn:iso:std:iso:15118:-20:DC",
    "iso20-ac": "urn:iso:std:iso:15118:-20:AC",
}
ROUND_TRIP = """
import json, sys, logging
logging.disable(logging.CRITICAL)
from py4j.java_gateway import JavaGateway
from iso15118.shared.settings import JAR_FILE_PATH
gw = JavaGateway.launch_gateway(classpath=JAR_FILE_PATH, die_on_exit=True,
                                javaopts=["--add-opens", "java.base/java.lang=ALL-UNNAMED"])
codec = gw.jvm.com.siemens.ct.exi.main.cmd.EXICodec()
out = []
for ns, hexdata in json.load(sys.stdin):
    try:
        js = codec.decode(bytes.fromhex(hexdata), ns)
        enc = codec.encode(js, ns) if js is not None else None
        out.append(bytes(enc).hex() if enc is not None else "ERR decode")
    except Exception as exc:
        out.append("ERR " + str(exc).splitlines()[1][:120] if "\\n" in str(exc) else "ERR")
print(json.dumps(out))
"""


def documents(per_type: int) -> list[tuple[str, str, str]]:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    import test_exi_properties as props

    plain = props.simple_value

    def non_empty(desc, facets):  # empty values: EXIficient writes them differently (README)
        strategy = plain(desc, facets)
        if desc in ("str", "b64", "hex") and facets[3] is None:
            return strategy.filter(lambda v: len(v) > 0)
        return strategy

    props.simple_value = non_empty
    out = []
    for case in props.message_types():
        schema, root, body_field = case.values
        if schema not in NAMESPACES:
            continue
        mod = exi.schema_module(schema)
        cls = next(row[2] for row in mod.GLOBAL_ELEMENTS if row[1] == root)
        if body_field is None:
            strategy = props.message(mod, cls)
        else:
            body_cls = next(f[4] for f in mod.FIELDS[mod.BodyType] if f[0] == body_field)
            strategy = st.builds(
                lambda h, b, f=body_field, c=cls, m=mod: c(header=h, body=m.BodyType(**{f: b})),
                props.message(mod, mod.MessageHeaderType), props.message(mod, body_cls))
        found: list = []

        def keep(msg, found=found) -> None:
            props.unique_ids(msg, itertools.count())
            found.append(msg)

        def run(msg) -> None:
            keep(msg)

        settings(max_examples=per_type, deadline=None, database=None, phases=[Phase.generate],
                 suppress_health_check=list(HealthCheck))(given(strategy)(run))()
        out += [(schema, case.id, exi.encode(m, element=root).hex()) for m in found]
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-type", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    py = VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "iso15118==0.31.2"], check=True)
    docs = documents(args.per_type)
    out = subprocess.run([str(py), "-c", ROUND_TRIP], input=json.dumps(
        [[NAMESPACES[s], h] for s, _, h in docs]), capture_output=True, text=True, cwd="/tmp",
        timeout=3600, check=False)
    results = json.loads(out.stdout)
    stats: collections.Counter = collections.Counter()
    for (schema, case, ours), theirs in zip(docs, results, strict=True):
        kind = ("same bytes" if theirs == ours else
                "EXIficient side failed" if theirs.startswith("ERR") else "DIFFERENT")
        stats[(schema, kind)] += 1
        if kind == "DIFFERENT":
            print(f"DIFFERENT {case}: ours {ours[:60]}... EXIficient {theirs[:60]}...")
    for (schema, kind), n in sorted(stats.items()):
        print(f"{schema:9} {kind:24} {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
