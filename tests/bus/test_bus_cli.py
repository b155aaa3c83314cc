"""``secc bus`` subcommands against a real broker."""

from __future__ import annotations

import json
import subprocess
import sys

import paho.mqtt.publish as publish
from bus_test_credentials import BUS_PASSWORD, BUS_USER


def test_bus_monitor_prints_traffic_and_flags_invalid_payloads(auth_broker):
    proc = subprocess.Popen(
        [sys.executable, "-m", "secc", "bus", "monitor", "--port", str(auth_broker.port),
         "--username", BUS_USER, "--password", BUS_PASSWORD, "--count", "2", "--timeout", "20"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    auth = {"username": BUS_USER, "password": BUS_PASSWORD}
    assert proc.stderr.readline().startswith("# subscribed")
    publish.single("pysecc/v1/evse/1/state", json.dumps(
        {"state": "Available", "timestamp": "2026-01-01T00:00:00Z"}), qos=1,
        hostname=auth_broker.host, port=auth_broker.port, auth=auth)
    publish.single("pysecc/v1/evse/1/events/session", b'{"event": "Exploded"}', qos=1,
                   hostname=auth_broker.host, port=auth_broker.port, auth=auth)
    out, _ = proc.communicate(timeout=25)
    lines = out.strip().splitlines()
    assert proc.returncode == 0
    assert "[session_state] ok" in lines[0]
    assert "[session_event] INVALID" in lines[1] and "session_event" in lines[1]


def test_bus_contract_lists_every_topic():
    out = subprocess.run([sys.executable, "-m", "secc", "bus", "contract"], capture_output=True,
                         text=True, check=True).stdout
    assert "pysecc/v1/evse/{evse_id}/transaction_event" in out
    assert "pysecc/v1/bridge/online" in out
