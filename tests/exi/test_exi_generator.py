"""The committed codec modules are exactly what the generator makes from the official XSDs."""

from __future__ import annotations

from pathlib import Path

import pytest

from exi_schemas import generator

GENERATED = Path(__file__).resolve().parents[2] / "exi_schemas" / "generated"


def test_regeneration_reproduces_committed_modules():
    schema_dir = Path(generator.default_schema_dir())
    if not schema_dir.is_dir():
        pytest.skip(f"official XSDs not found at {schema_dir} (../shared absent)")
    fresh = generator.generate_all(str(schema_dir))
    assert sorted(fresh) == sorted(p.stem for p in GENERATED.glob("*.py") if p.stem != "__init__")
    for name, text in fresh.items():
        committed = (GENERATED / f"{name}.py").read_text(encoding="utf-8")
        assert text == committed, f"{name}.py is stale: run python -m exi_schemas.generator"
