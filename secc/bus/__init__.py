"""The local MQTT bus between the SECC and the OCPP bridge: contract, client, authorizer."""
