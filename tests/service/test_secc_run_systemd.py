"""``secc run`` as systemd runs it: a real process in the SECC's network namespace with
``NOTIFY_SOCKET``/``WATCHDOG_USEC`` set; READY once it serves, a status line, watchdog pings;
SIGHUP applies what is safe and refuses the rest by name; SIGTERM stops it cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.service.notify_socket import NotifySocket

pytestmark = pytest.mark.netns
REPO = Path(__file__).resolve().parents[2]

BOARD = """
[board]
name = "notify"
kind = "sim"
evse_id = "DE*PNX*E00001*1"
[plc]
interface = "{iface}"
start_at_sdp = true
[v2g]
protocols = {protocols}
tls = "none"
quirks = {quirks}
[v2g.timers]
sequence_timeout = {sequence_timeout}
[logging]
level = "INFO"
"""


class Lines:
    """The process's stderr, line by line, on a thread."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            with self._cond:
                self.lines.append(line.rstrip())
                self._cond.notify_all()

    def wait_for(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = next((line for line in self.lines if text in line), None)
                if found:
                    return found
                if not self._cond.wait(max(0.0, deadline - time.monotonic())):
                    raise TimeoutError(f"{text!r} not logged; got:\n" + "\n".join(self.lines))


def test_ready_status_watchdog_sighup_and_sigterm(veth_link, tmp_path):
    board = tmp_path / "board.toml"
    iface = veth_link.ifnames["secc"]

    def write(protocols='["iso2", "din"]', quirks="[]", sequence_timeout=60):
        board.write_text(BOARD.format(iface=iface, protocols=protocols, quirks=quirks,
                                      sequence_timeout=sequence_timeout))

    write()
    notify = NotifySocket(tmp_path / "notify")
    env = {**os.environ, "NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "400000",
           "PYTHONPATH": str(REPO)}
    proc = veth_link.popen("secc", [sys.executable, "-m", "secc", "run", "--board", str(board)],
                           env=env, stderr=subprocess.PIPE, text=True)
    try:
        log = Lines(proc.stderr)
        ready = notify.wait_for(lambda f: "READY" in f, timeout=30)
        log.wait_for("SECC ready", timeout=5)      # logged just before READY=1 left
        assert ready["STATUS"] == "idle, EVSE 1 ready"
        assert [f for f in notify.all() if "READY" in f] == [ready]   # once, not before
        notify.wait_for(lambda f: f.get("STATUS") == "idle")
        notify.wait_for(lambda f: "WATCHDOG" in f)

        # SIGHUP: a timer and a quirk apply; the protocol list needs a restart
        write(protocols='["iso2"]', quirks='["relaxed_cp_state"]', sequence_timeout=30)
        proc.send_signal(signal.SIGHUP)
        refused = log.wait_for("SIGHUP: refused")
        assert "[v2g].protocols changed: not applied until restart" in refused
        applied = log.wait_for("SIGHUP: applied")
        assert "[v2g].timers" in applied and "[v2g].quirks" in applied
        assert "[v2g].protocols" not in applied
        notify.wait_for(lambda f: "RELOADING" in f)
        notify.wait_count("READY", 2)                 # the reload is over

        # an invalid file changes nothing
        board.write_text("[board]\nname = 'x'\n")
        proc.send_signal(signal.SIGHUP)
        assert "[board].evse_id" in log.wait_for("SIGHUP: board file invalid")

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        stopping = notify.wait_for(lambda f: "STOPPING" in f)   # sent by SeccDaemon.shutdown()
        assert stopping["STATUS"] == "stopping: ending the session safely"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        notify.close()
