"""``make install-ccu`` end to end in a scratch root (no systemd PID 1 here): the wheel in a
venv at <root>/opt/pysecc (without sim/), the units, the mosquitto drop-in with a hashed
password file and the contract's ACL (then run as a real broker in a network namespace), the
pysecc user, /etc/pysecc with a board file that `secc board check` refuses until edited, and
nothing enabled until then; after editing, a second run enables the units (systemctl --root)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from sim.testing.broker import find_mosquitto

REPO = Path(__file__).resolve().parents[2]
INSTALLER = REPO / "systemd" / "packaging" / "install_ccu.py"
WANTS = "etc/systemd/system/multi-user.target.wants"

pytestmark = pytest.mark.skipif(
    find_mosquitto() is None or shutil.which("mosquitto_passwd") is None
    or shutil.which("useradd") is None or shutil.which("systemctl") is None,
    reason="needs mosquitto, mosquitto_passwd, useradd and systemctl (make install-ccu "
           "installs mosquitto; the others are Debian base)")


def scratch_root(root: Path) -> None:
    etc = root / "etc"
    etc.mkdir(parents=True)
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (etc / "group").write_text("root:x:0:\ndialout:x:20:\nmosquitto:x:107:\n")
    (etc / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    (etc / "gshadow").write_text("root:*::\ndialout:*::\nmosquitto:!::\n")
    for name in ("shadow", "gshadow"):
        (etc / name).chmod(0o600)


def install(root: Path, wheel: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, str(INSTALLER), "--destdir", str(root), "--wheel",
                           str(wheel)], capture_output=True, text=True, timeout=600, env=env)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    work = tmp_path_factory.mktemp("ccu")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                    str(work / "wheel"), str(REPO)], check=True, capture_output=True)
    wheel = next((work / "wheel").glob("pysecc-*.whl"))
    root = work / "root"
    scratch_root(root)
    first = install(root, wheel)
    assert first.returncode == 0, first.stdout + first.stderr
    return root, wheel, first.stdout


def test_files_user_and_venv(installed):
    root, _, _ = installed
    venv = root / "opt/pysecc/bin"
    assert subprocess.run([venv / "secc", "--version"], capture_output=True, text=True
                          ).stdout.startswith("pysecc ")
    no_sim = subprocess.run([venv / "python", "-c", "import sim"], capture_output=True,
                            cwd="/", env={"PATH": "/usr/bin:/bin"})
    assert no_sim.returncode != 0          # simulators and fixtures stay out of the product
    for unit in ("pysecc-secc@.service", "pysecc-ocpp-bridge.service"):
        assert (root / "etc/systemd/system" / unit).read_text() == \
            (REPO / "systemd" / unit).read_text()
    user = next(line for line in (root / "etc/passwd").read_text().splitlines()
                if line.startswith("pysecc:"))
    assert user.endswith(":/var/lib/pysecc:/usr/sbin/nologin")
    etc = root / "etc/pysecc"
    assert oct(etc.stat().st_mode & 0o777) == "0o750"
    assert oct((etc / "boards/left.toml").stat().st_mode & 0o777) == "0o640"


def test_mosquitto_drop_in_password_file_and_acl(installed):
    root, _, _ = installed
    conf = (root / "etc/mosquitto/conf.d/pysecc.conf").read_text()
    for line in ("listener 1883 127.0.0.1", "allow_anonymous false", "persistence true",
                 "password_file /etc/mosquitto/pysecc/passwd",
                 "acl_file /etc/mosquitto/pysecc/acl"):
        assert line in conf.splitlines()
    passwd = (root / "etc/mosquitto/pysecc/passwd").read_text().splitlines()
    assert [line.split(":")[0] for line in passwd] == ["secc", "ocpp-bridge", "monitor"]
    board = tomllib.loads((root / "etc/pysecc/boards/left.toml").read_text())
    assert all(board["bus"]["password"] not in line for line in passwd)   # hashed only
    acl = subprocess.run([root / "opt/pysecc/bin/python", "-m", "secc.contract", "--acl",
                          "secc", "ocpp-bridge"], capture_output=True, text=True).stdout
    assert (root / "etc/mosquitto/pysecc/acl").read_text() == acl


def test_nothing_enabled_until_the_board_check_passes_then_enabled(installed, tmp_path):
    root, wheel, first_output = installed
    assert "secc board check refuses the board file, nothing enabled" in first_output
    assert "[board].evse_id" in first_output
    assert not (root / WANTS).exists()

    board = root / "etc/pysecc/boards/left.toml"
    board.write_text(board.read_text().replace('"SET-ME"', '"DE*PNX*E12345*1"', 1))
    bridge = root / "etc/pysecc/ocpp-bridge.toml"
    bridge.write_text(bridge.read_text().replace('"SET-ME"', '"CS0001"'))
    again = install(root, wheel)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing enabled" not in again.stdout
    wants = sorted(p.name for p in (root / WANTS).iterdir())
    assert wants == ["pysecc-ocpp-bridge.service", "pysecc-secc@left.service"]
    # the operator's edits survive the second run
    assert '"DE*PNX*E12345*1"' in board.read_text()


@pytest.mark.netns
def test_the_installed_broker_config_serves_the_bus(installed, veth_link, tmp_path):
    """mosquitto with the drop-in (paths moved into the scratch root) in a network namespace:
    the SECC's generated credentials pass `secc doctor`'s broker check, anonymous clients and
    wrong passwords do not."""
    root, _, _ = installed
    conf = (root / "etc/mosquitto/conf.d/pysecc.conf").read_text().replace(
        "/etc/mosquitto/pysecc/", f"{root}/etc/mosquitto/pysecc/")
    (tmp_path / "mosquitto.conf").write_text(
        conf + f"persistence_location {tmp_path}/\nuser root\n")
    broker = veth_link.popen("secc", [find_mosquitto(), "-c", str(tmp_path / "mosquitto.conf")],
                             stderr=subprocess.PIPE, text=True)
    try:
        board_text = (root / "etc/pysecc/boards/left.toml").read_text().replace(
            '"SET-ME"', '"DE*PNX*E12345*1"', 1)
        board = tmp_path / "board.toml"
        board.write_text(board_text)

        def doctor(path: Path) -> dict:
            import json
            done = veth_link.popen("secc", [str(root / "opt/pysecc/bin/secc"), "doctor",
                                            "--board", str(path), "--json", "--bus-wait", "0.5"],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            out, _ = done.communicate(timeout=60)
            return {f["check"]: f for f in json.loads(out)["findings"]}

        found = doctor(board)
        assert found["bus.broker"]["status"] == "ok", found["bus.broker"]
        assert found["bridge.alive"]["status"] == "fail"      # no bridge running here
        wrong = tmp_path / "wrong.toml"
        secret = tomllib.loads(board_text)["bus"]["password"]
        wrong.write_text(board_text.replace(secret, "guess"))
        assert "refused our credentials" in doctor(wrong)["bus.broker"]["summary"]
        anonymous = tmp_path / "anonymous.toml"
        anonymous.write_text("\n".join(line for line in board_text.splitlines()
                                       if not line.startswith(("username", "password"))))
        assert doctor(anonymous)["bus.broker"]["status"] == "fail"
    finally:
        broker.terminate()
        broker.wait(5)
