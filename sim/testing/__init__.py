"""Real components for tests and the demo: a private mosquitto broker, a network-namespace
PLC link (veth pair), and a test PKI. Nothing here is mocked."""
