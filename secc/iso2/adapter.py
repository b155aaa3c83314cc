"""ISO 15118-2 adapter: the shared V2G_Message envelope with ISO-2's schema and session."""

from __future__ import annotations

from exi_schemas.generated import iso2
from secc.iso2.session import Iso2Session
from secc.v2g.envelope import V2GMessageAdapter


class Iso2Adapter(V2GMessageAdapter):
    name = "iso2"
    schema = "iso2"
    M = iso2
    CORE = Iso2Session
