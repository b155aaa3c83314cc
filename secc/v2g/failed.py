"""Schema-valid FAILED responses for every request of a schema, from one mechanism.

A request that fails gets the response of the same name carrying the failure's response code
(DIN 70121 [V2G-DC-390/391/665], ISO 15118-2 [V2G2-538/539], ISO 15118-20 [V2G20-...]: the
SECC answers, then closes). A response type has mandatory elements besides ResponseCode; this
module fills them from the generated codec's own tables (``FIELDS``: occurrence;
``FIELD_RULES``: choice groups and facets), so no message is ever answered with silence for
want of a hand-written builder:

* a value the session supplies (``known``: its present EVSE status, EVSEID, present voltage,
  ...) wins wherever the type has a field of that name;
* otherwise the smallest value the schema accepts: the first enumeration value, 0 (or the
  facet's minimum), False, empty text/bytes, a placeholder ``Id`` for ID attributes, and for
  nested types the same rule recursively; of a required choice the first alternative.

``tests/v2g/test_failed_responses.py`` encodes the result for every response type of DIN,
ISO-2 and -20 with every FAILED code, so a schema change that breaks this shows up there.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

_ID_ATTRIBUTE = "id1"


def _facet(mod: ModuleType, cls: type, index: int) -> tuple | None:
    rules = getattr(mod, "FIELD_RULES", {}).get(cls)
    if not rules or index >= len(rules):
        return None
    return rules[index][3]


def _groups(mod: ModuleType, cls: type) -> list[tuple[int, int]]:
    """(group index, minimum occurrence) per field, from the codec's FIELD_RULES."""
    rules = getattr(mod, "FIELD_RULES", {}).get(cls)
    fields = mod.FIELDS.get(cls, ())
    if not rules:
        return [(i, f[5]) for i, f in enumerate(fields)]
    return [(r[0], r[1]) for r in rules]


def _scalar(kind: str, facet: tuple | None, name: str, attr: bool) -> Any:
    if facet is not None and facet[3]:
        return facet[3][0]                       # first enumeration value
    if kind == "int":
        low = facet[1] if facet is not None and facet[1] is not None else 0
        high = facet[2] if facet is not None and facet[2] is not None else 0
        return max(low, min(0, high))
    if kind == "bool":
        return False
    if kind in ("b64", "hex"):
        return b""
    if facet is not None and facet[0] in ("ID", "IDREF", "NCName"):
        return _ID_ATTRIBUTE
    if attr and name == "id":
        return _ID_ATTRIBUTE
    return ""


def minimal(mod: ModuleType, cls: type, known: dict[str, Any] | None = None,
            _depth: int = 0) -> Any:
    """The smallest schema-valid instance of ``cls``; ``known`` values where names match."""
    known = known or {}
    fields = mod.FIELDS.get(cls, ())
    groups = _groups(mod, cls)
    values: dict[str, Any] = {}
    # fields the caller knows: set when the type has them (never overriding a choice twice)
    chosen_groups: set[int] = set()
    for i, f in enumerate(fields):
        name = f[0]
        if name in known and known[name] is not None:
            group = groups[i][0] if i < len(groups) else i
            if group in chosen_groups and _is_choice(groups, group):
                continue
            values[name] = known[name]
            chosen_groups.add(group)
    for i, f in enumerate(fields):
        name, kind, _ns, _element, typ, min_occurs = f[0], f[1], f[2], f[3], f[4], f[5]
        if name in values:
            continue
        group, group_min = groups[i] if i < len(groups) else (i, min_occurs)
        choice = _is_choice(groups, group)
        required = min_occurs >= 1 or (choice and group_min >= 1)
        if not required or (choice and group in chosen_groups):
            continue
        chosen_groups.add(group)
        if isinstance(typ, str):
            value = _scalar(typ, _facet(mod, cls, i), name, kind == "attr")
        else:
            value = minimal(mod, typ, known if _depth < 1 else None, _depth + 1)
        values[name] = [value] if _is_list(cls, name) else value
    return cls(**values)


def _element_type(mod: ModuleType, element: str) -> type | None:
    """The type of a message element (DIN/-2: a BodyType member; -20: a global element)."""
    if hasattr(mod, "BodyType"):
        rows = ((f[3], f[4]) for f in mod.FIELDS[mod.BodyType])
    else:
        rows = ((row[1], row[2]) for row in getattr(mod, "GLOBAL_ELEMENTS", ()))
    return next((typ for name, typ in rows if name == element and isinstance(typ, type)),
                None)


def _is_choice(groups: list[tuple[int, int]], group: int) -> bool:
    return sum(1 for g, _ in groups if g == group) > 1


def _is_list(cls: type, name: str) -> bool:
    annotation = cls.__dataclass_fields__[name].type
    return isinstance(annotation, str) and annotation.startswith("list[")


def failed_response(mod: ModuleType, request_name: str, code: str,
                    known: dict[str, Any] | None = None) -> tuple[str, Any]:
    """(response element name, response object) for ``request_name`` with ``code``; the
    object is None only when the schema has no such response type."""
    response_name = request_name[:-3] + "Res"
    cls = _element_type(mod, response_name)
    if cls is None:
        return response_name, None
    values = dict(known or {})
    values["response_code"] = code
    return response_name, minimal(mod, cls, values)
