"""DIN 70121 adapter: the shared V2G_Message envelope with DIN's schema and session."""

from __future__ import annotations

from exi_schemas.generated import din
from secc.din.session import DinSession
from secc.v2g.envelope import V2GMessageAdapter


class DinAdapter(V2GMessageAdapter):
    name = "din"
    schema = "din"
    M = din
    CORE = DinSession


REQUEST_FIELDS = DinAdapter.REQUEST_FIELDS
