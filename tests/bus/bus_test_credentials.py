"""Shared constants of the bus tests (the broker credentials)."""

BUS_USER, BUS_PASSWORD = "pysecc", "bus-secret"
