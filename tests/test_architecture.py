"""The package boundaries that `make lint` (import-linter) enforces stay complete as secc grows."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NEUTRAL = {"secc.common", "secc.contract"}


def _contract(config: dict, name_start: str) -> dict:
    contracts = config["tool"]["importlinter"]["contracts"]
    return next(c for c in contracts if c["name"].startswith(name_start))


def _secc_modules() -> set[str]:
    names = set()
    for path in (REPO / "secc").iterdir():
        if path.name.startswith("_") or path.name == "__pycache__":
            continue
        if path.suffix == ".py" or (path / "__init__.py").exists():
            names.add(f"secc.{path.stem}")
    return names


def test_bridge_contract_forbids_every_secc_module_but_the_neutral_ones():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    forbidden = set(_contract(config, "The bridge uses only")["forbidden_modules"])
    missing = _secc_modules() - NEUTRAL - forbidden
    assert not missing, f"add {sorted(missing)} to the bridge contract in pyproject.toml"
    assert not forbidden & NEUTRAL


def test_layers_contract_names_every_secc_module():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    layers = _contract(config, "secc.contract and secc.common are leaves")["layers"]
    named = {f"secc.{part.strip()}" for layer in layers for part in layer.split(":")}
    missing = _secc_modules() - named
    assert not missing, f"add {sorted(missing)} to the top layer of the layers contract"


def test_simulators_and_fixtures_stay_out_of_the_product_wheel():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    assert not any(pattern.startswith(("sim", "tests")) for pattern in include)
