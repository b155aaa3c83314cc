"""EXI codec generated from the official V2G XSDs (DIN 70121, ISO 15118-2/-20, AppProtocol).

Schema-informed, bit-packed, non-strict EXI with header byte 0x80 and no string-table values:
the settings every V2G stack uses (Josev/EXIficient, libcbv2g, OpenV2G).

    msg = decode(data, "din")             # -> generated.din.V2G_Message
    data = encode(msg)                     # bytes, EXI header included
    xml = to_xml(msg); msg2 = from_xml("din", xml)
    d = to_dict(msg); msg3 = from_dict("din", d)
    digest_input = encode_fragment(signed_info)  # EXI element fragment for XMLDSig

Message classes live in ``exi_schemas.generated.<module>`` (see ``SCHEMAS``); class names are
the XSD type names (anonymous types: the element name), fields are snake_case element and
attribute names. Errors: ``ExiDecodeError`` (with ``bit_offset``) and ``ExiEncodeError``.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from ._runtime import ExiDecodeError, ExiEncodeError, ExiError, Reader, Writer

#: schema name (as used by the CLI and ``decode``) -> generated module name
SCHEMAS: dict[str, str] = {
    "appprotocol": "appprotocol",
    "din": "din",
    "iso2": "iso2",
    "iso20": "iso20",
    "iso20-dc": "iso20_dc",
    "iso20-ac": "iso20_ac",
    "iso20-wpt": "iso20_wpt",
    "iso20-acdp": "iso20_acdp",
}
#: other spellings accepted (the protocol names of the test vectors)
ALIASES: dict[str, str] = {
    "din70121": "din",
    "iso15118_2": "iso2",
    "iso15118_20_common": "iso20",
    "iso15118_20_dc": "iso20-dc",
    "iso15118_20_ac": "iso20-ac",
    "iso15118_20_wpt": "iso20-wpt",
    "iso15118_20_acdp": "iso20-acdp",
}
EXI_HEADER = 0x80  # distinguishing bits 10, no options, final version 1

_roots: dict[str, dict[type, int]] = {}


_modules: dict[str, ModuleType] = {}


def schema_module(schema: str) -> ModuleType:
    """The generated module of ``schema`` (e.g. ``"din"`` or ``"iso20-dc"``)."""
    mod = _modules.get(schema)
    if mod is None:
        name = SCHEMAS.get(ALIASES.get(schema, schema))
        if name is None:
            raise ValueError(f"unknown schema {schema!r}; known: {', '.join(SCHEMAS)}")
        mod = _modules[schema] = importlib.import_module(f"{__name__}.generated.{name}")
    return mod


def _module_of(message: Any) -> ModuleType:
    mod = importlib.import_module(type(message).__module__)
    if not hasattr(mod, "GLOBAL_ELEMENTS") or type(message) not in mod.FIELDS:
        raise ExiEncodeError(f"{type(message).__name__} is not a generated message class")
    return mod


_index_cache: dict[tuple, int] = {}
_tables: dict[type, tuple] = {}  # message class -> GLOBAL_ELEMENTS of its module


def _element_index(mod: ModuleType, table: tuple, cls: type, element: str | None) -> int:
    key = (id(table), cls, element)
    idx = _index_cache.get(key)
    if idx is None:
        idx = _index_cache[key] = _find_element_index(table, cls, element)
    return idx


def _find_element_index(table: tuple, cls: type, element: str | None) -> int:
    matches = [i for i, row in enumerate(table)
               if row[2] is cls and (element is None or row[1] == element)]
    if len(matches) != 1:
        names = [table[i][1] for i in matches]
        raise ExiEncodeError(
            f"cannot tell which element to encode {cls.__name__} as "
            f"({'candidates: ' + ', '.join(names) if names else 'no element has this type'}); "
            "pass element=")
    return matches[0]


def decode(data: bytes, schema: str) -> Any:
    """Decode one EXI document (header 0x80 + one global element) of ``schema``.

    Bytes after the end of the document (padding, a trailing zero byte some cars send) are
    ignored. Any malformed input raises ``ExiDecodeError`` carrying the bit offset.
    """
    mod = schema_module(schema)
    return _decode_with(mod, mod.GLOBAL_ELEMENTS, data)[1]


def decode_element(data: bytes, schema: str) -> tuple[str, Any]:
    """Like ``decode`` but also returns the local name of the root element."""
    mod = schema_module(schema)
    return _decode_with(mod, mod.GLOBAL_ELEMENTS, data)


def _decode_with(mod: ModuleType, table: tuple, data: bytes, fragment: bool = False):
    if type(data) is not bytes:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("decode() needs bytes")
        data = bytes(data)
    if not data:
        raise ExiDecodeError("empty input", 0)
    if data[0] != EXI_HEADER:
        raise ExiDecodeError(f"unsupported EXI header byte 0x{data[0]:02x} (expected 0x80)", 0)
    r = Reader(data, 8)
    try:
        n = len(table)
        width = (n + 1 if fragment else n).bit_length()
        code = r.code(width, n)
        _uri, local, _cls, dec, _enc = table[code]
        value = _decode_relaxed(mod, table, r, code) if fragment else None
        if value is None:
            value = dec(r)
        if fragment:
            r.code(width, n + 2)  # the element-fragment grammar loops until ED (code n+1)
    except ExiDecodeError:
        raise
    except RecursionError:
        raise ExiDecodeError("nesting too deep", r.p) from None
    except Exception as exc:  # noqa: BLE001 - contract: malformed input only ever raises this
        raise ExiDecodeError(f"malformed input ({type(exc).__name__}: {exc})", r.p) from None
    return local, value


def encode(message: Any, element: str | None = None) -> bytes:
    """Encode ``message`` as a complete EXI document (header byte 0x80 included).

    The root element is found from the message's class (``V2G_Message`` for DIN/ISO-2,
    the message element for ISO-20 and AppProtocol); pass ``element`` when a type is used by
    more than one global element.
    """
    cls = type(message)
    idx = _index_cache.get((cls, element))
    if idx is None:
        mod = _module_of(message)
        idx = _index_cache[(cls, element)] = _element_index(
            mod, mod.GLOBAL_ELEMENTS, cls, element)
        _tables[cls] = mod.GLOBAL_ELEMENTS
    return _encode_with(_tables[cls], idx, message, fragment=False)


def _fragment_table(mod: ModuleType, cls: type | None, xmldsig: bool | None) -> tuple | None:
    if xmldsig is None:  # ISO 15118-2 (Annex J) and -20 sign SignedInfo as an EXI fragment
        # of the xmldsig schema's own grammar, not of the message schema's
        xmldsig = cls is not None and cls.__name__ == "SignedInfoType"
    if xmldsig:
        return mod.XMLDSIG_FRAGMENT_ELEMENTS
    # the shared -20 module's own declarations are no namespace's fragment grammar
    return None if mod.__name__.endswith(".iso20_types") else mod.FRAGMENT_ELEMENTS


class _RelaxedFragment:
    """EXI 1.0 §8.5.3: an element qname declared with *different* types (ISO 15118-2
    ``eMAID``: the string ``eMAIDType`` in PaymentDetailsReq, the ``EMAIDType`` with an ``Id``
    attribute in CertificateInstallationRes/UpdateRes) is encoded in an element fragment with
    the *relaxed* element fragment grammar: AT(A0..An-1), AT(*), SE(F0..Fm-1), SE(*), EE,
    CH[untyped] with one event code over all n attributes and m elements, not with either
    type's grammar. The CPS signs the eMAID element's digest, so the bytes matter.

    ``attributes`` (n) and ``id_index`` are EXIficient's (Josev's codec) for the ISO 15118-2
    schemas, read off its bytes (``tests/pnc/josev_signature_vectors.json``); libcbv2g encodes
    the EMAIDType grammar instead (docs/pnc.md)."""

    attributes = 10
    id_index = 4

    @classmethod
    def encode(cls, table: tuple, idx: int, element_id: str, value: str) -> bytes:
        m = len(table)
        w = Writer()
        w.bits(EXI_HEADER, 8)
        width = (m + 1).bit_length()
        w.bits(idx, width)
        first = (cls.attributes + m + 3).bit_length()       # ElementFragment_0: n + m + 4 codes
        w.bits(cls.id_index, first)                          # AT(Id), typed xs:ID -> string
        w.string(element_id)
        w.bits(cls.attributes + m + 3, first)                # CH [untyped value]
        w.string(value)
        w.bits(m + 1, (m + 2).bit_length())                  # ElementFragment_2: EE
        w.bits(m + 1, width)                                 # fragment: ED
        return w.getvalue()

    @classmethod
    def decode(cls, table: tuple, r: Reader, make: type) -> Any:
        m = len(table)
        first = (cls.attributes + m + 3).bit_length()
        expected = ((first, cls.id_index, "AT(Id)"), (first, cls.attributes + m + 3, "CH"))
        values = []
        for width, code, what in expected:
            if r.bits(width) != code:
                r.fail(f"relaxed fragment: expected {what}")
            values.append(r.string())
        if r.bits((m + 2).bit_length()) != m + 1:
            r.fail("relaxed fragment: expected EE")
        return make(id=values[0], value=values[1])


def _relaxed(mod: ModuleType, cls: type | None) -> bool:
    return mod.__name__.endswith(".iso2") and cls is not None and cls.__name__ == "EMAIDType"


def encode_fragment(message: Any, element: str | None = None,
                    xmldsig: bool | None = None, schema: str | None = None) -> bytes:
    """EXI *element fragment* of ``message`` for XMLDSig digests (ISO 15118-2 §7.9.2.4.2).

    Uses the schema-informed fragment grammar (all element declarations, global and local,
    sorted by qname): SD, SE(element), content, ED. ``element`` names the element when its
    type is shared (e.g. ``"SignedInfo"`` is unambiguous, body elements are too).
    ``xmldsig=True`` uses the grammar of the xmldsig schema alone; by default that is done
    for ``SignedInfo`` of every schema (ISO 15118-2 Annex J and -20: the SignatureValue is
    over SignedInfo encoded with the xmldsig grammar, as libcbv2g's ``*_xmldsigFragment`` and
    Josev's codec do), while signed body elements use the message schema's grammar
    (``docs/pnc.md``). ``xmldsig=False`` forces the message schema's fragment grammar.
    The ISO-20 CommonTypes and xmldsig classes are shared by every -20 schema
    (``generated.iso20_types``): for their fragment in a namespace's full grammar
    (``xmldsig=False``) name the namespace with ``schema`` (e.g. ``"iso20"``).
    """
    mod = schema_module(schema) if schema is not None else _module_of(message)
    if type(message) not in mod.FIELDS:
        raise ExiEncodeError(f"{type(message).__name__} is not a class of schema {schema}")
    table = _fragment_table(mod, type(message), xmldsig)
    if table is None:
        raise ExiEncodeError(f"{type(message).__name__} is shared by every ISO 15118-20 "
                             "schema: pass schema= for its fragment in a namespace's grammar")
    idx = _element_index(mod, table, type(message), element)
    if _relaxed(mod, type(message)):
        if message.id is None or message.value is None:
            raise ExiEncodeError("EMAIDType: missing required id or value")
        return _RelaxedFragment.encode(table, idx, message.id, message.value)
    return _encode_with(table, idx, message, fragment=True)


def decode_fragment(data: bytes, schema: str, xmldsig: bool = False) -> tuple[str, Any]:
    """Decode an element fragment produced by ``encode_fragment``: (element name, value).
    Pass ``xmldsig=True`` for a fragment made with the xmldsig grammar (any SignedInfo)."""
    mod = schema_module(schema)
    table = mod.XMLDSIG_FRAGMENT_ELEMENTS if xmldsig else mod.FRAGMENT_ELEMENTS
    return _decode_with(mod, table, data, fragment=True)


def _decode_relaxed(mod: ModuleType, table: tuple, r: Reader, code: int) -> Any:
    """The element's content, or None when its qname is not one of the relaxed ones."""
    cls = table[code][2]
    if isinstance(cls, type) and _relaxed(mod, cls):
        return _RelaxedFragment.decode(table, r, cls)
    return None


def _encode_with(table: tuple, idx: int, message: Any, fragment: bool) -> bytes:
    n = len(table)
    width = (n + 1 if fragment else n).bit_length()
    w = Writer()
    w.bits(EXI_HEADER, 8)
    w.bits(idx, width)
    try:
        table[idx][4](w, message)
    except ExiEncodeError:
        raise
    except RecursionError:
        raise ExiEncodeError("message nesting too deep") from None
    except KeyError as exc:
        raise ExiEncodeError(f"value {exc} is not one of the allowed enumeration values") from None
    except (TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise ExiEncodeError(f"cannot encode: {type(exc).__name__}: {exc}") from None
    if fragment:
        w.bits(n + 1, width)  # ED
    return w.getvalue()


def body_element(message: Any) -> tuple[str, Any] | None:
    """The message inside a DIN/ISO-2 ``V2G_Message``: ``("CurrentDemandReq", obj)``, or None
    for an empty Body. Handy for dispatching one handler per message name."""
    mod = _module_of(message)
    body = getattr(message, "body", None)
    if body is None or type(body) not in mod.FIELDS:
        raise TypeError(f"{type(message).__name__} has no V2G Body")
    for name, _kind, _uri, local, _typ, _lo, _hi in mod.FIELDS[type(body)]:
        value = getattr(body, name)
        if value is not None:
            return local, value
    return None


def to_dict(message: Any) -> dict:
    """JSON-able dict: base64Binary as base64 text, hexBinary as upper-case hex."""
    from . import _convert  # XML/JSON conversion (and lxml) is for tools, not the charger

    return _convert.to_dict(_module_of(message), message)


def from_dict(schema: str, data: dict, element: str | None = None) -> Any:
    """Build a message of ``schema`` from a dict made by ``to_dict``.

    The root class is taken from ``element`` (default: the schema's usual root —
    V2G_Message for DIN/ISO-2; for ISO-20/AppProtocol pass the message element name).
    """
    mod = schema_module(schema)
    cls = _root_class(mod, schema, element)
    from . import _convert

    return _convert.from_dict(mod, cls, data)


def _root_class(mod: ModuleType, schema: str, element: str | None) -> type:
    if element is None:
        if "V2G_Message" in {row[1] for row in mod.GLOBAL_ELEMENTS}:
            element = "V2G_Message"
        else:
            raise ExiEncodeError(f"schema {schema}: pass element= (the root message name)")
    for row in mod.GLOBAL_ELEMENTS:
        if row[1] == element and not isinstance(row[2], str):
            return row[2]
    raise ExiEncodeError(f"schema {schema} has no global complex element {element!r}")


def to_xml(message: Any, element: str | None = None) -> str:
    """The message as an XML document (namespace prefixes as in the test vectors)."""
    from lxml import etree

    from . import _convert

    mod = _module_of(message)
    idx = _element_index(mod, mod.GLOBAL_ELEMENTS, type(message), element)
    uri, local = mod.GLOBAL_ELEMENTS[idx][:2]
    return etree.tostring(_convert.to_element(mod, message, uri, local), encoding="unicode")


def from_xml(schema: str, xml: str | bytes) -> Any:
    """Parse an XML document of ``schema`` into message classes (the root picks the class)."""
    from lxml import etree

    from . import _convert

    mod = schema_module(schema)
    try:
        root = etree.fromstring(xml.encode() if isinstance(xml, str) else xml)
    except etree.XMLSyntaxError as exc:
        raise ExiEncodeError(f"not XML: {exc}") from None
    qname = etree.QName(root)
    for uri, local, cls, _d, _e in mod.GLOBAL_ELEMENTS:
        if (uri or None, local) == (qname.namespace, qname.localname) and not isinstance(
                cls, str):
            return _convert.from_element(mod, cls, root)
    raise ExiEncodeError(f"{root.tag} is not a global element of schema {schema}")


__all__ = [
    "SCHEMAS", "body_element", "ExiDecodeError", "ExiEncodeError", "ExiError", "decode", "decode_element",
    "decode_fragment", "encode", "encode_fragment", "from_dict", "from_xml", "schema_module",
    "to_dict", "to_xml",
]
