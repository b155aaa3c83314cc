"""Generic conversions between the generated message classes and dicts / XML.

They walk the ``FIELDS`` metadata of a generated module, so they work for every schema
without generated code of their own. They are for debugging, tests and the CLI: the
hot path (EXI encode/decode) never uses them.
"""

from __future__ import annotations

import base64
from typing import Any

from lxml import etree

from ._runtime import ExiDecodeError, ExiEncodeError


def _simple_to_text(desc: str, v: Any) -> str:
    if desc.startswith("list:"):
        return " ".join(_simple_to_text(desc[5:], x) for x in v)
    if desc == "bool":
        return "true" if v else "false"
    if desc == "b64":
        return base64.b64encode(v).decode("ascii")
    if desc == "hex":
        return v.hex().upper()
    return str(v)


def _simple_from_text(desc: str, text: str) -> Any:
    if desc.startswith("list:"):
        return [_simple_from_text(desc[5:], x) for x in text.split()]
    if desc == "int":
        return int(text.strip())
    if desc == "bool":
        t = text.strip()
        if t not in ("true", "false", "1", "0"):
            raise ValueError(f"not a boolean: {text!r}")
        return t in ("true", "1")
    if desc == "b64":
        return base64.b64decode("".join(text.split()), validate=True)
    if desc == "hex":
        return bytes.fromhex(text.strip())
    return text


def _simple_to_json(desc: str, v: Any) -> Any:
    if desc.startswith("list:"):
        return [_simple_to_json(desc[5:], x) for x in v]
    if desc in ("b64", "hex"):
        return _simple_to_text(desc, v)
    return v


def _simple_from_json(desc: str, v: Any) -> Any:
    if desc.startswith("list:"):
        return [_simple_from_json(desc[5:], x) for x in v]
    if desc in ("b64", "hex"):
        if not isinstance(v, str):
            raise ValueError(f"expected {'base64' if desc == 'b64' else 'hex'} text, got {v!r}")
        return _simple_from_text(desc, v)
    if desc == "int" and (not isinstance(v, int) or isinstance(v, bool)):
        raise ValueError(f"expected an integer, got {v!r}")
    if desc == "bool" and not isinstance(v, bool):
        raise ValueError(f"expected a boolean, got {v!r}")
    if desc == "str" and not isinstance(v, str):
        raise ValueError(f"expected a string, got {v!r}")
    return v


# -- dicts -------------------------------------------------------------------------------------
def to_dict(module, obj: Any) -> dict:
    out: dict[str, Any] = {}
    for name, _kind, _uri, _local, typ, _lo, hi in module.FIELDS[type(obj)]:
        v = getattr(obj, name)
        if v is None or (hi != 1 and v == []):
            continue
        if isinstance(typ, str):
            out[name] = [_simple_to_json(typ, x) for x in v] if hi != 1 else _simple_to_json(
                typ, v)
        else:
            out[name] = [to_dict(module, x) for x in v] if hi != 1 else to_dict(module, v)
    return out


def from_dict(module, cls: type, data: dict) -> Any:
    if not isinstance(data, dict):
        raise ExiEncodeError(f"{cls.__name__}: expected an object, got {type(data).__name__}")
    fields = module.FIELDS[cls]
    known = {f[0] for f in fields}
    unknown = set(data) - known
    if unknown:
        raise ExiEncodeError(f"{cls.__name__}: unknown fields {sorted(unknown)}")
    kwargs: dict[str, Any] = {}
    for name, _kind, _uri, _local, typ, _lo, hi in fields:
        if name not in data:
            continue
        v = data[name]
        try:
            if hi != 1:
                if not isinstance(v, list):
                    raise ValueError(f"expected a list for {name}")
                kwargs[name] = [_one_from_dict(module, typ, x) for x in v]
            else:
                kwargs[name] = _one_from_dict(module, typ, v)
        except (ValueError, TypeError) as exc:
            raise ExiEncodeError(f"{cls.__name__}.{name}: {exc}") from None
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ExiEncodeError(f"{cls.__name__}: {exc}") from None


def _one_from_dict(module, typ, v):
    if isinstance(typ, str):
        return _simple_from_json(typ, v)
    return from_dict(module, typ, v)


# -- XML -----------------------------------------------------------------------------------------
def to_element(module, obj: Any, uri: str, local: str) -> etree._Element:
    nsmap = {k: v for k, v in module.NAMESPACES.items()}
    root = etree.Element(f"{{{uri}}}{local}" if uri else local, nsmap=nsmap)
    _fill(module, obj, root)
    return root


def _fill(module, obj: Any, el: etree._Element) -> None:
    for name, kind, uri, local, typ, _lo, hi in module.FIELDS[type(obj)]:
        v = getattr(obj, name)
        if v is None:
            continue
        tag = f"{{{uri}}}{local}" if uri else local
        if kind == "attr":
            el.set(tag, _simple_to_text(typ, v))
        elif kind == "value":
            el.text = _simple_to_text(typ, v)
        else:
            for x in (v if hi != 1 else [v]):
                child = etree.SubElement(el, tag)
                if isinstance(typ, str):
                    child.text = _simple_to_text(typ, x)
                else:
                    _fill(module, x, child)


def from_element(module, cls: type, el: etree._Element) -> Any:
    fields = module.FIELDS[cls]
    kwargs: dict[str, Any] = {}
    by_tag = {}
    for f in fields:
        name, kind, uri, local, typ, _lo, hi = f
        tag = f"{{{uri}}}{local}" if uri else local
        try:
            if kind == "attr" and tag in el.attrib:
                kwargs[name] = _simple_from_text(typ, el.attrib[tag])
            elif kind == "value":
                kwargs[name] = _simple_from_text(typ, el.text or "")
        except ValueError as exc:
            raise ExiEncodeError(f"{cls.__name__}.{name}: {exc}") from None
        if kind == "elem":
            by_tag[tag] = f
            if hi != 1:
                kwargs[name] = []
    for child in el:
        if not isinstance(child.tag, str):
            continue  # comments, processing instructions
        f = by_tag.get(child.tag)
        if f is None:
            raise ExiEncodeError(f"{cls.__name__}: unexpected element {child.tag}")
        name, kind, uri, local, typ, _lo, hi = f
        if isinstance(typ, str):
            try:
                v = _simple_from_text(typ, child.text or "")
            except ValueError as exc:
                raise ExiEncodeError(f"{cls.__name__}.{name}: {exc}") from None
        else:
            v = from_element(module, typ, child)
        if hi != 1:
            kwargs[name].append(v)
        else:
            kwargs[name] = v
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ExiEncodeError(f"{cls.__name__}: {exc}") from None


__all__ = ["to_dict", "from_dict", "to_element", "from_element", "ExiDecodeError"]
