"""One mechanism gives every request of DIN, ISO-2 and ISO-20 a schema-valid FAILED response
(secc.v2g.failed): each response type encodes and decodes with the code it carries."""

from __future__ import annotations

import pytest

import exi_schemas
from exi_schemas.generated import din, iso2, iso20, iso20_ac, iso20_acdp, iso20_dc, iso20_wpt
from secc.v2g.failed import failed_response
from secc.v2g.failures import RESPONSE_CODES


def request_names(mod):
    """Requests that are messages (DIN/-2: fields of BodyType; -20: global elements)."""
    if hasattr(mod, "BodyType"):
        elements = {f[3] for f in mod.FIELDS[mod.BodyType]}
    else:
        elements = {row[1] for row in mod.GLOBAL_ELEMENTS}
    return sorted(e for e in elements if e.endswith("Req") and e[:-3] + "Res" in elements)


CASES = [(mod, schema, name) for mod, schema in (
    (din, "din"), (iso2, "iso2"), (iso20, "iso20"), (iso20_dc, "iso20_dc"),
    (iso20_ac, "iso20_ac"), (iso20_wpt, "iso20_wpt"), (iso20_acdp, "iso20_acdp"))
    for name in request_names(mod)]


@pytest.mark.parametrize("mod,schema,request_name", CASES,
                         ids=[f"{c[1]}-{c[2]}" for c in CASES])
def test_generic_failed_response_encodes(mod, schema, request_name):
    protocol = "iso20" if schema.startswith("iso20") else schema
    codes = sorted(set(RESPONSE_CODES[protocol].values()))
    for code in codes:
        name, response = failed_response(mod, request_name, code)
        assert response is not None and response.response_code == code
        if hasattr(response, "header"):
            response.header = mod.MessageHeaderType(session_id=bytes(8), time_stamp=0)
            data = exi_schemas.encode(response, element=name)
        else:
            envelope = mod.V2G_Message(header=mod.MessageHeaderType(session_id=bytes(8)),
                                       body=mod.BodyType(**{_body_field(mod, name): response}))
            data = exi_schemas.encode(envelope)
            decoded = exi_schemas.decode(data, schema)
            element, body = exi_schemas.body_element(decoded)
            assert element == name and body.response_code == code


def _body_field(mod, element):
    return next(f[0] for f in mod.FIELDS[mod.BodyType] if f[3] == element)


def test_the_mechanism_covers_the_requests_that_used_to_close_silently():
    for name in ("ChargingStatusReq", "MeteringReceiptReq", "CertificateInstallationReq"):
        assert failed_response(din, name, "FAILED_SequenceError")[1] is not None
    for mod, name in ((iso20, "CertificateInstallationReq"), (iso20_wpt, "WPT_ChargeLoopReq"),
                      (iso20_acdp, "ACDP_VehiclePositioningReq")):
        assert failed_response(mod, name, "FAILED")[1] is not None
