"""Pieces both processes (the SECC daemon and the OCPP bridge) use: structured logs, the MQTT
endpoint of the bus, and certificate helpers.

A leaf package: it imports nothing from the rest of ``secc``, from ``hal`` or from
``ocpp_bridge`` (checked by ``make lint``), so the bridge can use it without depending on
the SECC. See docs/architecture.md.
"""
