"""The shipped systemd units: systemd's own verifier accepts them without a warning, and they
keep the settings the deployment relies on (restart, capabilities for raw sockets, config
check before start)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "systemd"
VENV_BIN = Path(sys.executable).parent


def directives(path: Path) -> dict[str, list[str]]:
    """``Section.Key`` -> values, in order (systemd allows repeated keys)."""
    result: dict[str, list[str]] = {}
    section = ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        assert "=" in line, f"{path.name}: not a key=value line: {line!r}"
        key, value = line.split("=", 1)
        result.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return result


def test_both_units_are_shipped():
    assert (UNITS / "pysecc-secc@.service").is_file()
    assert (UNITS / "pysecc-ocpp-bridge.service").is_file()
    assert (UNITS / "README.md").is_file()


def test_secc_unit_restarts_and_keeps_raw_socket_capabilities():
    unit = directives(UNITS / "pysecc-secc@.service")
    assert unit["Service.Restart"] == ["on-failure"]
    assert set(unit["Service.AmbientCapabilities"][0].split()) == {"CAP_NET_RAW", "CAP_NET_ADMIN"}
    assert set(unit["Service.CapabilityBoundingSet"][0].split()) == {"CAP_NET_RAW",
                                                                      "CAP_NET_ADMIN"}
    assert "AF_PACKET" in unit["Service.RestrictAddressFamilies"][0].split()
    assert unit["Service.NoNewPrivileges"] == ["yes"]
    assert unit["Service.User"] == ["pysecc"]


def test_secc_unit_checks_its_board_file_before_start():
    unit = directives(UNITS / "pysecc-secc@.service")
    assert unit["Service.ExecStartPre"][0].endswith("secc board check /etc/pysecc/boards/%i.toml")
    assert "/etc/pysecc/boards/%i.toml" in unit["Service.ExecStart"][0]


def test_bridge_unit_has_no_capabilities_and_runs_the_bridge_module():
    unit = directives(UNITS / "pysecc-ocpp-bridge.service")
    assert unit["Service.CapabilityBoundingSet"] == [""]
    assert unit["Service.Restart"] == ["on-failure"]
    assert "-m ocpp_bridge --config" in unit["Service.ExecStart"][0]


@pytest.mark.parametrize("name, watchdog", [("pysecc-secc@.service", "10s"),
                                            ("pysecc-ocpp-bridge.service", "30s")])
def test_units_are_notify_type_with_a_watchdog(name, watchdog):
    unit = directives(UNITS / name)
    assert unit["Service.Type"] == ["notify"]
    assert unit["Service.NotifyAccess"] == ["main"]
    assert unit["Service.WatchdogSec"] == [watchdog]


def test_secc_unit_reloads_with_sighup_and_has_time_to_end_a_session():
    unit = directives(UNITS / "pysecc-secc@.service")
    assert unit["Service.ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert unit["Service.TimeoutStopSec"] == ["20s"]   # shutdown(): 6 s + 2 s + 3 s flush


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze absent (make install installs the systemd package)")
def test_systemd_analyze_verify_accepts_the_units_without_warnings(tmp_path):
    # verify checks that ExecStart binaries exist: point them at this checkout's venv, and
    # instantiate the template.
    for src, dst in (("pysecc-secc@.service", "pysecc-secc@sim.service"),
                     ("pysecc-ocpp-bridge.service", "pysecc-ocpp-bridge.service")):
        text = (UNITS / src).read_text().replace("/opt/pysecc/bin", str(VENV_BIN))
        (tmp_path / dst).write_text(text)
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no",
         str(tmp_path / "pysecc-secc@sim.service"), str(tmp_path / "pysecc-ocpp-bridge.service")],
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze absent (make install installs the systemd package)")
def test_systemd_analyze_verify_would_catch_a_typo(tmp_path):
    text = (UNITS / "pysecc-ocpp-bridge.service").read_text()
    text = text.replace("/opt/pysecc/bin", str(VENV_BIN)).replace("Restart=", "Restrat=")
    (tmp_path / "pysecc-ocpp-bridge.service").write_text(text)
    done = subprocess.run(["systemd-analyze", "verify", "--man=no",
                           str(tmp_path / "pysecc-ocpp-bridge.service")],
                          capture_output=True, text=True, timeout=60)
    assert "Unknown key" in done.stderr
