"""Smallest valid instances of the generated message classes, built from the schema tables
(``FIELDS``/``FIELD_RULES``): every required field filled with the least value its facets
allow (first enumeration value, lower bound, minimum length), optional fields left out.

The daemon warms its codec with them before it reports READY (one encode + decode of every
message a session of its protocols can exchange), so that the first car after a boot meets
code that has already run. Deterministic and dependency-free.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from . import decode_element, encode, schema_module


def minimal(mod: ModuleType, cls: type) -> Any:
    """The smallest instance of ``cls`` (a generated class of ``mod``) the schema allows."""
    groups: dict[int, list] = {}
    for spec, rule in zip(mod.FIELDS[cls], mod.FIELD_RULES[cls], strict=True):
        item, item_min, abstract, facets = rule
        groups.setdefault(item, []).append((spec, item_min, abstract, facets))
    kwargs: dict[str, Any] = {}
    for members in groups.values():
        if members[0][1] < 1:
            continue
        usable = [m for m in members if not m[2]
                  and (isinstance(m[0][4], str) or m[0][4] not in mod.UNSUPPORTED)]
        if not usable:
            raise ValueError(f"{cls.__name__}: no concrete choice for a required item")
        (name, _kind, _ns, _xml, typ, _lo, hi), item_min, _abstract, facets = usable[0]
        value = _value(mod, typ, facets)
        kwargs[name] = [value] * item_min if hi != 1 else value
    return cls(**kwargs)


def _value(mod: ModuleType, typ: Any, facets: Any) -> Any:
    if not isinstance(typ, str):
        return minimal(mod, typ)
    if typ.startswith("list:"):
        return []
    base, lo, hi, enum, min_len, max_len = facets or (None, None, None, None, None, None)
    if enum:
        return enum[0]
    if typ == "int":
        value = 0 if lo is None else max(lo, 0) if hi is None or hi >= 0 else hi
        return value if hi is None else min(value, hi)
    if typ == "bool":
        return False
    length = max(min_len or 1, 1) if max_len is None else min(max(min_len or 1, 1), max_len)
    if typ in ("b64", "hex"):
        return bytes(length)
    if base in ("ID", "IDREF", "NCName"):
        return "ID1"
    if base == "anyURI":
        return "urn:x"
    return "a" * length


def message_samples(schema: str) -> list[tuple[str, Any]]:
    """(element name, smallest instance) of every request and response of ``schema``: the
    body elements of a DIN/ISO-2 ``V2G_Message`` (each in its own message), the root
    messages of AppProtocol and ISO-20."""
    mod = schema_module(schema)
    samples: list[tuple[str, Any]] = []
    body_type = getattr(mod, "BodyType", None)
    if body_type is not None and hasattr(mod, "V2G_Message"):
        header = minimal(mod, mod.MessageHeaderType)
        for spec in mod.FIELDS[body_type]:
            name, typ = spec[0], spec[4]
            if isinstance(typ, str) or typ in mod.UNSUPPORTED or not spec[3].endswith(
                    ("Req", "Res")):
                continue
            samples.append((spec[3], mod.V2G_Message(
                header=header, body=body_type(**{name: minimal(mod, typ)}))))
        return samples
    for _ns, element, cls, _d, _e in mod.GLOBAL_ELEMENTS:
        if element.endswith(("Req", "Res")) and cls not in mod.UNSUPPORTED:
            samples.append((element, minimal(mod, cls)))
    return samples


def round_trip_all(schema: str) -> int:
    """Encode and decode every message of ``schema`` once; returns how many. Raises when one
    does not come back equal (a codec fault found before any car is)."""
    count = 0
    for element, message in message_samples(schema):
        # DIN/ISO-2: the document element is V2G_Message whatever the body carries
        root = None if hasattr(message, "header") and hasattr(message, "body") else element
        _root, decoded = decode_element(encode(message, root), schema)
        if decoded != message:
            raise ValueError(f"{schema} {element}: warm-up round trip differs")
        count += 1
    return count
