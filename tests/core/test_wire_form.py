"""One wire form: a call sent alone and the same call sent in a batch reach the portal alike.

The client builds both from :func:`normalize_params`'s output with the one PHP encoder: a lone
call as a form body (:func:`encode_form_body`), a batched one as a ``cmd`` entry
(:func:`build_command`) inside a batch's form body. Here each is decoded the way the portal
decodes it (the fake portal's own ``parse_str`` and batch-command reader), and the two must
agree, and equal what PHP makes of the parameters (:func:`php_normalize`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bitrix_docgen_async.core.encoding import (
    MAX_INPUT_NESTING_LEVEL,
    build_command,
    encode_form_body,
    encode_query,
    parse_str,
    php_normalize,
)
from bitrix_docgen_async.core.params import PHP_INT_MAX, PHP_INT_MIN, normalize_params
from bitrix_docgen_async.testing.batch import BatchRun, parse_commands

METHOD = "crm.documentgenerator.document.add"


def ordered(value: Any) -> Any:
    """Dicts as lists of items, so that comparisons also check PHP's key order."""
    if isinstance(value, dict):
        return [(key, ordered(item)) for key, item in value.items()]
    return value


def received_alone(params: dict[str, Any], auth: Mapping[str, str]) -> dict[str, Any]:
    """What the portal's method gets from a lone call (the session's payload, the portal's read).

    The session sends ``{**params, **auth.body_params()}`` as a form body; the fake portal reads
    it with ``parse_str`` and takes ``auth`` out as the credentials.
    """
    body = encode_form_body({**params, **auth})
    assert body.isascii()
    decoded = parse_str(body)
    decoded.pop("auth", None)
    return decoded


def received_batched(params: dict[str, Any], auth: Mapping[str, str]) -> dict[str, Any]:
    """What the portal's method gets when the same call is command ``c1`` of a batch."""
    other = build_command("crm.documentgenerator.document.get", {"id": 7})
    body = encode_form_body(
        {"halt": 0, "cmd": {"c0": other, "c1": build_command(METHOD, params)}, **auth}
    )
    assert body.isascii()
    envelope = parse_str(body)
    envelope.pop("auth", None)
    commands, halt = parse_commands(envelope)
    assert not halt and [key for key, _ in commands] == ["c0", "c1"]
    method, decoded = BatchRun().prepare(commands[1][1])
    assert method == METHOD
    return decoded


# -- strategies -----------------------------------------------------------------------------------

_KEYS = st.one_of(
    st.text(max_size=6).filter(lambda key: "[" not in key and "]" not in key and "\0" not in key),
    st.sampled_from(["", " ", "a.b", "a b", "0", "1", "-1", "05", "%", "&", "=", "+", "#", "?"]),
    st.integers(-3, 12),
)
_TEXT = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "a&b=c", "[x]", "%41", "+", "#?", "é", "Привет", "😀", "\0", "$x"]),
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(PHP_INT_MIN, PHP_INT_MAX),
    st.sampled_from([0, -1, PHP_INT_MAX, PHP_INT_MIN, 0.0, -0.0, 1e17, 1.5e-7, 5e-324, 1e308]),
    st.floats(allow_nan=False, allow_infinity=False),
    _TEXT,
)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    lists = st.lists(children, max_size=4)
    mappings = st.dictionaries(_KEYS, children, max_size=4)
    return st.one_of(
        lists,
        lists.map(tuple),
        mappings,
        mappings.map(MappingProxyType),
        st.integers(0, 3).map(range),
    )


_VALUES = st.recursive(_SCALARS, _containers, max_leaves=14)
_PARAMS = st.one_of(
    st.dictionaries(_KEYS, _VALUES, max_size=6),
    st.dictionaries(_KEYS, _VALUES, max_size=6).map(MappingProxyType),
)
_AUTH = st.sampled_from([{}, {"auth": "0123456789abcdef"}])


def _sendable_by_the_encoder(value: Any) -> bool:
    """Whether ``encode_query`` takes ``value`` as it is (it knows no ranges)."""
    if isinstance(value, range):
        return False
    if isinstance(value, Mapping):
        return all(_sendable_by_the_encoder(item) for item in value.values())
    if isinstance(value, list | tuple):
        return all(_sendable_by_the_encoder(item) for item in value)
    return True


# -- the property ---------------------------------------------------------------------------------


@settings(max_examples=600, deadline=None)
@given(_PARAMS, _AUTH)
def test_a_call_reaches_the_portal_alike_alone_and_batched(
    params: Mapping[Any, Any], auth: dict[str, str]
) -> None:
    try:
        plain = normalize_params(params)
    except ValueError as exc:
        # The one refusal these params can meet: two keys that are one key for PHP (1 and "1").
        assert "are this one key for PHP" in str(exc)
        return
    alone = received_alone(plain, auth)
    batched = received_batched(plain, auth)
    expected = php_normalize(plain)
    expected.pop("auth", None)  # the portal's credentials, not a parameter
    assert ordered(alone) == ordered(batched) == ordered(expected)
    # Normalising changes nothing PHP would see.
    if _sendable_by_the_encoder(params):
        assert ordered(php_normalize(params)) == ordered(php_normalize(plain))


_BAD = st.one_of(
    st.just(math.nan),
    st.just(math.inf),
    st.just(-math.inf),
    st.integers(min_value=PHP_INT_MAX + 1),
    st.integers(max_value=PHP_INT_MIN - 1),
    st.characters(categories=["Cs"]).map(lambda ch: "a" + ch),
    st.sets(st.integers(), max_size=2),
    st.frozensets(st.integers(), max_size=2),
    st.binary(max_size=3),
    st.builds(object),
    st.just(date(2024, 1, 1)),
    st.just(Decimal("1.5")),
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_KEYS, st.recursive(_BAD | _SCALARS, _containers, max_leaves=8)))
def test_params_are_refused_up_front_or_sent_without_error(params: dict[Any, Any]) -> None:
    try:
        plain = normalize_params(params)
    except (TypeError, ValueError) as exc:
        assert str(exc).startswith("params")
        return
    # Accepted: nothing can fail later, at send time.
    encode_form_body(plain)
    build_command(METHOD, plain)
    assert ordered(received_alone(plain, {})) == ordered(received_batched(plain, {}))


# -- the rules, by example ------------------------------------------------------------------------


def test_none_and_empty_containers_are_not_sent() -> None:
    params = {"a": None, "b": [], "c": {}, "d": {"e": None, "f": ()}, "g": "", "h": [None]}
    assert normalize_params(params) == {"g": ""}
    assert received_alone(normalize_params(params), {}) == {"g": ""}
    assert received_batched(normalize_params(params), {}) == {"g": ""}


def test_a_list_item_left_out_keeps_its_index() -> None:
    plain = normalize_params({"x": [1, None, 3], "y": [[], "b"]})
    assert plain == {"x": {"0": 1, "2": 3}, "y": {"1": "b"}}
    assert encode_query(plain) == "x%5B0%5D=1&x%5B2%5D=3&y%5B1%5D=b"
    assert encode_query({"x": [1, None, 3], "y": [[], "b"]}) == encode_query(plain)


def test_booleans_are_sent_as_1_and_0() -> None:
    plain = normalize_params({"t": True, "f": False})
    assert received_alone(plain, {}) == received_batched(plain, {}) == {"t": "1", "f": "0"}


def test_mappings_and_sequences_become_plain() -> None:
    plain = normalize_params(
        MappingProxyType({"m": MappingProxyType({"k": (1, 2)}), "r": range(2), 3: "x"})
    )
    assert plain == {"m": {"k": [1, 2]}, "r": [0, 1], "3": "x"}
    assert type(plain) is dict and type(plain["m"]) is dict and type(plain["m"]["k"]) is list


def test_int_and_str_subclasses_become_plain() -> None:
    class Kind(int):
        pass

    class Name(str):
        pass

    plain = normalize_params({"k": Kind(2), "n": Name("x")})
    assert type(plain["k"]) is int and type(plain["n"]) is str
    assert normalize_params(None) == {}


def test_the_integer_range_is_phps() -> None:
    assert normalize_params({"id": PHP_INT_MAX, "low": PHP_INT_MIN}) == {
        "id": PHP_INT_MAX,
        "low": PHP_INT_MIN,
    }
    with pytest.raises(ValueError, match=r"^params\['id'\] is outside the portal's integer"):
        normalize_params({"id": 2**70})
    with pytest.raises(ValueError, match=r"^params\['ids'\]\[1\] is outside"):
        normalize_params({"ids": [1, -(2**63) - 1]})


@pytest.mark.parametrize(
    ("params", "error", "where"),
    [
        ({"values": {"X": math.nan}}, ValueError, "params['values']['X'] is NaN"),
        ({"values": {"X": math.inf}}, ValueError, "params['values']['X'] is NaN or an infinity"),
        ({"x": [-math.inf]}, ValueError, "params['x'][0] is NaN"),
        ({"values": {"X": "a\ud800b"}}, ValueError, "params['values']['X'] holds a lone surrogate"),
        ({"x": "\udcff"}, ValueError, "params['x'] holds a lone surrogate"),
        ({"values": {"a\udc80": 1}}, ValueError, "a key of params['values'] holds a lone"),
        ({"ids": {1, 2}}, TypeError, "params['ids'] is of type set"),
        ({"values": {"X": object()}}, TypeError, "params['values']['X'] is of type object"),
        ({"file": b"PK"}, TypeError, "params['file'] is of type bytes"),
        ({"when": date(2024, 1, 1)}, TypeError, "params['when'] is of type date"),
        ({"sum": Decimal(1)}, TypeError, "params['sum'] is of type Decimal"),
        ({"x": (i for i in range(2))}, TypeError, "params['x'] is of type generator"),
        ({True: 1}, TypeError, "params: key True is a bool"),
        ({"v": {None: 1}}, TypeError, "params['v']: key None is a NoneType"),
        ({"a[b": 1}, ValueError, "params['a[b']: PHP would read the '['"),
        ({"v": {"a]": 1}}, ValueError, "params['v']['a]']: PHP would read the ']'"),
        ({"v": {"a\0": 1}}, ValueError, "params['v']['a\\x00']: a key cannot contain NUL"),
        ({"v": {1: "a", "1": "b"}}, ValueError, "params['v']['1']: two keys of params['v']"),
    ],
)
def test_what_cannot_be_sent_is_refused_naming_the_argument(
    params: dict[Any, Any], error: type[Exception], where: str
) -> None:
    with pytest.raises(error) as caught:
        normalize_params(params)
    assert str(caught.value).startswith(where)
    assert type(caught.value) is error


def test_nesting_is_bounded_by_phps_limit() -> None:
    deepest: Any = "leaf"
    for _ in range(MAX_INPUT_NESTING_LEVEL):
        deepest = {"k": deepest}
    assert normalize_params({"a": deepest}) == {"a": deepest}
    with pytest.raises(ValueError, match="nests deeper than 64 levels"):
        normalize_params({"a": [deepest]})


def test_a_container_holding_itself_is_refused() -> None:
    loop: dict[str, Any] = {}
    loop["again"] = loop
    with pytest.raises(ValueError, match=r"^params\['x'\]\['again'\] contains itself"):
        normalize_params({"x": loop})
    shared = {"k": "v"}
    assert normalize_params({"a": shared, "b": [shared]}) == {"a": shared, "b": [shared]}


def test_params_must_be_a_mapping() -> None:
    with pytest.raises(TypeError, match="params must be a mapping, got list"):
        normalize_params([("a", 1)])  # type: ignore[arg-type]


def test_a_long_key_is_shortened_in_the_message() -> None:
    with pytest.raises(TypeError) as caught:
        normalize_params({"k" * 500: {1, 2}})
    assert len(str(caught.value)) < 200


def test_the_applications_auth_connector_joins_every_call_unless_it_has_its_own() -> None:
    from bitrix_docgen_async.core.params import with_auth_connector

    assert with_auth_connector(None, None) is None
    assert with_auth_connector({"id": 1}, None) == {"id": 1}
    assert with_auth_connector(None, "me") == {"auth_connector": "me"}
    given = {"id": 1}
    assert with_auth_connector(given, "me") == {"id": 1, "auth_connector": "me"}
    assert given == {"id": 1}  # the caller's mapping is not changed
    own = {"id": 1, "auth_connector": "other"}
    assert with_auth_connector(own, "me") is own
