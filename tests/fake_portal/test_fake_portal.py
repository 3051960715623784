"""FakePortal over real HTTP on 127.0.0.1: URL forms, parameters, batch, limits, cap, OAuth."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest

from bitrix_docgen_async.core.encoding import encode_query
from bitrix_docgen_async.core.ratelimit import OperatingBudget, RateLimit
from bitrix_docgen_async.testing import FakePortal
from tests.helpers import FakeClock, post

ADD = "crm.documentgenerator.numerator.add"
GET = "crm.documentgenerator.numerator.get"
LIST = "crm.documentgenerator.numerator.list"
TIME_KEYS = {"start", "finish", "duration", "processing", "date_start", "date_finish", "operating"}
SECTIONS = ["result", "result_error", "result_total", "result_next", "result_time"]


# The portal with its default limits (bucket 50, 2 per second).
pytestmark = pytest.mark.portal()
call = post


def add_fields(name: str = "N", template: str = "{NUMBER}") -> dict[str, Any]:
    return {"fields": {"name": name, "template": template}}


# -- addressing and parameters ---------------------------------------------------------------


async def test_webhook_url_forms_and_case(portal: FakePortal, http: aiohttp.ClientSession) -> None:
    assert portal.webhook_url.startswith(portal.base_url + "/rest/1/")
    status, body = await call(http, portal.webhook_url + ADD, add_fields("a"))
    assert status == 200
    assert body["result"]["numerator"]["id"] == 1
    assert body["time"].keys() >= TIME_KEYS
    assert isinstance(body["time"]["operating_reset_at"], int)
    assert body["time"]["date_start"][-6] in "+-"
    status, body = await call(
        http, portal.webhook_url + "CRM.DocumentGenerator.Numerator.Get.json", {"id": 1}
    )
    assert status == 200
    assert body["result"]["numerator"]["id"] == "1"
    assert portal.stats.http_by_method == {ADD: 1, GET: 1}
    assert portal.stats.by_method == {ADD: 1, GET: 1}


async def test_webhook_auth_and_unknown_method(
    portal: FakePortal, http: aiohttp.ClientSession
) -> None:
    wrong = [
        portal.base_url + "/rest/1/nope/" + LIST,
        portal.base_url + f"/rest/2/{portal.webhook_code}/" + LIST,
    ]
    for url in wrong:
        status, body = await call(http, url)
        assert (status, body) == (
            401,
            {"error": "NO_AUTH_FOUND", "error_description": "Wrong authorization data"},
        )
    status, body = await call(http, portal.webhook_url + "crm.nothing.here")
    assert (status, body) == (
        404,
        {"error": "ERROR_METHOD_NOT_FOUND", "error_description": "Method not found!"},
    )
    assert portal.stats.requests == 3
    assert portal.stats.commands == 0


async def test_oauth_token_in_query_json_and_form(
    portal: FakePortal, http: aiohttp.ClientSession
) -> None:
    creds = portal.oauth
    url = creds.client_endpoint + LIST
    assert creds.client_endpoint == portal.base_url + "/rest/"
    async with http.get(url, params={"auth": creds.access_token}) as response:
        assert response.status == 200
    status, _ = await call(http, url + ".json", {"auth": creds.access_token})
    assert status == 200
    async with http.post(url, data={"auth": creds.access_token, "start": "0"}) as response:
        assert response.status == 200
    status, body = await call(http, url, {"auth": "0" * 32})
    assert (status, body) == (
        401,
        {"error": "invalid_token", "error_description": "Unable to get application by token"},
    )
    status, body = await call(http, url)
    assert (status, body["error"]) == (401, "NO_AUTH_FOUND")


async def test_query_form_and_multipart_params_nest(
    portal: FakePortal, http: aiohttp.ClientSession
) -> None:
    query = encode_query(add_fields("from query & more", "Q-{NUMBER}"))
    async with http.get(portal.webhook_url + ADD + "?" + query) as response:
        assert (await response.json())["result"]["numerator"]["name"] == "from query & more"
    form = "fields%5Bname%5D=from+form&fields%5Btemplate%5D=F-%7BNUMBER%7D"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    async with http.post(portal.webhook_url + ADD, data=form, headers=headers) as response:
        assert (await response.json())["result"]["numerator"]["template"] == "F-{NUMBER}"
    multipart = aiohttp.FormData()
    multipart.add_field("fields[name]", "from multipart")
    multipart.add_field("fields[template]", "M-{NUMBER}")
    multipart.add_field("fields[settings][x]", b"bytes", filename="f.bin")
    async with http.post(portal.webhook_url + ADD, data=multipart) as response:
        assert (await response.json())["result"]["numerator"]["name"] == "from multipart"
    assert [n["name"] for n in portal.numerators.values()] == [
        "from query & more",
        "from form",
        "from multipart",
    ]


async def test_invalid_json_body_is_a_400(portal: FakePortal, http: aiohttp.ClientSession) -> None:
    headers = {"Content-Type": "application/json"}
    async with http.post(portal.webhook_url + LIST, data="{oops", headers=headers) as response:
        assert response.status == 400
        assert (await response.json())["error"] == "INVALID_REQUEST"


# -- batch ----------------------------------------------------------------------------------


async def test_batch_shape_and_result_references(
    portal: FakePortal, http: aiohttp.ClientSession
) -> None:
    cmd = {
        "first": f"{ADD}?{encode_query(add_fields('First'))}",
        "again": f"{GET}?id=$result[first][numerator][id]",
        "copy": f"{ADD}?fields[name]=Copy of $result[again][numerator][name]&fields[template]=T",
        "all": f"{LIST}?start=0",
    }
    status, body = await call(http, portal.webhook_url + "batch", {"cmd": cmd, "halt": 0})
    assert status == 200
    assert list(body) == ["result", "time"]
    inner = body["result"]
    assert list(inner) == SECTIONS
    assert inner["result"]["again"]["numerator"]["id"] == "1"
    assert inner["result"]["copy"]["numerator"]["name"] == "Copy of First"
    assert inner["result_error"] == []
    assert inner["result_total"] == {"all": 2}
    assert inner["result_next"] == []
    assert list(inner["result_time"]) == list(cmd)
    for block in inner["result_time"].values():
        assert TIME_KEYS | {"operating_reset_at"} <= block.keys()
    assert body["time"]["operating"] == 0  # billed to `batch`, and nothing here costs anything
    assert portal.stats.http_by_method == {"batch": 1}
    assert portal.stats.commands == 4


async def test_batch_form_encoded_array_keys_and_halt(
    portal: FakePortal, http: aiohttp.ClientSession
) -> None:
    commands = [f"{LIST}?start=0", f"{GET}?id=99", f"{LIST}?start=0"]
    form = encode_query({"cmd": commands, "halt": 0})
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    async with http.post(portal.webhook_url + "batch", data=form, headers=headers) as response:
        inner = (await response.json())["result"]
    assert inner["result"] == {"0": {"numerators": []}, "2": {"numerators": []}}
    assert inner["result_error"] == {
        "1": {"error": "100", "error_description": "Could not construct parameter {numerator}"}
    }
    assert list(inner["result_time"]) == ["0", "2"]
    for halt in (1, True, "Y"):
        status, body = await call(
            http, portal.webhook_url + "batch", {"cmd": commands, "halt": halt}
        )
        assert status == 200
        assert body["result"]["result"] == [{"numerators": []}]
        assert list(body["result"]["result_error"]) == ["1"]
    status, body = await call(http, portal.webhook_url + "batch", {"cmd": commands[:1]})
    assert body["result"]["result"] == [{"numerators": []}]
    assert body["result"]["result_total"] == [0]


async def test_batch_in_a_query_string_is_encoded_twice(
    portal: FakePortal, http: aiohttp.ClientSession
) -> None:
    inner = encode_query(add_fields("John&Martin", "{NUMBER}+1 [x]"))
    query = encode_query(
        {"cmd": {"a": f"{ADD}?{inner}", "b": f"{GET}?id=$result[a][numerator][id]"}}
    )
    async with http.get(portal.webhook_url + "batch.json?" + query) as response:
        body = await response.json()
    assert body["result"]["result"]["b"]["numerator"]["name"] == "John&Martin"
    assert body["result"]["result"]["b"]["numerator"]["template"] == "{NUMBER}+1 [x]"


async def test_batch_overflow_and_nesting(portal: FakePortal, http: aiohttp.ClientSession) -> None:
    cmd = {f"c{i}": f"{LIST}?start=0" for i in range(52)}
    cmd["c1"] = "batch?cmd[x]=" + LIST
    status, body = await call(http, portal.webhook_url + "batch", {"cmd": cmd})
    assert status == 200
    errors = body["result"]["result_error"]
    assert errors == {
        "c1": {
            "error": "ERROR_BATCH_METHOD_NOT_ALLOWED",
            "error_description": "Method is not allowed for batch usage",
        },
        "c50": {
            "error": "ERROR_BATCH_LENGTH_EXCEEDED",
            "error_description": "Max batch length exceeded",
        },
        "c51": {
            "error": "ERROR_BATCH_LENGTH_EXCEEDED",
            "error_description": "Max batch length exceeded",
        },
    }
    assert len(body["result"]["result"]) == 49
    assert portal.stats.commands == 49


async def test_empty_batch_has_array_sections(
    portal: FakePortal, http: aiohttp.ClientSession
) -> None:
    status, body = await call(http, portal.webhook_url + "batch", {})
    assert status == 200
    assert body["result"] == {name: [] for name in SECTIONS}


# -- limits ---------------------------------------------------------------------------------


async def test_request_bucket_refuses_with_503_and_batch_counts_once(
    http: aiohttp.ClientSession,
) -> None:
    clock = FakeClock()
    async with FakePortal(rate_limit=RateLimit(burst=3, per_second=1.0), clock=clock) as portal:
        batch = {"cmd": [f"{ADD}?{encode_query(add_fields(str(i)))}" for i in range(10)]}
        status, _ = await call(http, portal.webhook_url + "batch", batch)
        assert status == 200
        for _ in range(2):
            assert (await call(http, portal.webhook_url + LIST))[0] == 200
        status, body = await call(http, portal.webhook_url + ADD, add_fields())
        assert (status, body) == (
            503,
            {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"},
        )
        assert len(portal.numerators) == 10
        assert portal.stats.rejected_rate_limit == 1
        assert portal.stats.commands == 12
        clock.advance(1.0)
        assert (await call(http, portal.webhook_url + LIST))[0] == 200
        async with http.get(portal.oauth.oauth_url, params={"grant_type": "x"}) as response:
            assert response.status == 400  # the token endpoint is not rate-limited


async def test_operating_budget_429_direct_and_in_batch(http: aiohttp.ClientSession) -> None:
    clock = FakeClock()
    budget = OperatingBudget(limit_s=0.1, window_s=600.0)
    async with FakePortal(
        operating_budget=budget,
        operating_billing="method",  # the documented model; "batch" is in test_billing_*.py
        operating_floor=0.0,
        method_costs={LIST.upper(): 0.06},
        clock=clock,
    ) as portal:
        url = portal.webhook_url + LIST
        _, first = await call(http, url)
        assert first["time"]["operating"] == pytest.approx(0.06)
        assert first["time"]["operating_reset_at"] >= int(time.time()) + 599
        _, second = await call(http, url)
        assert second["time"]["operating"] == pytest.approx(0.12)
        status, body = await call(http, url)
        assert (status, body) == (
            429,
            {
                "error": "OPERATION_TIME_LIMIT",
                "error_description": "Method is blocked due to operation time limit.",
            },
        )
        assert (await call(http, portal.webhook_url + ADD, add_fields()))[
            0
        ] == 200  # other methods work
        status, body = await call(
            http, portal.webhook_url + "batch", {"cmd": {"a": f"{GET}?id=1", "b": LIST}}
        )
        assert status == 200
        assert list(body["result"]["result"]) == ["a"]
        assert body["result"]["result_error"]["b"]["error"] == "OPERATION_TIME_LIMIT"
        assert portal.stats.rejected_operating == 2
        # the OAuth app is a different identity with its own budget
        assert (
            await call(
                http, portal.oauth.client_endpoint + LIST, {"auth": portal.oauth.access_token}
            )
        )[0] == 200
        clock.advance(600.0)
        assert (await call(http, url))[0] == 200


async def test_batch_commands_spend_their_cost(http: aiohttp.ClientSession) -> None:
    async with FakePortal(method_costs={ADD: 0.05}, cost_jitter=0.01, seed=3) as portal:
        batch = {"cmd": [f"{ADD}?{encode_query(add_fields(str(i)))}" for i in range(3)]}
        started = time.monotonic()
        _, body = await call(http, portal.webhook_url + "batch", batch)
        assert time.monotonic() - started >= 0.12
        durations = [t["duration"] for t in body["result"]["result_time"]]
        assert all(0.035 <= d < 0.5 for d in durations)
        assert body["time"]["duration"] >= sum(durations) - 1e-3
        assert body["result"]["result_time"][2]["operating"] == pytest.approx(
            sum(durations), abs=0.03
        )


async def test_request_time_cap_cuts_off_with_504_after_committing(
    http: aiohttp.ClientSession,
) -> None:
    async with FakePortal(method_costs={ADD: 0.08}, request_time_cap=0.2) as portal:
        batch = {"cmd": [f"{ADD}?{encode_query(add_fields(str(i)))}" for i in range(5)]}
        started = time.monotonic()
        async with http.post(portal.webhook_url + "batch", json=batch) as response:
            text = await response.text()
            assert response.status == 504
            assert response.content_type == "text/html"
        assert 0.19 <= time.monotonic() - started < 0.3  # sent at the cap, not after the command
        assert text.startswith("<html><head><title>504 Gateway Time-out</title>")
        assert [n["name"] for n in portal.numerators.values()] == ["0", "1", "2"]
        assert portal.stats.cut_off == 1
        assert portal.stats.commands == 3
    async with FakePortal(method_costs={ADD: 0.3}, request_time_cap=0.1) as portal:
        async with http.post(portal.webhook_url + ADD, json=add_fields("slow")) as response:
            assert response.status == 504
        assert [n["name"] for n in portal.numerators.values()] == ["slow"]


# -- OAuth ----------------------------------------------------------------------------------


async def test_refresh_rotates_both_tokens(portal: FakePortal, http: aiohttp.ClientSession) -> None:
    creds = portal.oauth
    grant = {
        "grant_type": "refresh_token",
        "client_id": creds.client_id,
        "client_secret": creds.client_secret,
    }
    async with http.get(
        creds.oauth_url, params={**grant, "refresh_token": creds.refresh_token}
    ) as response:
        assert response.status == 200
        token = await response.json()
    assert token["client_endpoint"] == creds.client_endpoint
    assert token["domain"] == portal.base_url.removeprefix("http://")
    assert token["expires_in"] == 3600
    assert {token["access_token"], token["refresh_token"]}.isdisjoint(
        {creds.access_token, creds.refresh_token}
    )
    assert {"expires", "member_id", "scope", "server_endpoint", "status", "user_id"} <= token.keys()
    assert (await call(http, creds.client_endpoint + LIST, {"auth": token["access_token"]}))[
        0
    ] == 200
    async with http.get(
        creds.oauth_url, params={**grant, "refresh_token": creds.refresh_token}
    ) as response:
        assert response.status == 400
        assert await response.json() == {
            "error": "invalid_grant",
            "error_description": "Invalid refresh token",
        }
    bad = {**grant, "client_secret": "wrong", "refresh_token": token["refresh_token"]}
    async with http.get(creds.oauth_url, params=bad) as response:
        assert (response.status, (await response.json())["error"]) == (400, "invalid_client")
    assert portal.stats.token_refreshes == 1
    assert portal.stats.requests == 1  # the token endpoint is not a REST request


async def test_authorization_code_grant(portal: FakePortal, http: aiohttp.ClientSession) -> None:
    creds = portal.oauth
    code = portal.issue_authorization_code()
    grant = {
        "grant_type": "authorization_code",
        "client_id": creds.client_id,
        "client_secret": creds.client_secret,
        "code": code,
    }
    async with http.get(creds.oauth_url, params=grant) as response:
        token = await response.json()
    assert (await call(http, creds.client_endpoint + LIST, {"auth": token["access_token"]}))[
        0
    ] == 200
    async with http.get(creds.oauth_url, params=grant) as response:  # a code works once
        assert (response.status, (await response.json())["error"]) == (400, "invalid_grant")
    assert portal.stats.token_refreshes == 0


async def test_access_tokens_expire(http: aiohttp.ClientSession) -> None:
    clock = FakeClock()
    expired = {
        "error": "expired_token",
        "error_description": "The access token provided has expired.",
    }
    async with FakePortal(access_token_lifetime=10.0, clock=clock) as portal:
        creds = portal.oauth
        url = creds.client_endpoint + LIST
        assert (await call(http, url, {"auth": creds.access_token}))[0] == 200
        clock.advance(10.0)
        assert await call(http, url, {"auth": creds.access_token}) == (401, expired)
        grant = {
            "grant_type": "refresh_token",
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
            "refresh_token": creds.refresh_token,
        }
        async with http.get(creds.oauth_url, params=grant) as response:
            fresh = (await response.json())["access_token"]
        assert (await call(http, url, {"auth": fresh}))[0] == 200
        portal.expire_access_tokens()
        assert await call(http, url, {"auth": fresh}) == (401, expired)


async def test_concurrent_requests_all_answered(
    portal: FakePortal, http: aiohttp.ClientSession
) -> None:
    results = await asyncio.wait_for(
        asyncio.gather(
            *(call(http, portal.webhook_url + ADD, add_fields(str(i))) for i in range(20))
        ),
        timeout=10,
    )
    assert {status for status, _ in results} == {200}
    assert sorted(int(n["name"]) for n in portal.numerators.values()) == list(range(20))
    assert json.loads(json.dumps(portal.stats.by_method)) == {ADD: 20}
