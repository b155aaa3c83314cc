"""``python -m exi_schemas.generator [--schemas DIR] [--out DIR]``: regenerate the codecs."""

from __future__ import annotations

import argparse
import os
import sys

from . import SCHEMAS, default_schema_dir, generate_all


def main(argv: list[str] | None = None) -> int:
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(prog="python -m exi_schemas.generator")
    parser.add_argument("--schemas", default=default_schema_dir(),
                        help="folder with the official XSDs (default: ../shared/exi_schemas)")
    parser.add_argument("--out", default=os.path.join(here, "generated"))
    parser.add_argument("--only", choices=sorted(SCHEMAS), action="append")
    args = parser.parse_args(argv)
    for name, text in generate_all(args.schemas, args.only).items():
        path = os.path.join(args.out, f"{name}.py")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        print(f"wrote {path} ({len(text) // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
