"""The flat shortcut ({"id": 61}, a batch body) sends what the general encoder sends."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bitrix_docgen_async._commands import prepare_call
from bitrix_docgen_async.core.encoding import build_command, encode_query
from bitrix_docgen_async.core.params import PHP_INT_MAX, PHP_INT_MIN, normalize_params

keys = st.text(alphabet="abcXYZ019_[]. \x00é", min_size=0, max_size=6)
scalars = st.integers(PHP_INT_MIN - 5, PHP_INT_MAX + 5) | st.booleans() | st.text(max_size=3)
# One level of nesting: a batch body is {"halt": 0, "cmd": {"c0": "method?query", ...}}.
values = scalars | st.dictionaries(keys, scalars, max_size=3)


def general(params: dict[str, Any]) -> tuple[str, Any]:
    """What the encoders make of ``params`` seen as a read-only mapping (not a dict)."""
    proxy = MappingProxyType(params)
    try:
        plain: Any = normalize_params(proxy)
    except (TypeError, ValueError) as exc:
        plain = type(exc).__name__
    return encode_query(proxy), plain


@given(params=st.dictionaries(keys, values, max_size=4))
def test_dicts_encode_as_any_other_mapping(params: dict[str, Any]) -> None:
    try:
        plain: Any = normalize_params(params)
    except (TypeError, ValueError) as exc:
        plain = type(exc).__name__
    try:
        query = encode_query(params)
    except (TypeError, ValueError) as exc:
        query = type(exc).__name__
    try:
        expected = general(params)
    except (TypeError, ValueError) as exc:
        expected = (type(exc).__name__, expected_plain(params))
    assert (query, plain) == expected


def expected_plain(params: dict[str, Any]) -> Any:
    try:
        return normalize_params(MappingProxyType(params))
    except (TypeError, ValueError) as exc:
        return type(exc).__name__


def test_the_commonest_call() -> None:
    assert build_command("crm.documentgenerator.document.get", {"id": 61}) == (
        "crm.documentgenerator.document.get?id=61"
    )
    assert normalize_params({"id": 61, "start": 0}) == {"id": 61, "start": 0}


def test_a_batch_body() -> None:
    body = {"halt": 0, "cmd": {"c0": "crm.documentgenerator.document.get?id=1&x=a+b%20~"}}
    assert (
        encode_query(body)
        == encode_query(MappingProxyType(body))
        == ("halt=0&cmd%5Bc0%5D=crm.documentgenerator.document.get%3Fid%3D1%26x%3Da%2Bb%2520%7E")
    )


@given(
    key=keys, value=values, method=st.sampled_from(["crm.documentgenerator.document.get", "A.b"])
)
def test_a_one_parameter_call_is_prepared_as_the_general_path_prepares_it(
    key: str, value: Any, method: str
) -> None:
    def general() -> Any:
        plain = normalize_params(MappingProxyType({key: value}))
        return method.lower(), plain, build_command(method.lower(), plain)

    try:
        expected = general()
    except (TypeError, ValueError) as exc:
        expected = type(exc).__name__
    try:
        got: Any = prepare_call(method, {key: value})
    except (TypeError, ValueError) as exc:
        got = type(exc).__name__
    assert got == expected
