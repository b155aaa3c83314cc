"""Catalogue cases against `secc run` serving din (one daemon for the module)."""

from tests.conformance.suite import module_tests

sut, test_case = module_tests("din")
