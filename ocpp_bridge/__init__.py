"""OCPP 2.0.1 bridge process: talks to the CSMS, and to the SECC over the local MQTT bus."""
