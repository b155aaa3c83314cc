"""EXI schema-informed, non-strict grammars for the V2G schemas (W3C EXI 1.0 §8.5.4).

Every complex type of the V2G schemas (and all xmldsig types the messages use) has a *flat*
content model: a sequence of particles, each an element (possibly the head of a substitution
group), a choice of single elements, or a wildcard, with min/max occurrences. For such a model
the normalized EXI grammar has one state per (particle index, occurrences so far), which this
module represents without unrolling: the productions of a state only depend on whether the
count is below minOccurs, between minOccurs and maxOccurs, or at maxOccurs.

Attributes are items too (sorted by local name then URI, §8.5.4.1.3), as is the character
content of a simple-content type. Event codes are ordered AT(qname), SE(qname) in schema order,
SE(*) wildcards, EE, CH (§8.5.4.3). Non-strict mode (§8.5.4.4) adds second-level productions
(xsi:type, xsi:nil, AT(*), SE(*), CH untyped, ...) to every state, so every first-level event
code takes ``len(productions).bit_length()`` bits = ceil(log2(n + 1)).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .xsd import (
    AttributeUse,
    ComplexType,
    ElementDecl,
    Group,
    Particle,
    Schema,
    SimpleType,
    Wildcard,
)

END = -1  # item index of EE


# Grammar facts of the reference implementation (EXIficient inside Josev's EXICodec.jar, which
# produced the test vectors and what many EV stacks derive from): for these particles the
# grammar does not close the loop at maxOccurs — the state after the last allowed occurrence
# still offers another one, so its event code is one bit wider. Measured by encoding each
# repeated particle at exactly maxOccurs with our codec and decoding/re-encoding it with
# Josev 0.31.2 (tests/exi/test_exi_vectors.py pins RootCertificateID with a vector): ISO-2
# behaves as if these lists were unbounded (as in the ISO 15118-2 draft schema), and every list
# of 1024 or more entries is open (ISO-2 and ISO-20). Shorter lists elsewhere (AppProtocol 20,
# ISO-20 RootCertificateID 20, ProviderID 128, ...) close as the EXI specification says.
# maxOccurs is still enforced as a count by encoder and decoder.
_ISO2_DT = "urn:iso:15118:2:2013:MsgDataTypes"
OPEN_LOOP_AT_MAX = {
    (_ISO2_DT, "ListOfRootCertificateIDsType", "RootCertificateID"),
    (_ISO2_DT, "SelectedServiceListType", "SelectedService"),
    (_ISO2_DT, "ParameterSetType", "Parameter"),
    (_ISO2_DT, "ServiceParameterListType", "ParameterSet"),
    (_ISO2_DT, "ChargingProfileType", "ProfileEntry"),
    (_ISO2_DT, "PMaxScheduleType", "PMaxScheduleEntry"),
    (_ISO2_DT, "SalesTariffType", "SalesTariffEntry"),
}
OPEN_LOOP_FROM = 1024  # lists this long are open in EXIficient whatever the schema


@dataclass
class Item:
    """One position of the flat model: an attribute, a content particle or the simple value."""

    kind: str  # "attr" | "elem" | "value"
    min: int
    max: int | None
    alts: list  # AttributeUse | ElementDecl | Wildcard | SimpleType, in event-code order
    name: str = ""  # Python field base name
    open_loop: bool = False  # see OPEN_LOOP_AT_MAX


@dataclass
class State:
    """A grammar state: the ordered first-level productions as (item index, alt index)."""

    key: tuple
    prods: list[tuple[int, int]]
    mixed: bool = False  # a first-level CH[untyped] production follows EE

    @property
    def width(self) -> int:
        return (len(self.prods) + (1 if self.mixed else 0)).bit_length()


@dataclass
class TypeGrammar:
    ctype: ComplexType
    items: list[Item]
    supported: bool = True
    states: dict[tuple, State] = field(default_factory=dict)

    def state(self, i: int, count: int) -> State:
        """State after ``count`` occurrences of item ``i`` (count 0 = before item i)."""
        item = self.items[i] if i < len(self.items) else None
        if item is not None and count > 0:
            regime = "need" if count < item.min else (
                "more" if item.max is None or count < item.max or item.open_loop else "full")
        else:
            regime = "start"
        key = (i, regime)
        if key in self.states:
            return self.states[key]
        prods: list[tuple[int, int]] = []
        j = i
        if item is not None and count > 0:
            if regime in ("need", "more"):
                prods.extend((i, a) for a in range(len(item.alts)))
            j = i + 1
        reached_content = False
        if regime != "need":
            while True:
                if j >= len(self.items):
                    prods.append((END, 0))
                    reached_content = True
                    break
                it = self.items[j]
                if it.kind != "attr":
                    reached_content = True
                prods.extend((j, a) for a in range(len(it.alts)))
                if it.min > 0:
                    break
                j += 1
        if item is not None and item.kind != "attr":
            reached_content = True
        # §8.5.4.3 ordering: AT, SE(qname), SE(*), EE (CH value items come last naturally).
        def rank(p: tuple[int, int]) -> int:
            if p[0] == END:
                return 3
            alt = self.items[p[0]].alts[p[1]]
            if isinstance(alt, AttributeUse):
                return 0
            if isinstance(alt, ElementDecl):
                return 1
            if isinstance(alt, Wildcard):
                return 2
            return 4  # value (CH)
        prods.sort(key=rank)
        st = State(key, prods, mixed=self.ctype.mixed and reached_content)
        self.states[key] = st
        return st


def _flatten(p: Particle) -> list[Particle] | None:
    t = p.term
    if isinstance(t, Group) and t.kind == "sequence" and (p.min, p.max) == (1, 1):
        out: list[Particle] = []
        for c in t.particles:
            sub = _flatten(c)
            if sub is None:
                return None
            out.extend(sub)
        return out
    if isinstance(t, Group) and t.kind == "sequence" and len(t.particles) == 1:
        inner = t.particles[0]
        if (inner.min, inner.max) == (1, 1):
            return _flatten(Particle(p.min, p.max, inner.term))
        return None
    if isinstance(t, Group) and t.kind == "choice":
        if all(isinstance(c.term, (ElementDecl, Wildcard)) and (c.min, c.max) == (1, 1)
               for c in t.particles):
            return [p]
        return None
    if isinstance(t, Group):
        return None  # nested optional/repeated groups (xmldsig DSAKeyValue, SPKIData)
    return [p]


def build(schema: Schema, ct: ComplexType) -> TypeGrammar:
    items: list[Item] = []
    for a in sorted(ct.attributes, key=lambda a: (a.qname[1], a.qname[0])):
        items.append(Item("attr", 1 if a.required else 0, 1, [a], a.qname[1]))
    supported = True
    if ct.simple_content is not None:
        items.append(Item("value", 1, 1, [ct.simple_content], "value"))
    elif ct.content is not None:
        flat = _flatten(ct.content)
        if flat is None:
            supported = False
            flat = []
        for p in flat:
            t = p.term
            terms = t.particles if isinstance(t, Group) else [p]
            alts: list = []
            for c in terms:
                if isinstance(c.term, ElementDecl):
                    alts.extend(schema.substitutables(c.term))
                else:
                    alts.append(c.term)
            if not alts:
                continue
            open_loop = (p.max is not None and p.max >= OPEN_LOOP_FROM) or (
                ct.name is not None and len(alts) == 1 and isinstance(alts[0], ElementDecl)
                and (ct.name[0], ct.name[1], alts[0].qname[1]) in OPEN_LOOP_AT_MAX)
            items.append(Item("elem", p.min, p.max, alts, open_loop=open_loop))
    return TypeGrammar(ct, items, supported)


def is_emptiable(g: TypeGrammar) -> bool:
    return all(i.min == 0 for i in g.items)


__all__ = ["END", "Item", "State", "TypeGrammar", "build", "is_emptiable", "SimpleType"]
