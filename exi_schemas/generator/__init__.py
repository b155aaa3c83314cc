"""Generator of the EXI codec modules in ``exi_schemas/generated`` from the official XSDs.

Run ``python -m exi_schemas.generator``. The runtime codec never imports this package.
"""

from __future__ import annotations

import os

from . import xsd
from .emit import ModuleEmitter

# module name -> (title, root XSD relative to the schema folder, namespace prefixes for XML)
SCHEMAS: dict[str, tuple[str, str, dict[str, str]]] = {
    "appprotocol": ("SupportedAppProtocol", "appprotocol/V2G_CI_AppProtocol.xsd",
                    {"app": "urn:iso:15118:2:2010:AppProtocol"}),
    "din": ("DIN SPEC 70121", "din70121/V2G_CI_MsgDef.xsd", {
        "v2gci_d": "urn:din:70121:2012:MsgDef", "v2gci_h": "urn:din:70121:2012:MsgHeader",
        "v2gci_b": "urn:din:70121:2012:MsgBody", "v2gci_t": "urn:din:70121:2012:MsgDataTypes",
        "xmlsig": "http://www.w3.org/2000/09/xmldsig#"}),
    "iso2": ("ISO 15118-2", "iso15118_2/V2G_CI_MsgDef.xsd", {
        "v2gci_d": "urn:iso:15118:2:2013:MsgDef", "v2gci_h": "urn:iso:15118:2:2013:MsgHeader",
        "v2gci_b": "urn:iso:15118:2:2013:MsgBody",
        "v2gci_t": "urn:iso:15118:2:2013:MsgDataTypes",
        "xmlsig": "http://www.w3.org/2000/09/xmldsig#"}),
}
_ISO20 = {"v2gci_ct": "urn:iso:std:iso:15118:-20:CommonTypes",
          "xmlsig": "http://www.w3.org/2000/09/xmldsig#"}
# the types every -20 namespace shares, generated once; the namespace modules import them
ISO20_SHARED = "iso20_types"
SCHEMAS[ISO20_SHARED] = ("ISO 15118-20 CommonTypes and xmldsig",
                         "iso15118_20/V2G_CI_CommonTypes.xsd", dict(_ISO20))
for _name, _file, _prefix, _uri in (
        ("iso20", "CommonMessages", "v2gci_cm", "CommonMessages"),
        ("iso20_dc", "DC", "v2gci_dc", "DC"), ("iso20_ac", "AC", "v2gci_ac", "AC"),
        ("iso20_wpt", "WPT", "v2gci_wpt", "WPT"), ("iso20_acdp", "ACDP", "v2gci_acdp", "ACDP")):
    SCHEMAS[_name] = (f"ISO 15118-20 {_file}", f"iso15118_20/V2G_CI_{_file}.xsd",
                      {_prefix: f"urn:iso:std:iso:15118:-20:{_uri}", **_ISO20})


def default_schema_dir() -> str:
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.path.join(os.path.dirname(repo), "shared", "exi_schemas")


def _emitter(schema_dir: str, name: str, cache: dict[str, ModuleEmitter]) -> ModuleEmitter:
    if name not in cache:
        title, root, _prefixes = SCHEMAS[name]
        schema = xsd.load(os.path.join(schema_dir, root))
        files = sorted({os.path.basename(p) for p in _files(os.path.join(schema_dir, root))})
        shared = None
        if name.startswith("iso20") and name != ISO20_SHARED:
            shared = _emitter(schema_dir, ISO20_SHARED, cache)
        cache[name] = ModuleEmitter(schema, title, ", ".join(files), shared=shared,
                                    shared_module=ISO20_SHARED)
    return cache[name]


def generate(schema_dir: str, name: str, cache: dict[str, ModuleEmitter] | None = None) -> str:
    """The source of module ``name``. Emit the shared -20 module with the same ``cache``
    as the modules importing it (its grammars decide what they may import)."""
    cache = {} if cache is None else cache
    return _emitter(schema_dir, name, cache).emit(SCHEMAS[name][2])


def _files(root: str) -> list[str]:
    ld = xsd._Loader(root)
    return list(ld._seen)


def generate_all(schema_dir: str, only: list[str] | None = None) -> dict[str, str]:
    cache: dict[str, ModuleEmitter] = {}
    return {name: generate(schema_dir, name, cache) for name in SCHEMAS
            if not only or name in only}
