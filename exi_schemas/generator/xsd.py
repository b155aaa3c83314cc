"""A small reader for the subset of XML Schema the V2G schemas use.

It resolves includes/imports, named types, extensions, substitution groups and facets into a
plain model (``Schema``) that the grammar builder can walk. It is deliberately limited to what
appears in the DIN 70121, ISO 15118-2/-20, AppProtocol and xmldsig schemas; anything else raises
``NotImplementedError`` so a new schema cannot be silently mis-read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from lxml import etree

XS = "http://www.w3.org/2001/XMLSchema"
QName = tuple[str, str]  # (namespace uri, local name)


def _xs(tag: str) -> str:
    return f"{{{XS}}}{tag}"


@dataclass
class SimpleType:
    """A simple type reduced to what EXI needs: the built-in base and the facets."""

    name: QName | None
    builtin: str  # local name of the primitive/built-in ancestor that decides the EXI codec
    enumeration: list[str] | None = None
    min_inclusive: int | None = None
    max_inclusive: int | None = None
    min_length: int | None = None
    max_length: int | None = None
    item_type: SimpleType | None = None  # for xs:list
    base_name: str = ""  # the XSD built-in it derives from (ID, anyURI, short, ...)


@dataclass
class ElementDecl:
    qname: QName
    type: ComplexType | SimpleType
    abstract: bool = False
    is_global: bool = False
    subst_head: QName | None = None
    nillable: bool = False


@dataclass
class Wildcard:
    namespaces: str  # the raw namespace constraint ("##any", "##other", ...)


@dataclass
class Particle:
    min: int
    max: int | None  # None = unbounded
    term: ElementDecl | Wildcard | Group


@dataclass
class Group:
    kind: str  # "sequence" | "choice"
    particles: list[Particle]


@dataclass
class AttributeUse:
    qname: QName
    type: SimpleType
    required: bool


@dataclass
class ComplexType:
    name: QName | None
    attributes: list[AttributeUse] = field(default_factory=list)
    content: Particle | None = None  # element content model
    simple_content: SimpleType | None = None
    mixed: bool = False
    abstract: bool = False


@dataclass
class Schema:
    elements: dict[QName, ElementDecl]  # global elements
    complex_types: dict[QName, ComplexType]
    simple_types: dict[QName, SimpleType]
    substitutions: dict[QName, list[ElementDecl]]  # head -> direct members
    all_element_decls: list[ElementDecl]  # global and local, for the fragment grammar

    def substitutables(self, decl: ElementDecl) -> list[ElementDecl]:
        """The head and every transitive member, sorted by local name then URI.

        Abstract heads keep their production (EXIficient and libcbv2g assign them an event
        code although no instance can use it), so they are not filtered out here. Local
        element declarations are never substitution-group heads.
        """
        if not decl.is_global:
            return [decl]
        found: dict[QName, ElementDecl] = {}
        stack = [decl]
        while stack:
            d = stack.pop()
            if d.qname in found:
                continue
            found[d.qname] = d
            stack.extend(self.substitutions.get(d.qname, []))
        members = list(found.values())
        return sorted(members, key=lambda d: (d.qname[1], d.qname[0]))


_INT_RANGES = {
    "byte": (-128, 127),
    "short": (-32768, 32767),
    "int": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1),
    "unsignedByte": (0, 255),
    "unsignedShort": (0, 65535),
    "unsignedInt": (0, 2**32 - 1),
    "unsignedLong": (0, 2**64 - 1),
    "nonNegativeInteger": (0, None),
    "positiveInteger": (1, None),
    "nonPositiveInteger": (None, 0),
    "negativeInteger": (None, -1),
    "integer": (None, None),
}
_STRINGS = {
    "string", "normalizedString", "token", "anyURI", "ID", "IDREF", "NCName", "Name",
    "language", "NMTOKEN",
}
_BUILTINS = set(_INT_RANGES) | _STRINGS | {"boolean", "base64Binary", "hexBinary"}


def _builtin_type(local: str) -> SimpleType:
    if local not in _BUILTINS:
        raise NotImplementedError(f"built-in type xs:{local}")
    if local in _INT_RANGES:
        lo, hi = _INT_RANGES[local]
        return SimpleType((XS, local), "integer", min_inclusive=lo, max_inclusive=hi,
                          base_name=local)
    if local in _STRINGS:
        return SimpleType((XS, local), "string", base_name=local)
    return SimpleType((XS, local), local, base_name=local)


class _Loader:
    def __init__(self, root_file: str) -> None:
        self.docs: list[tuple[etree._Element, str]] = []  # (schema element, target ns)
        self._seen: set[str] = set()
        self._load(os.path.abspath(root_file))
        self.raw_elements: dict[QName, tuple[etree._Element, str]] = {}
        self.raw_ctypes: dict[QName, tuple[etree._Element, str]] = {}
        self.raw_stypes: dict[QName, tuple[etree._Element, str]] = {}
        self.raw_groups: dict[QName, tuple[etree._Element, str]] = {}
        for doc, tns in self.docs:
            for child in doc:
                name = child.get("name")
                table = {
                    _xs("element"): self.raw_elements,
                    _xs("complexType"): self.raw_ctypes,
                    _xs("simpleType"): self.raw_stypes,
                    _xs("group"): self.raw_groups,
                }.get(child.tag)
                if table is not None:
                    table[(tns, name)] = (child, tns)
        self.ctypes: dict[QName, ComplexType] = {}
        self.stypes: dict[QName, SimpleType] = {}
        self.elements: dict[QName, ElementDecl] = {}
        self.all_decls: list[ElementDecl] = []

    def _load(self, path: str) -> None:
        if path in self._seen:
            return
        self._seen.add(path)
        doc = etree.parse(path).getroot()
        self.docs.append((doc, doc.get("targetNamespace", "")))
        for child in doc:
            if child.tag in (_xs("import"), _xs("include")) and child.get("schemaLocation"):
                self._load(os.path.join(os.path.dirname(path), child.get("schemaLocation")))

    # -- helpers -------------------------------------------------------------------------
    @staticmethod
    def _schema_of(node: etree._Element) -> etree._Element:
        while node.tag != _xs("schema"):
            node = node.getparent()
        return node

    def _resolve(self, node: etree._Element, prefixed: str) -> QName:
        prefix, _, local = prefixed.rpartition(":")
        uri = node.nsmap.get(prefix or None, "")
        return (uri, local)

    # -- simple types ----------------------------------------------------------------------
    def simple_type(self, qname: QName) -> SimpleType:
        if qname[0] == XS:
            return _builtin_type(qname[1])
        if qname not in self.stypes:
            node, _ = self.raw_stypes[qname]
            st = self._parse_simple(node)
            st.name = qname
            self.stypes[qname] = st
        return self.stypes[qname]

    def _parse_simple(self, node: etree._Element) -> SimpleType:
        restriction = node.find(_xs("restriction"))
        if restriction is not None:
            if restriction.get("base"):
                base = self.simple_type(self._resolve(restriction, restriction.get("base")))
            else:
                base = self._parse_simple(restriction.find(_xs("simpleType")))
            st = SimpleType(None, base.builtin, base.enumeration, base.min_inclusive,
                            base.max_inclusive, base.min_length, base.max_length, base.item_type,
                            base.base_name)
            enums = [e.get("value") for e in restriction.findall(_xs("enumeration"))]
            if enums:
                st.enumeration = enums
            for facet, attr in (("minInclusive", "min_inclusive"),
                                ("maxInclusive", "max_inclusive")):
                f = restriction.find(_xs(facet))
                if f is not None:
                    setattr(st, attr, int(f.get("value")))
            f = restriction.find(_xs("minExclusive"))
            if f is not None:
                st.min_inclusive = int(f.get("value")) + 1
            f = restriction.find(_xs("maxExclusive"))
            if f is not None:
                st.max_inclusive = int(f.get("value")) - 1
            for facet, attr in (("minLength", "min_length"), ("maxLength", "max_length")):
                f = restriction.find(_xs(facet))
                if f is not None:
                    setattr(st, attr, int(f.get("value")))
            f = restriction.find(_xs("length"))
            if f is not None:
                st.min_length = st.max_length = int(f.get("value"))
            return st
        lst = node.find(_xs("list"))
        if lst is not None:
            if lst.get("itemType"):
                item = self.simple_type(self._resolve(lst, lst.get("itemType")))
            else:
                item = self._parse_simple(lst.find(_xs("simpleType")))
            return SimpleType(None, "list", item_type=item, base_name="list")
        raise NotImplementedError(etree.tostring(node)[:200])

    # -- complex types ---------------------------------------------------------------------
    def complex_type(self, qname: QName) -> ComplexType:
        if qname not in self.ctypes:
            node, tns = self.raw_ctypes[qname]
            ct = ComplexType(qname)
            self.ctypes[qname] = ct  # registered first: recursive types refer to it
            self._fill_complex(ct, node, tns)
        return self.ctypes[qname]

    def type_of(self, node: etree._Element, qname: QName) -> ComplexType | SimpleType:
        if qname[0] == XS:
            if qname[1] == "anyType":
                return ComplexType((XS, "anyType"), content=Particle(
                    0, None, Wildcard("##any")), mixed=True)
            return _builtin_type(qname[1])
        if qname in self.raw_ctypes:
            return self.complex_type(qname)
        return self.simple_type(qname)

    def _attr_form(self, node: etree._Element) -> bool:
        return self._schema_of(node).get("attributeFormDefault") == "qualified"

    def _elem_form(self, node: etree._Element) -> bool:
        return self._schema_of(node).get("elementFormDefault") == "qualified"

    def _fill_complex(self, ct: ComplexType, node: etree._Element, tns: str) -> None:
        ct.mixed = node.get("mixed") == "true"
        ct.abstract = node.get("abstract") == "true"
        body = node
        cc = node.find(_xs("complexContent"))
        sc = node.find(_xs("simpleContent"))
        own_particles: list[Particle] = []
        if cc is not None:
            if cc.get("mixed") == "true":
                ct.mixed = True
            deriv = cc[0] if cc[0].tag != _xs("annotation") else cc[1]
            base = self.type_of(deriv, self._resolve(deriv, deriv.get("base")))
            assert isinstance(base, ComplexType)
            if deriv.tag == _xs("extension"):
                ct.attributes.extend(base.attributes)
                if base.content is not None:
                    own_particles.append(base.content)
                ct.mixed = ct.mixed or base.mixed
            body = deriv
        elif sc is not None:
            deriv = [c for c in sc if c.tag != _xs("annotation")][0]
            base = self.type_of(deriv, self._resolve(deriv, deriv.get("base")))
            if isinstance(base, ComplexType):
                ct.attributes.extend(base.attributes)
                ct.simple_content = base.simple_content
            else:
                ct.simple_content = base
            if deriv.tag == _xs("restriction"):
                tmp = self._parse_simple(deriv) if deriv.find(_xs("simpleType")) is None else None
                if tmp is not None and (tmp.enumeration or tmp.max_length is not None):
                    ct.simple_content = tmp
            body = deriv
        for child in body:
            if child.tag in (_xs("sequence"), _xs("choice"), _xs("group"), _xs("all")):
                own_particles.append(self._particle(child, tns))
            elif child.tag == _xs("attribute"):
                use = self._attribute(child, tns)
                if use is not None:
                    ct.attributes = [a for a in ct.attributes if a.qname != use.qname] + [use]
            elif child.tag == _xs("anyAttribute"):
                raise NotImplementedError("anyAttribute")
        particles = [p for p in own_particles if p is not None]
        if len(particles) == 1:
            ct.content = particles[0]
        elif particles:
            ct.content = Particle(1, 1, Group("sequence", particles))

    def _attribute(self, node: etree._Element, tns: str) -> AttributeUse | None:
        if node.get("use") == "prohibited":
            return None
        if node.get("ref"):
            raise NotImplementedError("attribute ref")
        form = node.get("form")
        qualified = form == "qualified" if form else self._attr_form(node)
        qname = (tns if qualified else "", node.get("name"))
        if node.get("type"):
            st = self.simple_type(self._resolve(node, node.get("type")))
        else:
            st = self._parse_simple(node.find(_xs("simpleType")))
        return AttributeUse(qname, st, node.get("use") == "required")

    def _occurs(self, node: etree._Element) -> tuple[int, int | None]:
        mx = node.get("maxOccurs", "1")
        return int(node.get("minOccurs", "1")), None if mx == "unbounded" else int(mx)

    def _particle(self, node: etree._Element, tns: str) -> Particle:
        lo, hi = self._occurs(node)
        tag = node.tag
        if tag == _xs("element"):
            return Particle(lo, hi, self._element(node, tns, is_global=False))
        if tag == _xs("any"):
            return Particle(lo, hi, Wildcard(node.get("namespace", "##any")))
        if tag == _xs("group"):
            gnode, gtns = self.raw_groups[self._resolve(node, node.get("ref"))]
            inner = [c for c in gnode if c.tag != _xs("annotation")][0]
            p = self._particle(inner, gtns)
            return Particle(lo, hi, p.term) if (p.min, p.max) == (1, 1) else Particle(
                lo, hi, Group("sequence", [p]))
        if tag in (_xs("sequence"), _xs("choice")):
            kids = [self._particle(c, tns) for c in node
                    if c.tag in (_xs("element"), _xs("any"), _xs("sequence"), _xs("choice"),
                                 _xs("group"))]
            return Particle(lo, hi, Group(tag.split("}")[1], kids))
        raise NotImplementedError(tag)

    def _element(self, node: etree._Element, tns: str, is_global: bool) -> ElementDecl:
        if node.get("ref"):
            return self.global_element(self._resolve(node, node.get("ref")))
        form = node.get("form")
        qualified = True if is_global else (form == "qualified" if form else self._elem_form(node))
        qname = (tns if qualified else "", node.get("name"))
        if node.get("type"):
            typ = self.type_of(node, self._resolve(node, node.get("type")))
        elif node.find(_xs("complexType")) is not None:
            typ = ComplexType(None)
            self._fill_complex(typ, node.find(_xs("complexType")), tns)
        elif node.find(_xs("simpleType")) is not None:
            typ = self._parse_simple(node.find(_xs("simpleType")))
        else:
            typ = self.type_of(node, (XS, "anyType"))
        decl = ElementDecl(qname, typ, abstract=node.get("abstract") == "true",
                           is_global=is_global, nillable=node.get("nillable") == "true")
        if node.get("substitutionGroup"):
            decl.subst_head = self._resolve(node, node.get("substitutionGroup"))
        if not is_global:
            self.all_decls.append(decl)
        return decl

    def global_element(self, qname: QName) -> ElementDecl:
        if qname not in self.elements:
            node, tns = self.raw_elements[qname]
            # Placeholder first so that recursive references terminate.
            self.elements[qname] = ElementDecl(qname, ComplexType(None), is_global=True)
            decl = self._element(node, tns, is_global=True)
            placeholder = self.elements[qname]
            placeholder.type, placeholder.abstract = decl.type, decl.abstract
            placeholder.subst_head, placeholder.nillable = decl.subst_head, decl.nillable
            self.all_decls.append(placeholder)
        return self.elements[qname]


def load(root_file: str) -> Schema:
    """Read ``root_file`` and everything it imports into a ``Schema``."""
    ld = _Loader(root_file)
    for qname in ld.raw_elements:
        ld.global_element(qname)
    for qname in ld.raw_ctypes:
        ld.complex_type(qname)
    subst: dict[QName, list[ElementDecl]] = {}
    for decl in ld.elements.values():
        if decl.subst_head:
            subst.setdefault(decl.subst_head, []).append(decl)
    return Schema(ld.elements, ld.ctypes, ld.stypes, subst, ld.all_decls)
