"""Conformance rows for ``secc run`` serving iso2-dc as a Contract-only SECC
(``[v2g].payment_options = ["Contract"]``, TLS required; joint.py)."""

from tests.conformance.suite import module_tests

sut, test_case = module_tests("iso2-dc", daemon="contract_only")
