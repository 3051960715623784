"""The generated per-model readers give what cattrs' own functions give, value for value."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, get_args

import attrs
import cattrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bitrix_docgen_async.core import convert
from bitrix_docgen_async.core.convert import _LOCAL, _MODELS, _build, _wire_name

#: cattrs' generated functions with the same hooks: the reference.
REFERENCE = _build(strict=False, fast=False)

QUIRKS: list[Any] = [
    None, "", "5", 5, " 5", "05", "-3", "+7", "٣", "x", True, False, "Y", "N", "1", "0", 1, 0,
    1.5, "1.5", "true", [], {}, ["a", "b"], {"UA": "UA"}, "2024-08-29T10:34:19+03:00",
    "2024-08-29T10:34:19", "https://portal.example/x", {"currencyId": "EUR", "totalSum": "1.00"},
    "NaN", "-Infinity", " 1_000.5 ",
]  # fmt: skip


VALID: dict[Any, list[Any]] = {
    int: [5, "5", "05", " 5", "-3"],
    str: ["x", "", 7],
    bool: [True, False, "Y", "N", "1", 0, "false"],
    datetime: ["2024-08-29T10:34:19+03:00"],
    Decimal: ["1.50", 2, "0"],
}


def valid_values(type_: Any) -> list[Any]:
    """Values of the field's type in the wire's forms (and None/"" for an optional one)."""
    args = get_args(type_)
    inner = next((a for a in args if a is not type(None)), type_) if args else type_
    values = list(VALID.get(inner, [None, [], {}, ["a"], {"UA": "UA"}, 2, "2"]))
    return values + ([None, ""] if type(None) in args else [])


def outcome(conv: cattrs.Converter, data: Any, cls: type) -> tuple[str, Any]:
    try:
        return "ok", conv.structure(data, cls)
    except Exception as exc:
        return "error", cattrs.transform_error(exc)


def wire_keys(cls: type) -> list[str]:
    return [_wire_name(cls, f.name) for f in attrs.fields(cls) if f.name not in _LOCAL]


@pytest.mark.parametrize("cls", _MODELS, ids=lambda c: c.__name__)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_generated_reader_matches_cattrs(cls: type, data: st.DataObject) -> None:
    keys = wire_keys(cls)
    chosen = data.draw(st.lists(st.sampled_from(keys), unique=True))
    types = {_wire_name(cls, f.name): f.type for f in attrs.fields(cls)}
    wire = {
        key: data.draw(
            st.sampled_from(valid_values(types[key])) | st.sampled_from(QUIRKS), label=key
        )
        for key in chosen
    }
    assert outcome(convert.converter, wire, cls) == outcome(REFERENCE, wire, cls)


@pytest.mark.parametrize("cls", _MODELS, ids=lambda c: c.__name__)
def test_generated_reader_matches_cattrs_on_typical_rows(cls: type) -> None:
    # Every key present with a well-formed value of each kind: the fast path itself succeeds.
    for value in QUIRKS:
        wire = dict.fromkeys(wire_keys(cls), value)
        assert outcome(convert.converter, wire, cls) == outcome(REFERENCE, wire, cls)


def test_a_well_formed_row_is_read_by_the_generated_function(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bitrix_docgen_async.models.documents import Document

    row = {"id": "61", "title": "T", "number": "1", "templateId": 3, "entityTypeId": "2",
           "entityId": "7", "pdfUrl": "", "stampsEnabled": "N", "values": [],
           "createTime": "2024-08-29T10:34:19+03:00", "products": {"totalSum": "1.50"}}  # fmt: skip
    fast = convert.converter.structure(row, Document)
    assert fast == REFERENCE.structure(row, Document)
    assert (fast.id, fast.entity_type_id, fast.pdf_url, fast.stamps_enabled) == (61, 2, None, False)


@pytest.mark.parametrize("cls", _MODELS, ids=lambda c: c.__name__)
def test_a_model_stored_through_its_slots_is_a_whole_frozen_instance(cls: type) -> None:
    import pickle

    assert convert._slot_setters(cls) is not None  # the models take the slot path
    wire = {}  # every key, each with the first value of its type that the reference reads
    for field in attrs.fields(cls):
        if field.name not in _LOCAL:
            wire[_wire_name(cls, field.name)] = next(
                v
                for v in valid_values(field.type) + QUIRKS
                if outcome(REFERENCE, v, field.type)[0] == "ok"
            )
    # The generated function itself: through the converter a failure would fall back to cattrs.
    fast = convert._fast_structure_fn(convert.converter, cls)(wire)
    reference = REFERENCE.structure(wire, cls)
    assert fast == reference and repr(fast) == repr(reference)
    assert attrs.astuple(fast, recurse=False) == attrs.astuple(reference, recurse=False)
    assert pickle.loads(pickle.dumps(fast)) == fast  # noqa: S301 - our own bytes
    assert attrs.evolve(fast) == fast
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        fast.__setattr__(attrs.fields(cls)[0].name, None)


@attrs.frozen(cache_hash=True)
class _CachedHash:
    some_id: int


@attrs.frozen
class _Validated:
    some_id: int = attrs.field(validator=attrs.validators.gt(0))


@attrs.frozen
class _Converted:
    some_id: int = attrs.field(converter=abs)


@attrs.frozen
class _PostInit:
    some_id: int
    seen: ClassVar[list[int]] = []

    def __attrs_post_init__(self) -> None:
        self.seen.append(self.some_id)


@attrs.frozen
class _PreInit:
    some_id: int
    seen: ClassVar[list[int]] = []

    def __attrs_pre_init__(self) -> None:
        self.seen.append(0)


@attrs.frozen(init=False)
class _OwnInit:
    some_id: int

    def __init__(self, some_id: int) -> None:
        object.__setattr__(self, "some_id", some_id * 2)


@attrs.frozen
class _OwnNew:
    some_id: int
    seen: ClassVar[list[int]] = []

    def __new__(cls, *args: Any, **kwargs: Any) -> _OwnNew:
        cls.seen.append(0)
        return super().__new__(cls)


@pytest.mark.parametrize(
    "cls", [_CachedHash, _Validated, _Converted, _PostInit, _PreInit, _OwnInit, _OwnNew]
)
def test_a_model_whose_init_does_more_is_built_by_its_init(cls: type) -> None:
    assert convert._slot_setters(cls) is None
    read = convert._fast_structure_fn(convert.converter, cls)
    seen = getattr(cls, "seen", None)
    if seen is not None:
        seen.clear()
    built = read({"someId": "-3"}) if cls is not _Validated else None
    if cls is _CachedHash:
        assert built == cls(-3) and hash(built) == hash(cls(-3))
    elif cls is _Validated:
        with pytest.raises(ValueError):
            read({"someId": "-3"})
    elif cls is _Converted:
        assert built.some_id == 3
    elif cls is _OwnInit:
        assert built.some_id == -6
    else:
        assert seen == ([-3] if cls is _PostInit else [0])


def test_a_sum_that_is_not_finite_is_refused() -> None:
    from bitrix_docgen_async.errors import ResponseError
    from bitrix_docgen_async.models.documents import ProductsSummary

    for text in ("NaN", "-Infinity", "sNaN", " inf "):
        with pytest.raises(ResponseError):
            convert.structure({"totalSum": text}, ProductsSummary)
    assert convert.structure({"totalSum": " 1_000.50 "}, ProductsSummary).total_sum == Decimal(
        "1000.50"
    )
