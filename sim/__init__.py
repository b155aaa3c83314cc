"""Simulators (EV side, modem, CSMS) and the end-to-end demo."""
