"""Plug & Charge (ISO 15118-2 contract authorization): XML signatures over EXI
(``xmldsig``) and the contract certificate chain (``contract``). Protocol-neutral pieces; the
ISO-2 session (``secc/iso2/session.py``) uses them."""
