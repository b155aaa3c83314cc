"""``[v2g].payment_options``: the payment options a charger accepts; ["Contract"] alone (a
Contract-only charger) is checked at start against what it needs, with the key named."""

from __future__ import annotations

import pytest

from secc.config import ConfigError, loads_board_config
from secc.daemon import session_settings
from secc.v2g.paused import PausedSessions

BOARD = '[board]\nname = "t"\nevse_id = "DE*PNX*E12345*1"\n'
CONTRACT_ONLY = ('[v2g]\nprotocols = ["iso2"]\ntls = "required"\nplug_and_charge = true\n'
                 'payment_options = ["Contract"]\n')


def test_default_offers_both_and_reaches_the_cores():
    config = loads_board_config(BOARD)
    assert config.v2g.payment_options == ("Contract", "ExternalPayment")
    options = session_settings(loads_board_config(BOARD + CONTRACT_ONLY),
                               PausedSessions()).core_options
    assert options["iso2"]["payment_options"] == ("Contract",)
    assert options["iso20-dc"]["payment_options"] == ("Contract",)


def test_contract_only_with_pnc_tls_required_and_no_din_loads():
    assert loads_board_config(BOARD + CONTRACT_ONLY).v2g.payment_options == ("Contract",)
    eim_only = loads_board_config(BOARD + '[v2g]\npayment_options = ["ExternalPayment"]\n')
    assert eim_only.v2g.payment_options == ("ExternalPayment",)


@pytest.mark.parametrize("change,words", [
    (("plug_and_charge = true", "plug_and_charge = false"), "needs plug_and_charge = true"),
    (('tls = "required"', 'tls = "optional"'), 'needs tls = "required"'),
    (('protocols = ["iso2"]', 'protocols = ["iso2", "din"]'), "cannot serve DIN 70121"),
    (('payment_options = ["Contract"]', 'payment_options = []'), "payment_options"),
    (('payment_options = ["Contract"]', 'payment_options = ["Contract", "Contract"]'),
     "payment_options"),
    (('payment_options = ["Contract"]', 'payment_options = ["Cash"]'), "payment_options"),
])
def test_a_contract_only_board_that_cannot_work_is_refused_naming_the_setting(change, words):
    with pytest.raises(ConfigError) as info:
        loads_board_config(BOARD + CONTRACT_ONLY.replace(*change), "b.toml")
    text = "\n".join(str(i) for i in info.value.issues)
    assert "[v2g].payment_options" in text and words in text, text
