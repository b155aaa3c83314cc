"""Catalogue Plug & Charge and TLS cases against `secc run` serving iso2-ac with TLS, PnC
and metering receipts (one daemon for the module; tests/conformance/pnc.py)."""

from tests.conformance.suite import module_tests

sut, test_case = module_tests("iso2-ac", daemon="pnc")
