"""``operating_billing="batch"`` (the default): a batch request is billed whole to ``batch``.

Raw HTTP against the fake portal on a fake clock (docs/portal.md#how-batch-is-billed): the key
a batch is billed to, the running-sum figure every command reports, the 0.1 s floor, a spent
``batch`` budget refusing whole requests while direct calls go on, a method spent by direct
calls refused inside a batch, and both budgets coming back after the window.

Execution costs are slept for real, so they are kept to hundredths of a second; where the
figures would otherwise sit under the live portal's 0.1 s floor the floor is scaled down too.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest

from bitrix_docgen_async.core.encoding import encode_query
from bitrix_docgen_async.core.ratelimit import OperatingBudget
from bitrix_docgen_async.testing import FakePortal
from tests.helpers import FakeClock, post

ADD = "crm.documentgenerator.numerator.add"
LIST = "crm.documentgenerator.numerator.list"
WEBHOOK = "webhook:1"
WINDOW = 60.0
REFUSED = {
    "error": "OPERATION_TIME_LIMIT",
    "error_description": "Method is blocked due to operation time limit.",
}
#: Adds at 0.02 s, lists at 0.01 s, billed from 0.01 s on, 0.05 s per key per minute.
SMALL = {
    "fake_clock": True,
    "operating_budget": OperatingBudget(limit_s=0.05, window_s=WINDOW),
    "operating_floor": 0.01,
    "method_costs": {ADD: 0.02, LIST: 0.01},
}


def fields(name: str) -> dict[str, Any]:
    return {"fields": {"name": name, "template": "{NUMBER}"}}


def add(name: str) -> str:
    return f"{ADD}?{encode_query(fields(name))}"


async def batch(
    http: aiohttp.ClientSession, portal: FakePortal, cmd: dict[str, str], **extra: Any
) -> tuple[int, Any]:
    return await post(http, portal.webhook_url + "batch", {"cmd": cmd, **extra})


def operating(body: Any) -> dict[str, float]:
    return {key: block["operating"] for key, block in body["result"]["result_time"].items()}


@pytest.mark.portal(**SMALL)
async def test_a_batch_is_billed_to_batch_and_its_methods_are_not(
    portal: FakePortal, http: aiohttp.ClientSession
) -> None:
    cmd = {"a": add("a"), "b": add("b"), "c": LIST, "d": add("d")}
    status, body = await batch(http, portal, cmd)
    assert status == 200 and body["result"]["result_error"] == []
    # 0.02 + 0.02 + 0.01 + 0.02: the whole request to `batch`, nothing to the methods inside
    assert portal.stats.operating_billed == pytest.approx({(WEBHOOK, "batch"): 0.07})
    assert portal.stats.billed("batch") == pytest.approx(0.07)
    assert portal.stats.billed(ADD) == 0
    assert body["time"]["operating"] == pytest.approx(0.07)
    assert body["time"]["operating_reset_at"] >= int(time.time()) + WINDOW - 1
    # a direct call is billed to its own method, whose budget the batch did not touch
    status, direct = await post(http, portal.webhook_url + ADD, fields("e"))
    assert status == 200 and direct["time"]["operating"] == pytest.approx(0.02)
    assert portal.stats.operating_billed == pytest.approx(
        {(WEBHOOK, "batch"): 0.07, (WEBHOOK, ADD): 0.02}
    )
    # the OAuth application is another credential: its own `batch` budget
    creds = portal.oauth
    status, body = await post(
        http, creds.client_endpoint + "batch", {"cmd": {"x": LIST}, "auth": creds.access_token}
    )
    assert status == 200 and body["time"]["operating"] == pytest.approx(0.01)
    assert portal.stats.operating_billed[(f"app:{creds.client_id}", "batch")] == pytest.approx(0.01)


@pytest.mark.portal(fake_clock=True, method_costs={ADD: 0.04})
async def test_every_command_reports_the_running_sum_frozen_where_it_crossed_the_floor(
    portal: FakePortal, http: aiohttp.ClientSession
) -> None:
    # the live portal's floor, 0.1 s: the running sum is 0.04, 0.08, 0.12, 0.16
    status, body = await batch(http, portal, {k: add(k) for k in "abcd"})
    assert status == 200
    # nothing counted before the third command took the sum to the floor; from there on
    # every command carries the sum at that moment, not its own cost nor the growing total
    assert operating(body) == pytest.approx({"a": 0, "b": 0, "c": 0.12, "d": 0.12})
    durations = [block["duration"] for block in body["result"]["result_time"].values()]
    assert all(0.03 <= d < 0.5 for d in durations)  # duration stays per command
    assert body["time"]["operating"] == pytest.approx(0.16)  # the `batch` budget: all of it
    # the next request starts its own running sum; the outer figure is the window's
    _, body = await batch(http, portal, {k: add(k) for k in "xyz"})
    assert operating(body) == pytest.approx({"x": 0, "y": 0, "z": 0.12})
    assert body["time"]["operating"] == pytest.approx(0.28)
    assert portal.stats.billed("batch") == pytest.approx(0.28)


@pytest.mark.portal(fake_clock=True, method_costs={ADD: 0.04, LIST: 0.12})
async def test_calls_under_the_floor_are_not_billed(
    portal: FakePortal, http: aiohttp.ClientSession
) -> None:
    # a batch of 0.08 s in all stays under 0.1 s: neither `batch` nor its methods are billed
    status, body = await batch(http, portal, {"a": add("a"), "b": add("b")})
    assert status == 200
    assert operating(body) == {"a": 0, "b": 0}
    assert body["time"]["operating"] == 0
    # with nothing in the window the reset time is still sent: one window from now
    assert body["time"]["operating_reset_at"] >= int(time.time()) + 599
    # a direct call of 0.04 s is not billed either; one of 0.12 s is
    _, body = await post(http, portal.webhook_url + ADD, fields("c"))
    assert body["time"]["operating"] == 0
    _, body = await post(http, portal.webhook_url + LIST)
    assert body["time"]["operating"] == pytest.approx(0.12)
    assert portal.stats.operating_billed == pytest.approx({(WEBHOOK, LIST): 0.12})
    assert len(portal.numerators) == 3  # unbilled is not undone: all three adds ran


@pytest.mark.portal(**SMALL)
async def test_a_spent_batch_budget_refuses_whole_requests_and_direct_calls_go_on(
    portal: FakePortal, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    status, body = await batch(http, portal, {k: add(k) for k in "abc"})
    assert status == 200 and body["time"]["operating"] == pytest.approx(0.06)  # past 0.05
    assert len(portal.numerators) == 3
    status, body = await batch(http, portal, {"d": add("d"), "e": LIST})
    assert (status, body) == (429, REFUSED)
    assert len(portal.numerators) == 3  # refused at the door: no command ran
    assert portal.stats.operating_refused == {(WEBHOOK, "batch"): 1}
    assert portal.stats.rejected_operating == 1
    # direct calls are billed to their own methods, which have budget left
    status, body = await post(http, portal.webhook_url + ADD, fields("d"))
    assert status == 200 and body["time"]["operating"] == pytest.approx(0.02)
    status, body = await post(http, portal.webhook_url + LIST)
    assert status == 200 and body["result"]["numerators"]
    # another credential's `batch` budget is untouched
    creds = portal.oauth
    status, _ = await post(
        http, creds.client_endpoint + "batch", {"cmd": {"x": LIST}, "auth": creds.access_token}
    )
    assert status == 200
    # the bucket drops out one window after it opened: batches are served again
    clock.advance(WINDOW - 0.001)
    assert (await batch(http, portal, {"f": LIST}))[0] == 429
    clock.advance(0.001)
    status, body = await batch(http, portal, {"f": add("f")})
    assert status == 200 and body["time"]["operating"] == pytest.approx(0.02)
    assert portal.stats.operating_refused == {(WEBHOOK, "batch"): 2}


@pytest.mark.portal(**SMALL)
async def test_a_method_spent_by_direct_calls_is_refused_inside_a_batch(
    portal: FakePortal, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    statuses = [(await post(http, portal.webhook_url + ADD, fields(str(i))))[0] for i in range(4)]
    assert statuses == [200, 200, 200, 429]  # 0.06 s of adds spent the 0.05 s budget
    status, body = await batch(http, portal, {"a": LIST, "b": add("b"), "c": LIST})
    assert status == 200  # `batch` itself has budget: the request runs
    assert list(body["result"]["result"]) == ["a", "c"]
    assert body["result"]["result_error"] == {"b": REFUSED}
    assert list(body["result"]["result_time"]) == ["a", "c"]
    # only what ran is billed, and to `batch`: the two lists
    assert body["time"]["operating"] == pytest.approx(0.02)
    assert portal.stats.operating_billed == pytest.approx(
        {(WEBHOOK, ADD): 0.06, (WEBHOOK, "batch"): 0.02}
    )
    assert portal.stats.operating_refused == {(WEBHOOK, ADD): 2}
    assert len(portal.numerators) == 3
    clock.advance(WINDOW)
    status, body = await batch(http, portal, {"b": add("b")})
    assert status == 200 and body["result"]["result_error"] == []
    assert len(portal.numerators) == 4


@pytest.mark.portal(
    fake_clock=True,
    operating_budget=OperatingBudget(limit_s=0.05, window_s=WINDOW),
    operating_floor=0.01,
    method_costs={ADD: 0.02},
)
async def test_halted_and_failed_commands_are_not_billed(
    portal: FakePortal, http: aiohttp.ClientSession
) -> None:
    cmd = {"a": add("a"), "bad": "crm.documentgenerator.numerator.get?id=99", "c": add("c")}
    status, body = await batch(http, portal, cmd, halt=1)
    assert status == 200 and list(body["result"]["result"]) == ["a"]
    assert body["time"]["operating"] == pytest.approx(0.02)
    assert portal.stats.billed("batch") == pytest.approx(0.02)
