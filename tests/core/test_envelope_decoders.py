"""orjson (the "fast" extra) and the stdlib json read every reply the same way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bitrix_docgen_async.core import envelope
from bitrix_docgen_async.core.envelope import parse_response

pytest.importorskip("orjson")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

EDGES = [
    b"",
    b"   ",
    b'{"result": 1',
    b'{"result": "abc',
    b'\xef\xbb\xbf{"result": 1}',
    b'{"result": NaN}',
    b'{"result": 1e999}',
    b'{"result": "\\ud800"}',
    b'{"result": "\xff"}',
    b"<html><title>502</title></html>",
    b"[1, 2]",
    b'"text"',
    b'{"result": 18446744073709551615, "time": {"start": "1.5", "duration": 1e-3}}',
    b'{"result": {"a": 1, "a": 2}, "total": "7", "next": 50.0}',
    b'{"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}',
    b"[" * 1100 + b"]" * 1100,
    b'{"result": ' + b"[" * 200 + b"]" * 200 + b"}",
]


def outcome(body: bytes, status: int = 200) -> tuple[str, Any]:
    try:
        return "ok", parse_response(status, body, method="m")
    except Exception as exc:
        return type(exc).__name__, (str(exc), getattr(exc, "detail", None))


def both(body: bytes, monkeypatch: pytest.MonkeyPatch, status: int = 200) -> None:
    fast = outcome(body, status)
    with monkeypatch.context() as patch:
        patch.setattr(envelope, "_fast_loads", None)
        slow = outcome(body, status)
    assert fast == slow


def fixture_bodies() -> list[Path]:
    return sorted(p for p in FIXTURES.rglob("*.json") if p.name != "manifest.json")


def test_the_fast_decoder_is_in_use() -> None:
    assert envelope._fast_loads is not None


@pytest.mark.parametrize("body", EDGES, ids=lambda b: repr(b[:24]))
def test_edge_cases_read_the_same(body: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    both(body, monkeypatch)
    both(body, monkeypatch, status=503)


def test_the_wire_corpus_reads_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    paths = fixture_bodies()
    assert paths
    for path in paths:
        data = json.loads(path.read_text("utf-8"))
        for value in (data, data.get("response", data) if isinstance(data, dict) else data):
            both(json.dumps(value, ensure_ascii=False).encode(), monkeypatch)


json_values = st.recursive(
    # Integer literals within 64 bits: PHP's json_encode writes no others (see the test below).
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(value=json_values, ascii_only=st.booleans())
def test_any_json_reads_the_same(value: Any, ascii_only: bool) -> None:
    body = json.dumps({"result": value, "time": {"duration": 0.5}}, ensure_ascii=ascii_only)
    with pytest.MonkeyPatch.context() as patch:
        fast = outcome(body.encode("utf-8", "surrogatepass"))
        patch.setattr(envelope, "_fast_loads", None)
        slow = outcome(body.encode("utf-8", "surrogatepass"))
    assert fast == slow


def test_deep_nesting_reads_to_orjsons_limit_then_is_refused_as_before() -> None:
    # The stdlib's limit is the interpreter's stack (about 1,000 frames, less under a deep
    # caller); orjson reads to 1,024 levels wherever it is called from.
    deep = b'{"result": ' + b"[" * 1020 + b"]" * 1020 + b"}"
    assert outcome(deep)[0] == "ok"
    deeper = b'{"result": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    kind, (message, detail) = outcome(deeper)
    assert kind == "ResponseError"
    assert "nested too deeply" in message + " ".join(detail or ())


def test_an_integer_literal_beyond_64_bits_is_the_one_difference(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = b'{"result": -9223372036854775809}'
    assert outcome(body)[1].result == pytest.approx(-9.223372036854776e18)
    monkeypatch.setattr(envelope, "_fast_loads", None)
    assert outcome(body)[1].result == -9223372036854775809
