"""The generated message classes behave as the dataclasses they are declared as: their
``__init__``, ``__eq__`` and ``__repr__`` are written out by the generator (compiled into the
.pyc instead of exec()'d by @dataclass at every import, issue 13), so check they match."""

from __future__ import annotations

import dataclasses

import pytest

from exi_schemas.generated import din, iso2, iso20, iso20_dc


def test_defaults_required_fields_and_fresh_lists():
    a = iso2.SAScheduleListType()
    b = iso2.SAScheduleListType()
    assert a.sa_schedule_tuple == [] and a.sa_schedule_tuple is not b.sa_schedule_tuple
    assert iso2.SAScheduleListType(sa_schedule_tuple=None).sa_schedule_tuple is None
    header = din.MessageHeaderType(session_id=b"\x01")
    assert header.notification is None and header.signature is None
    with pytest.raises(TypeError):
        din.MessageHeaderType()  # session_id is required
    with pytest.raises(TypeError):
        din.MessageHeaderType(b"\x01")  # keyword-only, as kw_only=True makes it


def test_equality_repr_and_hash_as_a_dataclass():
    one = iso20.RationalNumberType(exponent=-1, value=5)
    assert one == iso20_dc.RationalNumberType(exponent=-1, value=5)  # one shared class
    assert one != iso20.RationalNumberType(exponent=0, value=5)
    assert one != (-1, 5) and (one == object()) is False
    assert repr(one) == "RationalNumberType(exponent=-1, value=5)"
    with pytest.raises(TypeError):
        hash(one)  # eq without frozen: unhashable, as @dataclass(eq=True) makes it


def test_dataclass_tools_still_work():
    header = iso2.MessageHeaderType(session_id=b"\x01\x02")
    assert dataclasses.is_dataclass(header)
    assert [f.name for f in dataclasses.fields(header)] == ["session_id", "notification",
                                                            "signature"]
    assert dataclasses.replace(header, session_id=b"\x03").session_id == b"\x03"
    assert dataclasses.asdict(header)["session_id"] == b"\x01\x02"
    assert not hasattr(header, "__dict__")  # slots
