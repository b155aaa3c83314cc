"""Catalogue cases that need the SECC configured with a SalesTariff (PIXIT), against
`secc run` serving iso2-dc on the daemon's ``tariff`` board variant (tariff.py)."""

from tests.conformance.suite import module_tests

sut, test_case = module_tests("iso2-dc", daemon="tariff")
