"""ISO 15118-3 SLAC, EVSE side, over a HomePlug Green PHY (QCA700x) modem."""
