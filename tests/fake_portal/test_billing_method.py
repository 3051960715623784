"""``operating_billing="method"``: the documented model, each command billed to its own method.

Raw HTTP against the fake portal on a fake clock (docs/portal.md#how-batch-is-billed): the outer
``batch`` is not billed, each command reports its own method's running sum, the 0.1 s floor
applies per command, a spent method is refused inside a batch while the batch and other
methods are served, and budgets come back after the window. Also: ``FakePortal.realistic`` and
the emulator's ``--billing`` pass the model through.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest

from bitrix_docgen_async.cli.emulator import limits_from
from bitrix_docgen_async.cli.parser import build_parser
from bitrix_docgen_async.core.encoding import encode_query
from bitrix_docgen_async.core.ratelimit import OperatingBudget
from bitrix_docgen_async.testing import FakePortal
from tests.helpers import FakeClock, post

ADD = "crm.documentgenerator.numerator.add"
LIST = "crm.documentgenerator.numerator.list"
DOC_ADD = "crm.documentgenerator.document.add"
WEBHOOK = "webhook:1"
WINDOW = 60.0
REFUSED = {
    "error": "OPERATION_TIME_LIMIT",
    "error_description": "Method is blocked due to operation time limit.",
}
SMALL = {
    "fake_clock": True,
    "operating_billing": "method",
    "operating_budget": OperatingBudget(limit_s=0.05, window_s=WINDOW),
    "operating_floor": 0.01,
    "method_costs": {ADD: 0.02, LIST: 0.01},
}


def fields(name: str) -> dict[str, Any]:
    return {"fields": {"name": name, "template": "{NUMBER}"}}


def add(name: str) -> str:
    return f"{ADD}?{encode_query(fields(name))}"


async def batch(
    http: aiohttp.ClientSession, url: str, cmd: dict[str, str], **extra: Any
) -> tuple[int, Any]:
    return await post(http, url + "batch", {"cmd": cmd, **extra})


def operating(body: Any) -> dict[str, float]:
    return {key: block["operating"] for key, block in body["result"]["result_time"].items()}


@pytest.mark.portal(**SMALL)
async def test_each_command_is_billed_to_its_method_and_the_batch_is_not(
    portal: FakePortal, http: aiohttp.ClientSession
) -> None:
    cmd = {"a": add("a"), "b": LIST, "c": add("c")}
    status, body = await batch(http, portal.webhook_url, cmd)
    assert status == 200
    # each command shows its own method's sum so far
    assert operating(body) == pytest.approx({"a": 0.02, "b": 0.01, "c": 0.04})
    assert "operating" not in body["time"]  # the outer call is not billed
    assert portal.stats.operating_billed == pytest.approx(
        {(WEBHOOK, ADD): 0.04, (WEBHOOK, LIST): 0.01}
    )
    assert portal.stats.billed("batch") == 0
    # a direct call adds to the same budget as the batched commands
    _, body = await post(http, portal.webhook_url + ADD, fields("d"))
    assert body["time"]["operating"] == pytest.approx(0.06)
    assert body["time"]["operating_reset_at"] >= int(time.time()) + WINDOW - 1


@pytest.mark.portal(
    fake_clock=True, operating_billing="method", method_costs={ADD: 0.04, LIST: 0.12}
)
async def test_the_floor_applies_to_each_command(
    portal: FakePortal, http: aiohttp.ClientSession
) -> None:
    # three adds of 0.04 s: 0.12 s in one request, but each command is its own call
    status, body = await batch(http, portal.webhook_url, {k: add(k) for k in "abc"})
    assert status == 200 and operating(body) == {"a": 0, "b": 0, "c": 0}
    status, body = await batch(http, portal.webhook_url, {"x": LIST, "y": add("y")})
    assert operating(body) == pytest.approx({"x": 0.12, "y": 0})
    _, body = await post(http, portal.webhook_url + LIST)
    assert body["time"]["operating"] == pytest.approx(0.24)
    assert portal.stats.operating_billed == pytest.approx({(WEBHOOK, LIST): 0.24})


@pytest.mark.portal(**SMALL)
async def test_a_spent_method_is_refused_inside_batches_which_are_never_refused_whole(
    portal: FakePortal, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    status, body = await batch(http, portal.webhook_url, {k: add(k) for k in "abc"})
    assert status == 200 and operating(body)["c"] == pytest.approx(0.06)  # past 0.05
    for _ in range(2):  # much more than the budget went through batches: still no 429
        status, body = await batch(http, portal.webhook_url, {"d": add("d"), "e": LIST})
        assert status == 200
        assert body["result"]["result_error"] == {"d": REFUSED}
        assert list(body["result"]["result"]) == ["e"]
    assert (await post(http, portal.webhook_url + ADD, fields("d"))) == (429, REFUSED)
    assert (await post(http, portal.webhook_url + LIST))[0] == 200
    assert portal.stats.operating_refused == {(WEBHOOK, ADD): 3}
    assert portal.stats.rejected_operating == 3
    assert len(portal.numerators) == 3
    clock.advance(WINDOW)
    status, body = await batch(http, portal.webhook_url, {"d": add("d")})
    assert status == 200 and operating(body) == pytest.approx({"d": 0.02})


async def test_realistic_passes_the_billing_model_and_scales_the_floor(
    http: aiohttp.ClientSession,
) -> None:
    scale = 100.0
    figures = {}
    for model in ("batch", "method"):
        portal = FakePortal.realistic(scale, operating_billing=model, clock=FakeClock(), seed=1)
        async with portal:
            assert portal.dispatcher.billing.floor == pytest.approx(0.1 / scale)
            template = portal.seed_template()
            query = encode_query({"templateId": template, "entityTypeId": 2, "entityId": 1})
            status, body = await batch(
                http, portal.webhook_url, {"a": f"{DOC_ADD}?{query}", "b": f"{DOC_ADD}?{query}"}
            )
            assert status == 200 and body["result"]["result_error"] == []
            figures[model] = {name for _, name in portal.stats.operating_billed}
    # adds of 1.5 +- 0.5 s / 100 are well above the scaled 0.001 s floor under both models
    assert figures == {"batch": {"batch"}, "method": {DOC_ADD}}


@pytest.mark.parametrize("model", ["batch", "method"])
async def test_the_emulator_takes_billing(model: str, http: aiohttp.ClientSession) -> None:
    args = build_parser().parse_args(["emulator", "--fast", "--billing", model])
    limits = limits_from(args)
    assert limits.billing == model
    assert f"billed {'to `batch`' if model == 'batch' else 'per command'}" in limits.describe()
    async with limits.portal(seed=1) as portal:
        template = portal.seed_template()
        query = encode_query({"templateId": template, "entityTypeId": 2, "entityId": 1})
        status, _ = await batch(http, portal.webhook_url, {"a": f"{DOC_ADD}?{query}"})
        assert status == 200
        assert list(portal.stats.operating_billed) == [
            (WEBHOOK, "batch" if model == "batch" else DOC_ADD)
        ]


def test_the_default_is_batch_and_a_bad_model_is_refused() -> None:
    assert limits_from(build_parser().parse_args(["emulator"])).billing == "batch"
    with pytest.raises(ValueError, match="operating_billing"):
        FakePortal(operating_billing="per-request")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="operating_floor"):
        FakePortal(operating_floor=-1.0)
