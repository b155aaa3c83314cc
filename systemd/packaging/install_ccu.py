#!/usr/bin/env python3
"""Install pysecc on a charge controller (CCU): ``make install-ccu`` runs this as root.

What it puts where (under ``--destdir``, default ``/``):

* ``/opt/pysecc``                 a venv with the pysecc wheel and its pinned dependencies
                                  (``/opt/pysecc/bin/secc``, ``/opt/pysecc/bin/python``);
* ``/etc/systemd/system``         ``pysecc-secc@.service``, ``pysecc-ocpp-bridge.service``;
* ``/etc/mosquitto/conf.d/pysecc.conf`` the bus broker drop-in (127.0.0.1 only, no anonymous
                                  access, password file, ACL, persistence), with
                                  ``/etc/mosquitto/pysecc/{passwd,acl}``: one random password
                                  per account, the ACL generated from the bus contract;
* user and group ``pysecc`` (system account, home ``/var/lib/pysecc``, in ``dialout``);
* ``/etc/pysecc/boards/<board>.toml`` the board file to edit (its ``evse_id`` is a
                                  placeholder that ``secc board check`` refuses), and
                                  ``/etc/pysecc/ocpp-bridge.toml`` (CSMS url and station id to
                                  edit); both carry the generated bus credentials.

Nothing is enabled until ``secc board check`` accepts the board file and the bridge file
loads with a real station id: edit them, run ``make install-ccu`` again, and it enables (and,
with systemd as PID 1, starts) mosquitto, ``pysecc-secc@<board>`` and the bridge. Existing
files in /etc are never overwritten; the venv is upgraded in place.

Why not a .deb: CCU images are often built with Yocto or Buildroot and have no dpkg, and a
venv under /opt with pinned wheels does not fit Debian's packaging of Python libraries; this
script needs only python3 (>= 3.11), python3-venv and mosquitto.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLACEHOLDER = "SET-ME"
ACCOUNTS = ("secc", "ocpp-bridge", "monitor")
UNITS = ("pysecc-secc@.service", "pysecc-ocpp-bridge.service")


def say(text: str) -> None:
    print(f"install-ccu: {text}", flush=True)


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=True, text=True, **kwargs)


class Installer:
    def __init__(self, args: argparse.Namespace) -> None:
        self.root = Path(args.destdir).resolve()
        self.live = self.root == Path("/")
        self.board = args.board
        self.template = Path(args.board_template)
        self.wheel = Path(args.wheel) if args.wheel else None
        self.python = args.python
        self.pip_args = args.pip_args.split() if args.pip_args else []

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    # --- steps ---------------------------------------------------------------------------------
    def venv(self) -> Path:
        prefix = self.path("/opt/pysecc")
        wheel = self.wheel or self.build_wheel()
        if not (prefix / "bin" / "python").exists():
            say(f"creating the venv {prefix}")
            run([self.python, "-m", "venv", str(prefix)])
        say(f"installing {wheel.name} and its pinned dependencies")
        run([str(prefix / "bin" / "python"), "-m", "pip", "install", "-q", "--upgrade",
             *self.pip_args, str(wheel)])
        return prefix

    def build_wheel(self) -> Path:
        out = REPO / "build" / "ccu-wheel"
        shutil.rmtree(out, ignore_errors=True)
        say("building the pysecc wheel")
        run([self.python, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(REPO)])
        return next(out.glob("pysecc-*.whl"))

    def user(self) -> None:
        if self.live:
            if subprocess.run(["id", "-u", "pysecc"], capture_output=True).returncode != 0:
                say("creating the system user pysecc")
                run(["useradd", "--system", "--user-group", "--home-dir", "/var/lib/pysecc",
                     "--shell", "/usr/sbin/nologin", "pysecc"])
            if subprocess.run(["getent", "group", "dialout"], capture_output=True
                              ).returncode == 0:
                run(["usermod", "-aG", "dialout", "pysecc"])
            return
        passwd = self.path("/etc/passwd")
        if not passwd.exists():
            say(f"no {passwd}: user pysecc not created in this root")
            return
        if "\npysecc:" not in "\n" + passwd.read_text():
            say(f"creating the system user pysecc under {self.root}")
            run(["useradd", "--prefix", str(self.root), "--system", "--user-group",
                 "--home-dir", "/var/lib/pysecc", "--shell", "/usr/sbin/nologin", "pysecc"])

    def ids(self, name: str) -> tuple[int, int] | None:
        """(uid, gid) of ``name`` in the target root, if it exists there."""
        passwd = self.path("/etc/passwd")
        if not passwd.exists():
            return None
        for line in passwd.read_text().splitlines():
            fields = line.split(":")
            if fields[0] == name:
                return int(fields[2]), int(fields[3])
        return None

    def group_id(self, name: str) -> int | None:
        group = self.path("/etc/group")
        if group.exists():
            for line in group.read_text().splitlines():
                fields = line.split(":")
                if fields[0] == name:
                    return int(fields[2])
        return None

    def units(self) -> None:
        target = self.path("/etc/systemd/system")
        target.mkdir(parents=True, exist_ok=True)
        for unit in UNITS:
            shutil.copyfile(REPO / "systemd" / unit, target / unit)
            (target / unit).chmod(0o644)
        say(f"units installed in {target}")

    def broker(self, prefix: Path) -> dict[str, str]:
        """The mosquitto drop-in, the password file and the ACL; returns the passwords made
        now (empty when the password file existed: then the configs have them already)."""
        conf_d = self.path("/etc/mosquitto/conf.d")
        conf_d.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(__file__).with_name("mosquitto-pysecc.conf"), conf_d / "pysecc.conf")
        (conf_d / "pysecc.conf").chmod(0o644)
        private = self.path("/etc/mosquitto/pysecc")
        private.mkdir(parents=True, exist_ok=True)
        acl = run([str(prefix / "bin" / "python"), "-m", "secc.contract", "--acl", "secc",
                   "ocpp-bridge"], capture_output=True).stdout
        (private / "acl").write_text(acl)
        passwd = private / "passwd"
        made: dict[str, str] = {}
        if not passwd.exists():
            made = {user: secrets.token_urlsafe(24) for user in ACCOUNTS}
            passwd.write_text("".join(f"{u}:{p}\n" for u, p in made.items()))
            passwd.chmod(0o600)
            run(["mosquitto_passwd", "-U", str(passwd)])
            say(f"bus accounts {', '.join(ACCOUNTS)} with random passwords in {passwd}")
        gid = self.group_id("mosquitto")
        for path in (passwd, private / "acl"):
            path.chmod(0o640)
            if gid is not None and os.geteuid() == 0:
                os.chown(path, 0, gid)
        return made

    def configs(self, made: dict[str, str]) -> tuple[Path, Path]:
        etc = self.path("/etc/pysecc")
        (etc / "boards").mkdir(parents=True, exist_ok=True)
        board = etc / "boards" / f"{self.board}.toml"
        bridge = etc / "ocpp-bridge.toml"
        if not board.exists():
            text = re.sub(r'(?m)^evse_id = "[^"]*"', f'evse_id = "{PLACEHOLDER}"  '
                          "# your EVSE ID, e.g. \"DE*PNX*E12345*1\"",
                          self.template.read_text())
            text = re.sub(r"(?ms)^\[bus\]\n.*?(?=^\[|\Z)", "", text).rstrip() + "\n\n" + (
                "[bus]\nenabled = true\nmqtt_host = \"127.0.0.1\"\nmqtt_port = 1883\n"
                f"username = \"secc\"\npassword = \"{made.get('secc', PLACEHOLDER)}\"\n"
                "state_dir = \"/var/lib/pysecc\"\n")
            board.write_text(text)
            say(f"board file {board}: edit it (evse_id, port, ratings, PLC interface)")
        if not bridge.exists():
            bridge.write_text(
                "# The OCPP 2.0.1 bridge (ocpp_bridge/config.py documents every key).\n"
                "[csms]\n"
                "url = \"wss://csms.example.com/ocpp\"   # the station id is appended\n"
                f"station_id = \"{PLACEHOLDER}\"\n"
                "security_profile = 2\n"
                "password = \"basic-auth-password-from-the-operator\"\n"
                "ca_file = \"/etc/pysecc/csms_root.pem\"\n\n"
                "[bus]\nhost = \"127.0.0.1\"\nport = 1883\nusername = \"ocpp-bridge\"\n"
                f"password = \"{made.get('ocpp-bridge', PLACEHOLDER)}\"\n\n"
                "[storage]\nqueue = \"/var/lib/pysecc/bridge-queue.db\"\n"
                "certificates = \"/var/lib/pysecc/certs\"\n\n"
                "[station]\nevse_ids = [1]\nvendor = \"pysecc\"\nmodel = \"pysecc\"\n")
            say(f"bridge file {bridge}: edit it (CSMS url, station id, password, CA)")
        if made.get("monitor"):
            note = etc / "bus-monitor.credentials"
            note.write_text(f"monitor:{made['monitor']}\n")
            note.chmod(0o600)
        pysecc = self.ids("pysecc")
        for path in (etc, etc / "boards"):
            path.chmod(0o750)
        for path in (board, bridge):
            path.chmod(0o640)
        if pysecc is not None and os.geteuid() == 0:
            for path in (etc, etc / "boards", board, bridge):
                os.chown(path, 0, pysecc[1])
        return board, bridge

    def checks(self, prefix: Path, board: Path, bridge: Path) -> bool:
        """``secc board check`` and the bridge config; True when both pass."""
        done = subprocess.run([str(prefix / "bin" / "secc"), "board", "check", str(board)],
                              capture_output=True, text=True)
        ok = done.returncode == 0
        if not ok:
            say("secc board check refuses the board file, nothing enabled:")
            print(done.stdout.strip() or done.stderr.strip(), flush=True)
        probe = ("import sys; from ocpp_bridge.config import load; c = load(sys.argv[1]); "
                 f"sys.exit(3 if c.csms.station_id == {PLACEHOLDER!r} else 0)")
        done = subprocess.run([str(prefix / "bin" / "python"), "-c", probe, str(bridge)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            ok = False
            why = ("csms.station_id is still the placeholder" if done.returncode == 3 else
                   done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "invalid")
            say(f"{bridge}: {why}; nothing enabled")
        return ok

    def enable(self) -> None:
        units = [f"pysecc-secc@{self.board}.service", "pysecc-ocpp-bridge.service"]
        systemd_pid1 = self.live and Path("/run/systemd/system").is_dir()
        if self.live and not systemd_pid1:
            say("systemd is not running here (no PID 1): enable the units on the CCU with "
                f"systemctl enable --now mosquitto {' '.join(units)}")
            return
        mosquitto = any(self.path(d + "/mosquitto.service").exists() for d in (
            "/lib/systemd/system", "/usr/lib/systemd/system", "/etc/systemd/system"))
        argv = ["systemctl"] + ([] if systemd_pid1 else [f"--root={self.root}"])
        argv += ["enable"] + (["--now"] if systemd_pid1 else [])
        run(argv + (["mosquitto.service"] if mosquitto else []) + units)
        say("enabled" + (" and started" if systemd_pid1 else "") + ": " + " ".join(units))

    def install(self) -> int:
        prefix = self.venv()
        self.user()
        self.units()
        made = self.broker(prefix)
        board, bridge = self.configs(made)
        for state in (self.path("/var/lib/pysecc"),):
            state.mkdir(parents=True, exist_ok=True)
        if not self.checks(prefix, board, bridge):
            say(f"edit {board} and {bridge}, then run make install-ccu again")
            return 0
        self.enable()
        return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.pop("PYTHONPATH", None)   # the venv runs what it installed, not a checkout
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--destdir", default=os.environ.get("DESTDIR") or "/",
                        help="install under this root (a scratch root for tests/images)")
    parser.add_argument("--board", default="left", help="board name: /etc/pysecc/boards/NAME.toml")
    parser.add_argument("--board-template", default=str(REPO / "board_configs" /
                                                       "example-serial.toml"))
    parser.add_argument("--wheel", help="a built pysecc wheel (default: build one)")
    parser.add_argument("--python", default=sys.executable, help="python >= 3.11 for the venv")
    parser.add_argument("--pip-args", default="", help="extra pip install arguments")
    return Installer(parser.parse_args(argv)).install()


if __name__ == "__main__":
    sys.exit(main())
