"""Catalogue certificate-provisioning cases against `secc run` serving iso2-ac with TLS and
PnC, the bus on and behind it the OCPP bridge and the test CSMS with its certificate
provisioning service (tests/conformance/pnc.py, CsmsBackend)."""

from tests.conformance.suite import module_tests

sut, test_case = module_tests("iso2-ac", daemon="cps")
