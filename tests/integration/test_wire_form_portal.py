"""One wire form, end to end: the fake portal's method gets the same params alone and batched.

Before, a lone call went as JSON and a batched one as a PHP query string: ``None`` and empty
lists reached the method in one and not the other, ``MappingProxyType`` failed at send time, NaN
went out as an invalid JSON token. Now both are PHP forms built from the same normalised params,
and what cannot be encoded is refused before any request.
"""

from __future__ import annotations

import copy
import math
from types import MappingProxyType
from typing import Any

import pytest

from bitrix_docgen_async import DocgenClient
from bitrix_docgen_async.core.encoding import php_normalize
from bitrix_docgen_async.core.params import normalize_params
from bitrix_docgen_async.testing import FakePortal
from bitrix_docgen_async.testing.state import CallContext
from tests.helpers import oauth_client

ECHO = "test.wire.echo"

CASES: list[dict[str, Any]] = [
    {"a": None, "b": [], "c": {}, "keep": "x"},
    {"list": [1, None, 3], "nested": {"empty": [], "gone": None, "kept": 0}},
    {"t": True, "f": False, "zero": 0, "neg": -(2**63), "max": 2**63 - 1},
    {"floats": [1.5, -0.0, 1e17, 1.5e-7, 0.1, 5e-324]},
    {"text": "a&b=c [x] %41 + # ? é Привет 😀 \0 tab\t", "": "empty key", " lead": "spaces"},
    {"proxy": MappingProxyType({"k": (1, 2), "r": range(3)}), "tuple": ("a", ("b",))},
    {"fields": {"PHONE": [{"VALUE": "112233", "VALUE_TYPE": "WORK"}]}, 5: "int key"},
    {"dotted.key": "v", "a b": "w"},
]


async def _echo(ctx: CallContext, params: dict[str, Any]) -> Any:
    return copy.deepcopy(params)


@pytest.fixture
def echo_portal(portal: FakePortal) -> FakePortal:
    portal.registry.register(ECHO, _echo)
    return portal


async def _both_ways(client: DocgenClient, params: Any) -> tuple[Any, Any]:
    alone = await client.call(ECHO, params)
    async with client.batch() as batch:
        call = batch.call(ECHO, params)
        batch.call(ECHO, {"other": "command"})
    return alone, call.result()


@pytest.mark.parametrize("params", CASES)
async def test_the_method_gets_the_same_params_alone_and_batched(
    echo_portal: FakePortal, client: DocgenClient, params: dict[Any, Any]
) -> None:
    before = echo_portal.stats.http_by_method["batch"]
    alone, batched = await _both_ways(client, params)
    assert echo_portal.stats.http_by_method[ECHO] == 1
    assert echo_portal.stats.http_by_method["batch"] == before + 1
    assert alone == batched == php_normalize(normalize_params(params))


async def test_oauth_calls_carry_auth_in_the_same_form(echo_portal: FakePortal) -> None:
    params = CASES[1]
    async with oauth_client(echo_portal) as client:
        alone, batched = await _both_ways(client, params)
    assert alone == batched == php_normalize(normalize_params(params))
    assert "auth" not in alone


REFUSED: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"id": 2**70}, ValueError, r"^params\['id'\] is outside the portal's integer range"),
    ({"v": {"X": math.nan}}, ValueError, r"^params\['v'\]\['X'\] is NaN"),
    ({"v": [math.inf]}, ValueError, r"^params\['v'\]\[0\] is NaN or an infinity"),
    ({"v": "a\ud800"}, ValueError, r"^params\['v'\] holds a lone surrogate"),
    ({"v": {1, 2}}, TypeError, r"^params\['v'\] is of type set"),
    ({"v": {"o": object()}}, TypeError, r"^params\['v'\]\['o'\] is of type object"),
]


@pytest.mark.parametrize(("params", "error", "message"), REFUSED)
async def test_unencodable_params_are_refused_before_any_request(
    echo_portal: FakePortal,
    client: DocgenClient,
    params: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        await client.call(ECHO, params)
    async with client.batch() as batch:
        with pytest.raises(error, match=message):
            batch.call(ECHO, params)
    assert echo_portal.stats.requests == 0


async def test_document_values_are_checked_before_any_request(
    portal: FakePortal, client: DocgenClient
) -> None:
    template = portal.seed_template()
    with pytest.raises(ValueError, match=r"^params\['values'\]\['Total'\] is NaN"):
        await client.documents.add(template, 2, 10, values={"Total": math.nan})
    with pytest.raises(ValueError, match=r"^params\['values'\]\['Name'\] holds a lone surrogate"):
        await client.documents.add(template, 2, 10, values={"Name": "\udcff"})
    assert portal.stats.requests == 0
    # A read-only mapping is a mapping like any other.
    document = await client.documents.add(
        template, 2, 10, values=MappingProxyType({"Comment": "ok"})
    )
    assert document.values["Comment"] == "ok"
    assert portal.stats.requests == 1
