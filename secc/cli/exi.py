"""``secc exi``: decode and encode V2G EXI messages from the command line.

    secc exi decode --schema din 809a0211...          # JSON on stdout
    secc exi decode --schema iso2 --xml @message.exi  # XML; @file holds hex text or raw bytes
    secc exi encode --schema iso20 message.json       # hex on stdout (JSON or XML input)

JSON is ``{"<root element>": {...fields...}}`` with base64Binary as base64 and hexBinary as
upper-case hex, the same as ``exi_schemas.to_dict``. A V2GTP header (01 fe ...) in front of
the EXI data is skipped. Bad input prints one line (with the bit offset for decode errors) on
stderr and exits with status 2.
"""

from __future__ import annotations

import binascii
import json
import sys

EXIT_BAD_INPUT = 2


def register(subparsers) -> None:
    from exi_schemas import SCHEMAS

    parser = subparsers.add_parser("exi", help="decode/encode V2G EXI messages")
    sub = parser.add_subparsers(dest="exi_command", metavar="{decode,encode}", required=True)
    dec = sub.add_parser("decode", help="EXI (hex or @file) to JSON or XML")
    dec.add_argument("--schema", required=True, choices=list(SCHEMAS))
    dec.add_argument("--xml", action="store_true", help="print XML instead of JSON")
    dec.add_argument("data", help="hex string, or @path to a file with hex text or raw bytes")
    dec.set_defaults(handler=run_decode)
    enc = sub.add_parser("encode", help="JSON or XML file to EXI hex")
    enc.add_argument("--schema", required=True, choices=list(SCHEMAS))
    enc.add_argument("--element", help="root element when the JSON has no root key")
    enc.add_argument("file", help="JSON or XML file ('-' for stdin)")
    enc.set_defaults(handler=run_encode)


def _fail(message: str) -> int:
    print(f"secc exi: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _read_input(arg: str) -> bytes:
    if arg.startswith("@"):
        with open(arg[1:], "rb") as fh:
            raw = fh.read()
        text = raw.strip()
        try:
            data = binascii.unhexlify(b"".join(text.split()))
        except (binascii.Error, ValueError):
            data = raw
    else:
        data = binascii.unhexlify("".join(arg.split()))
    if len(data) >= 8 and data[0] == 0x01 and data[1] == 0xFE:
        data = data[8:]  # V2GTP header
    return data


def run_decode(args) -> int:
    import exi_schemas as exi

    try:
        data = _read_input(args.data)
    except (OSError, binascii.Error, ValueError) as exc:
        return _fail(f"cannot read input: {exc}")
    try:
        root, message = exi.decode_element(data, args.schema)
    except exi.ExiDecodeError as exc:
        return _fail(f"decode failed at bit {exc.bit_offset}: {exc.reason}")
    try:
        if args.xml:
            print(exi.to_xml(message, element=root))
        else:
            print(json.dumps({root: exi.to_dict(message)}, indent=2))
    except ValueError as exc:  # e.g. control characters that XML cannot carry
        return _fail(f"decoded, but cannot be shown as {'XML' if args.xml else 'JSON'}: {exc}")
    return 0


def run_encode(args) -> int:
    import exi_schemas as exi

    try:
        if args.file == "-":
            text = sys.stdin.read()
        else:
            with open(args.file, encoding="utf-8") as fh:
                text = fh.read()
    except OSError as exc:
        return _fail(f"cannot read {args.file}: {exc}")
    try:
        if text.lstrip().startswith("<"):
            message = exi.from_xml(args.schema, text)
            element = None
        else:
            try:
                doc = json.loads(text)
            except json.JSONDecodeError as exc:
                return _fail(f"{args.file} is neither XML nor JSON: {exc}")
            element = args.element
            if element is None and isinstance(doc, dict) and len(doc) == 1:
                (key,) = doc
                if key[:1].isupper() or key.startswith("supported"):
                    element, doc = key, doc[key]
            message = exi.from_dict(args.schema, doc, element=element)
        print(exi.encode(message, element=element).hex())
    except exi.ExiEncodeError as exc:
        return _fail(f"encode failed: {exc}")
    return 0
