"""ISO 15118-20 with the board's ``payment_options=("Contract",)`` (PnC only): the
AuthorizationSetupRes offers PnC alone, and an EIM AuthorizationReq is refused
(WARNING_AuthorizationSelectionInvalid, like any service not offered)."""

from __future__ import annotations

from exi_schemas.generated import iso20 as cm

from .conftest import make_secc
from .test_iso20_cert_install import header, send


def authorization_setup(**core_kwargs):
    adapter, core = make_secc("dc", **core_kwargs)
    _, res = send(adapter, core, "SessionSetupReq",
                  cm.SessionSetupReqType(header=header(), evccid="WPYSECC0000000001"))
    sid = res.header.session_id
    _, setup = send(adapter, core, "AuthorizationSetupReq",
                    cm.AuthorizationSetupReqType(header=header(session_id=sid)))
    return adapter, core, sid, setup


def test_pnc_only_offers_pnc_alone_and_refuses_eim():
    adapter, core, sid, setup = authorization_setup(tls=True, payment_options=("Contract",))
    assert setup.response_code == "OK" and setup.authorization_services == ["PnC"]
    _, res = send(adapter, core, "AuthorizationReq", cm.AuthorizationReqType(
        header=header(session_id=sid), selected_authorization_service="EIM",
        eim_a_req_authorization_mode=cm.EIM_AReqAuthorizationModeType()))
    assert res.response_code == "WARNING_AuthorizationSelectionInvalid"
    assert res.evse_processing == "Finished"


def test_default_offers_both_over_tls():
    *_, setup = authorization_setup(tls=True)
    assert setup.authorization_services == ["EIM", "PnC"]


def test_pnc_only_without_tls_still_offers_eim():
    # never no service at all: PnC cannot go over plain TCP (the board check refuses a
    # Contract-only board without tls = "required"; the core stays usable anyway)
    *_, setup = authorization_setup(tls=False, payment_options=("Contract",))
    assert setup.authorization_services == ["EIM"]
