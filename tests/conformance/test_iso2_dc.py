"""Catalogue cases against `secc run` serving iso2-dc (one daemon for the module)."""

from tests.conformance.suite import module_tests

sut, test_case = module_tests("iso2-dc")
