"""PHP query strings: http_build_query and parse_str rules, and their round trip."""

from __future__ import annotations

import math
import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bitrix_docgen_async.core.encoding import (
    MAX_INPUT_NESTING_LEVEL,
    build_command,
    encode_query,
    parse_str,
    php_list,
    php_normalize,
)


def ordered(value: Any) -> Any:
    """Dicts as lists of items, so that comparisons also check PHP's key order."""
    if isinstance(value, dict):
        return [(key, ordered(item)) for key, item in value.items()]
    return value


def nested(depth: int, leaf: Any) -> Any:
    """``{"x": {"x": ... leaf}}`` with ``depth`` levels of mapping."""
    for _ in range(depth):
        leaf = {"x": leaf}
    return leaf


# -- encode_query ---------------------------------------------------------------------------------


def test_encode_nested_fields_like_php() -> None:
    params = {
        "fields": {
            "TITLE": "John&Martin",
            "PHONE": [{"VALUE": "112233", "VALUE_TYPE": "WORK"}],
        }
    }
    assert encode_query(params) == (
        "fields%5BTITLE%5D=John%26Martin"
        "&fields%5BPHONE%5D%5B0%5D%5BVALUE%5D=112233"
        "&fields%5BPHONE%5D%5B0%5D%5BVALUE_TYPE%5D=WORK"
    )


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"a": True, "b": False}, "a=1&b=0"),
        ({"a": None, "b": 1}, "b=1"),
        ({"a": {"b": None}}, ""),
        ({"a": [None, "x"]}, "a%5B1%5D=x"),
        ({"a": [], "b": {}, "c": "x", "d": [[], {"e": None}]}, "c=x"),
        ({}, ""),
        ({"n": 0, "m": -42, "big": 2**70}, "n=0&m=-42&big=1180591620717411303424"),
        ({"name": "Привет"}, "name=%D0%9F%D1%80%D0%B8%D0%B2%D0%B5%D1%82"),
        ({"q": "a b"}, "q=a+b"),
        ({"v": "& = [ ] # % + ?"}, "v=%26+%3D+%5B+%5D+%23+%25+%2B+%3F"),
        ({"v": "-_.~*'()!/:;,@$"}, "v=-_.%7E%2A%27%28%29%21%2F%3A%3B%2C%40%24"),
        ({"v": "a\x00b\r\n"}, "v=a%00b%0D%0A"),
        ({"v": ""}, "v="),
        ({0: "a", 1: "b"}, "0=a&1=b"),
        ({"a": {5: "x", -1: "y"}}, "a%5B5%5D=x&a%5B-1%5D=y"),
        ({"a b": 1, "a&b": {"c=d": 2}}, "a+b=1&a%26b%5Bc%3Dd%5D=2"),
        ({"ключ": {"ß": "x"}}, "%D0%BA%D0%BB%D1%8E%D1%87%5B%C3%9F%5D=x"),
        ({"t": ("x", ("y",))}, "t%5B0%5D=x&t%5B1%5D%5B0%5D=y"),
        ({"a]b": {"c[d": 1}}, "a%5Db%5Bc%5Bd%5D=1"),
        ({"raw": "\udcff\udcfe"}, "raw=%FF%FE"),
    ],
)
def test_encode_query(params: dict[Any, Any], expected: str) -> None:
    assert encode_query(params) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.0, "1"),
        (0.1, "0.1"),
        (-2.5, "-2.5"),
        (100.0, "100"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e16, "10000000000000000"),
        (1e17, "1.0E%2B17"),
        (1.25e20, "1.25E%2B20"),
        (0.0001, "0.0001"),
        (0.00001, "1.0E-5"),
        (1.5e-7, "1.5E-7"),
        (5e-324, "5.0E-324"),
        (0.0, "0"),
        (-0.0, "-0"),
        (math.nan, "NAN"),
        (math.inf, "INF"),
        (-math.inf, "-INF"),
    ],
)
def test_encode_float_in_php_layout(value: float, expected: str) -> None:
    assert encode_query({"x": value}) == f"x={expected}"


@pytest.mark.parametrize(
    "value", [1.0, 0.1, 1 / 3, 1e17, 1.5e-7, 5e-324, 1.7976931348623157e308, 123456789.125]
)
def test_encoded_floats_read_back_exactly(value: float) -> None:
    text = parse_str(encode_query({"x": value}))["x"]
    assert float(text.replace("E", "e")) == value


@pytest.mark.parametrize(
    ("params", "path"),
    [
        ({"a": b"bytes"}, "a"),
        ({"a": {"b": [1, {1, 2}]}}, r"a\[b\]\[1\]"),
        ({"a": {"b": object()}}, r"a\[b\]"),
        ({"a": bytearray(b"x")}, "a"),
    ],
)
def test_encode_rejects_other_value_types(params: dict[str, Any], path: str) -> None:
    with pytest.raises(TypeError, match=rf"^{path}: cannot send a "):
        encode_query(params)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({1.5: "x"}, "float, not a str or int"),
        ({True: "x"}, "bool, not a str or int"),
        ({"a": {None: "x"}}, r"^a: key None is a NoneType"),
        ({b"k": "x"}, "bytes"),
    ],
)
def test_encode_rejects_other_key_types(params: dict[Any, Any], match: str) -> None:
    with pytest.raises(TypeError, match=match):
        encode_query(params)


@pytest.mark.parametrize(
    "params",
    [
        {"a[b]": 1},
        {"[": 1},
        {"a": {"b]": 1}},
        {"a\x00": 1},
        {"a": {"b\x00c": 1}},
        {"a": "\ud800"},
        {"\ud800": "a"},
    ],
)
def test_encode_rejects_what_php_cannot_read_back(params: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        encode_query(params)


def test_encode_rejects_a_container_holding_itself() -> None:
    loop: dict[str, Any] = {"a": 1}
    loop["self"] = loop
    with pytest.raises(ValueError, match="contains itself"):
        encode_query(loop)
    items: list[Any] = [1]
    items.append(items)
    with pytest.raises(ValueError, match=r"^x\[1\]: the value contains itself"):
        encode_query({"x": items})


def test_encode_allows_the_same_object_twice() -> None:
    shared = {"k": "v"}
    assert encode_query({"a": shared, "b": [shared]}) == "a%5Bk%5D=v&b%5B0%5D%5Bk%5D=v"


def test_encode_rejects_a_non_mapping() -> None:
    with pytest.raises(TypeError, match="must be a mapping"):
        encode_query(["a", "b"])  # type: ignore[arg-type]


# -- build_command --------------------------------------------------------------------------------


def test_build_command() -> None:
    assert build_command("crm.deal.get", {"id": 5}) == "crm.deal.get?id=5"
    assert build_command("user.get", {"ID": 1, "FILTER": {"NAME": "a b"}}) == (
        "user.get?ID=1&FILTER%5BNAME%5D=a+b"
    )
    assert build_command("app.info", None) == "app.info"
    assert build_command("app.info", {}) == "app.info"
    assert build_command("app.info", {"a": None, "b": []}) == "app.info"


@pytest.mark.parametrize("method", ["", "user.get?ID=1"])
def test_build_command_rejects_a_bad_method(method: str) -> None:
    with pytest.raises(ValueError, match="not a method name"):
        build_command(method, {"ID": 1})


def test_batch_commands_survive_both_encodings() -> None:
    commands = {
        "get_user": build_command("user.get", {"ID": 1}),
        "deal": build_command("crm.deal.add", {"fields": {"TITLE": "A&B=C"}}),
    }
    query = encode_query({"halt": 0, "cmd": commands})
    assert query.startswith("halt=0&cmd%5Bget_user%5D=user.get%3FID%3D1&cmd%5Bdeal%5D=")
    decoded = parse_str(query)
    assert decoded == {"halt": "0", "cmd": commands}
    method, _, inner = decoded["cmd"]["deal"].partition("?")
    assert method == "crm.deal.add"
    assert parse_str(inner) == {"fields": {"TITLE": "A&B=C"}}


# -- parse_str ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("a=1&b=2", {"a": "1", "b": "2"}),
        ("a[]=1&a[]=2", {"a": {"0": "1", "1": "2"}}),
        ("a[b][c]=1", {"a": {"b": {"c": "1"}}}),
        ("a[][b]=1&a[][b]=2", {"a": {"0": {"b": "1"}, "1": {"b": "2"}}}),
        ("cmd[get_user]=user.get%3FID%3D1", {"cmd": {"get_user": "user.get?ID=1"}}),
        ("entityTypeId[0]=2&entityTypeId[1]=31", {"entityTypeId": {"0": "2", "1": "31"}}),
        # base-name mangling: only before the first "["
        ("a.b=1", {"a_b": "1"}),
        ("a b=1", {"a_b": "1"}),
        ("a+b.c=1", {"a_b_c": "1"}),
        ("  a=1", {"a": "1"}),
        (" a b=1", {"a_b": "1"}),
        ("a.b[c.d e]=1", {"a_b": {"c.d e": "1"}}),
        ("%20a%2Eb=1", {"a_b": "1"}),
        ("\ta=1", {"\ta": "1"}),
        # a "[" with no "]" after it
        ("a[b=1", {"a_b": "1"}),
        ("a[b.c d[e=1", {"a_b_c_d_e": "1"}),
        ("a[=1", {"a_": "1"}),
        ("a[x][y=1", {"a": {"x": "1"}}),
        ("a[x][y][z=1", {"a": {"x": {"y": "1"}}}),
        ("a]b=1", {"a]b": "1"}),
        # after a "]", anything but "[" ends the key
        ("a[b]c=1", {"a": {"b": "1"}}),
        ("a[b]c[d]=1", {"a": {"b": "1"}}),
        ("a[b]]=1", {"a": {"b": "1"}}),
        ("a[b[c]=1", {"a": {"b[c": "1"}}),
        # "[" + one whitespace character + "]" appends, like "[]"
        ("a[ ]=1&a[\t]=2", {"a": {"0": "1", "1": "2"}}),
        ("a[  ]=1&a[ x]=2", {"a": {"  ": "1", " x": "2"}}),
        # url-decoding: "+" and %XX; bad escapes stay as they are
        ("a=x+y%2By", {"a": "x y+y"}),
        ("%G1=x", {"%G1": "x"}),
        ("a=%", {"a": "%"}),
        ("a=%4", {"a": "%4"}),
        ("a=b%", {"a": "b%"}),
        ("a=%%41%zz", {"a": "%A%zz"}),
        ("%=1", {"%": "1"}),
        ("%61%5Bb%5D=1", {"a": {"b": "1"}}),
        ("a=%D0%9F%d1%80", {"a": "Пр"}),
        ("a=%FF", {"a": "\udcff"}),
        ("a=\u00e9", {"a": "\u00e9"}),
        # empty parts, empty keys, no "="
        ("", {}),
        ("&&a=1&&", {"a": "1"}),
        ("=1&a=2", {"a": "2"}),
        ("[x]=1", {}),
        (" =1", {}),
        ("+[a]=1", {}),
        (".=1", {"_": "1"}),
        ("a", {"a": ""}),
        ("a&b=", {"a": "", "b": ""}),
        ("a==b", {"a": "=b"}),
        # NUL: the query stops at a raw one, a key at a decoded one; values keep theirs
        ("a=1\x00&b=2", {"a": "1"}),
        ("a%00b=1", {"a": "1"}),
        ("a[b%00]=1", {"a_b": "1"}),
        ("a=x%00y", {"a": "x\x00y"}),
        # later writes win; a key keeps its first position
        ("a=1&a=2", {"a": "2"}),
        ("a=1&a[b]=2", {"a": {"b": "2"}}),
        ("a[b]=2&a=1", {"a": "1"}),
        ("a[b]=1&a[c]=2&a[b]=3", {"a": {"b": "3", "c": "2"}}),
        ("a=1&b=2&a[c]=3", {"a": {"c": "3"}, "b": "2"}),
        ("a[x]=1&a[x][y]=2&a[z]=3", {"a": {"x": {"y": "2"}, "z": "3"}}),
        # appending: one more than the largest integer key held, or 0
        ("a[5]=x&a[]=y", {"a": {"5": "x", "6": "y"}}),
        ("a[-5]=x&a[]=y", {"a": {"-5": "x", "-4": "y"}}),
        ("a[x]=1&a[]=2", {"a": {"x": "1", "0": "2"}}),
        ("a[05]=x&a[-0]=y&a[]=z", {"a": {"05": "x", "-0": "y", "0": "z"}}),
        ("a[3]=x&a[1]=y&a[]=z", {"a": {"3": "x", "1": "y", "4": "z"}}),
        ("a[9223372036854775807]=x&a[]=y", {"a": {"9223372036854775807": "x"}}),
        ("a[9223372036854775808]=x&a[]=y", {"a": {"9223372036854775808": "x", "0": "y"}}),
        ("a[1]=x&a=s&a[]=y", {"a": {"0": "y"}}),
        # PHP's cookie-prefix guard, which parse_str applies too
        ("__Host-x=1&__Secure-y=2", {"__Host-x": "1", "__Secure-y": "2"}),
        ("..Host-x=1&_.Secure-y=2&%20_.Host-z=3", {}),
        ("__Host-x[a]=1&.Host-y=2", {"__Host-x": {"a": "1"}, "_Host-y": "2"}),
        ("_[Host-x=1", {"__Host-x": "1"}),
    ],
)
def test_parse_str(query: str, expected: dict[str, Any]) -> None:
    assert ordered(parse_str(query)) == ordered(expected)


def test_parse_str_reads_bytes_as_php_does() -> None:
    assert parse_str(b"a=\xff&b[\xd0\x9f]=%D0%9F") == {"a": "\udcff", "b": {"П": "П"}}
    # text decoded with surrogateescape gives back its bytes
    assert parse_str("a=\udcd0\udc9f") == {"a": "П"}
    # a surrogate with no byte form does not raise
    assert parse_str("a=\ud800") == {"a": "\udced\udca0\udc80"}


def test_parse_str_keeps_nesting_up_to_php_limit() -> None:
    deep = "a" + "[x]" * MAX_INPUT_NESTING_LEVEL + "=1"
    assert parse_str(deep) == {"a": nested(MAX_INPUT_NESTING_LEVEL, "1")}


def test_parse_str_too_deep_deletes_the_whole_variable() -> None:
    too_deep = "a" + "[x]" * (MAX_INPUT_NESTING_LEVEL + 1) + "=2"
    assert parse_str(too_deep) == {}
    assert parse_str(f"a[k]=1&b=0&{too_deep}&c=3") == {"b": "0", "c": "3"}
    # the level is counted before the "]" is looked for
    assert parse_str("a" + "[x]" * MAX_INPUT_NESTING_LEVEL + "[y=1") == {}
    # a later pair starts the variable again, at the end
    assert ordered(parse_str(f"a=1&b=2&{too_deep}&a[z]=4")) == ordered({"b": "2", "a": {"z": "4"}})


# -- php_normalize and php_list -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"a": {"b": None}}, {}),
        ({"a": [1, True, None, 2.5, False]}, {"a": {"0": "1", "1": "1", "3": "2.5", "4": "0"}}),
        ({"a.b": 1, " c": 2, "d e": 3}, {"a_b": "1", "c": "2", "d_e": "3"}),
        ({"": 1, " ": {"x": 2}, "ok": 3}, {"ok": "3"}),
        ({1: "a", "1": "b"}, {"1": "b"}),
        ({"a.b": {"x": 1}, "a_b": {"y": 2}}, {"a_b": {"x": "1", "y": "2"}}),
        ({"a": "s", "a.": 0, "a_": {"k": 1}}, {"a": "s", "a_": {"k": "1"}}),
        (
            {"a": {"5": "x", "": "y", " ": "z", "\n": "w"}},
            {"a": {"5": "x", "6": "y", "7": "z", "8": "w"}},
        ),
        ({"a": {" x": 1, "x y.z": 2}}, {"a": {" x": "1", "x y.z": "2"}}),
        ({"..Host-x": 1, "__Host-y": 2}, {"__Host-y": "2"}),
        ({"a": "\udcd0\udc9f"}, {"a": "П"}),
        ({"a]b": {"c[d": 1}}, {"a]b": {"c[d": "1"}}),
        ({"deep": nested(MAX_INPUT_NESTING_LEVEL + 1, 1), "k": 1}, {"k": "1"}),
    ],
)
def test_php_normalize(params: dict[Any, Any], expected: dict[str, Any]) -> None:
    assert ordered(php_normalize(params)) == ordered(expected)
    assert ordered(parse_str(encode_query(params))) == ordered(expected)


def test_php_normalize_at_the_nesting_limit() -> None:
    params = {"deep": nested(MAX_INPUT_NESTING_LEVEL, 1)}
    assert php_normalize(params) == {"deep": nested(MAX_INPUT_NESTING_LEVEL, "1")}
    assert parse_str(encode_query(params)) == php_normalize(params)


def test_php_list() -> None:
    decoded = parse_str("entityTypeId[0]=2&entityTypeId[1]=31&one[]=x")
    assert php_list(decoded["entityTypeId"]) == ["2", "31"]
    assert php_list(decoded["one"]) == ["x"]
    already = ["a"]
    assert php_list(already) is already
    assert php_list({}) == []


@pytest.mark.parametrize(
    "value", [{"1": "a"}, {"1": "a", "0": "b"}, {"0": "a", "x": "b"}, {0: "a"}, "x", None, 3]
)
def test_php_list_rejects_other_values(value: Any) -> None:
    with pytest.raises(ValueError, match="not a PHP list"):
        php_list(value)


# -- properties -----------------------------------------------------------------------------------

_TRICKY_KEYS = ["", " ", "  a", "a.b", "a_b", "a b", ".", "0", "1", "-1", "05", "\t", "\n", "%"]
_TOP_KEYS = st.one_of(
    st.text(max_size=6).filter(lambda key: "[" not in key and "\x00" not in key),
    st.sampled_from([*_TRICKY_KEYS, "a]b", "]", "..Host-x", "__Host-x", "_.Secure-"]),
    st.integers(-3, 12),
)
_NESTED_KEYS = st.one_of(
    st.text(max_size=6).filter(lambda key: "]" not in key and "\x00" not in key),
    st.sampled_from([*_TRICKY_KEYS, "c[d", "["]),
    st.integers(-3, 12),
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(_NESTED_KEYS, children, max_size=4),
    ),
    max_leaves=12,
)
_PARAMS = st.dictionaries(_TOP_KEYS, _VALUES, max_size=5)

_QUERY_PIECES = st.sampled_from(
    [*"ab0 .[]=&%+_-\t", "%5B", "%5D", "%20", "%00", "%2", "%G1", "\x00", "é", "\udcff", "-5"]
)
#: Every character PHP's urlencode() leaves in its output, and the two separators.
_QUERY_ALPHABET = frozenset(string.ascii_letters + string.digits + "-_.+%=&")
_QUERIES = st.one_of(st.lists(_QUERY_PIECES, max_size=24).map("".join), st.text(max_size=30))


@settings(max_examples=600, deadline=None)
@given(_PARAMS)
def test_parse_str_of_encode_query_is_php_normalize(params: dict[Any, Any]) -> None:
    query = encode_query(params)
    assert set(query) <= _QUERY_ALPHABET
    assert ordered(parse_str(query)) == ordered(php_normalize(params))


@settings(max_examples=400, deadline=None)
@given(_QUERIES)
def test_parse_str_never_raises_and_gives_strings(query: str) -> None:
    def check(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                assert isinstance(key, str)
                check(item)
        else:
            assert isinstance(value, str)

    check(parse_str(query))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40))
def test_parse_str_never_raises_on_bytes(data: bytes) -> None:
    assert isinstance(parse_str(data), dict)


@settings(max_examples=400, deadline=None)
@given(_QUERIES)
def test_what_parse_str_gives_encodes_back_to_itself(query: str) -> None:
    decoded = parse_str(query)
    assert ordered(parse_str(encode_query(decoded))) == ordered(decoded)
    assert ordered(php_normalize(decoded)) == ordered(decoded)
