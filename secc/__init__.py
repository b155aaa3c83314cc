"""pysecc: the SECC protocol stack (SLAC, SDP, V2GTP, TLS, DIN 70121, ISO 15118-2/-20)."""

__version__ = "0.1.0"
