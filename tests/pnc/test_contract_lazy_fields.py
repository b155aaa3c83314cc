"""A certificate that loads but fails when a field is first read (cryptography parses lazily)
is a FAILED_CertChainError at the door, never an exception deep in a later check."""

import pytest

from secc.pnc.contract import parse_contract_chain
from secc.v2g.failures import Failure, SessionFailure


def test_unknown_string_tag_in_the_subject_is_a_cert_chain_error(test_pki):
    der = bytearray(test_pki.contract_leaf.cert_der)
    cn = der.find(bytes.fromhex("550403"))  # id-at-commonName, then the string's tag
    assert cn > 0 and der[cn + 3] in (0x0C, 0x13)
    der[cn + 3] = 0x0D  # a tag cryptography cannot map: KeyError on first read
    with pytest.raises(SessionFailure) as info:
        parse_contract_chain(bytes(der))
    assert info.value.failure is Failure.CERT_CHAIN_ERROR
