"""Auto-batching against the fake portal: request counts, per-awaiter outcomes, sizing by time."""

from __future__ import annotations

import asyncio

import pytest

from bitrix_docgen_async import (
    ClientStateError,
    CommandSkippedError,
    DocgenClient,
    NotFoundError,
    RateLimit,
)
from bitrix_docgen_async.testing import FakePortal
from tests.helpers import FAST_RETRY

GET = "crm.documentgenerator.numerator.get"
ADD = "crm.documentgenerator.numerator.add"


async def test_1000_concurrent_gets_cost_exactly_20_requests() -> None:
    async with FakePortal(rate_limit=RateLimit.standard()) as portal:
        ids = [portal.seed_numerator(f"N{i}") for i in range(20)]
        async with DocgenClient.from_webhook(portal.webhook_url) as client:
            results = await asyncio.gather(
                *(client.call(GET, {"id": ids[k % 20]}) for k in range(1000))
            )
        assert [int(r["numerator"]["id"]) for r in results] == [ids[k % 20] for k in range(1000)]
        assert portal.stats.requests == 20
        assert portal.stats.http_by_method["batch"] == 20
        assert portal.stats.rejected_rate_limit == 0
        assert client.stats.http_requests == 20
        assert client.stats.commands == 1000


async def test_each_awaiter_gets_its_own_error(client: DocgenClient, portal: FakePortal) -> None:
    good = portal.seed_numerator("good")
    outcomes = await asyncio.gather(
        client.call(GET, {"id": good}),
        client.call(GET, {"id": 987654}),
        client.call(GET, {"id": good}),
        return_exceptions=True,
    )
    assert int(outcomes[0]["numerator"]["id"]) == good
    assert isinstance(outcomes[1], NotFoundError)
    assert outcomes[1].code == "100" and outcomes[1].status is None  # from inside a batch
    assert int(outcomes[2]["numerator"]["id"]) == good
    assert portal.stats.http_by_method["batch"] == 1


async def test_a_direct_call_raises_the_same_class(client: DocgenClient) -> None:
    with pytest.raises(NotFoundError) as caught:
        await client.call(GET, {"id": 987654})
    assert caught.value.status == 400


async def test_lists_carry_total_and_next(client: DocgenClient, portal: FakePortal) -> None:
    for i in range(60):
        portal.seed_numerator(f"N{i}")
    page = await client.call_full("crm.documentgenerator.numerator.list", {"start": 0})
    assert page.total == 60 and page.next == 50
    assert len(page.result["numerators"]) == 50


async def test_explicit_batch_chains_results(client: DocgenClient, portal: FakePortal) -> None:
    async with client.batch(halt=True) as batch:
        added = batch.call(ADD, {"fields": {"name": "chained", "template": "{NUMBER}"}})
        fetched = batch.call(GET, {"id": added.ref("numerator", "id")})
    assert fetched.result()["numerator"]["name"] == "chained"
    assert int(fetched.result()["numerator"]["id"]) == added.result()["numerator"]["id"]
    assert portal.stats.http_by_method["batch"] == 1


async def test_explicit_batch_halt_skips_the_rest(client: DocgenClient) -> None:
    async with client.batch(halt=True) as batch:
        bad = batch.call(GET, {"id": 987654})
        later = batch.call(GET, {"id": 1})
    with pytest.raises(NotFoundError):
        bad.result()
    with pytest.raises(CommandSkippedError):
        later.result()


async def test_explicit_batch_refuses_a_51st_command(client: DocgenClient) -> None:
    batch = client.batch()
    for i in range(50):
        batch.call(GET, {"id": i + 1})
    with pytest.raises(ValueError, match="at most 50"):
        batch.call(GET, {"id": 51})


async def test_batches_are_sized_by_learned_cost() -> None:
    # 2 s per command, 10 s target, 30 s cap -- scaled 1:10.
    async with FakePortal(method_costs={ADD: 0.2}, request_time_cap=3.0) as portal:
        async with DocgenClient.from_webhook(
            portal.webhook_url, batch_time_target=1.0, retry=FAST_RETRY
        ) as client:
            results = await asyncio.gather(
                *(
                    client.call(ADD, {"fields": {"name": f"n{i}", "template": "{NUMBER}"}})
                    for i in range(100)
                )
            )
        assert len(results) == 100
        assert len(portal.numerators) == 100
        assert portal.stats.cut_off == 0
        sizes = portal.stats.batch_sizes
        assert sum(sizes) + portal.stats.http_by_method[ADD] == 100
        print(f"\nbatch sizes: {sizes}")
        assert max(sizes) <= 5


async def test_using_the_client_outside_async_with_is_a_clear_error() -> None:
    client = DocgenClient.from_webhook("https://example.bitrix24.com/rest/1/secretcode/")
    with pytest.raises(ClientStateError, match="async with"):
        await client.call(GET, {"id": 1})
    with pytest.raises(ClientStateError):
        client.batch()


async def test_bad_input_fails_before_any_request(client: DocgenClient, portal: FakePortal) -> None:
    with pytest.raises(ValueError):
        await client.call("", {})
    with pytest.raises(ValueError):
        await client.call("batch", {})
    with pytest.raises(TypeError):
        await client.call(GET, ["id", 1])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await client.call(GET, {"id": object()})
    assert portal.stats.requests == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://example.bitrix24.com/rest/1/code/",
        "https://example.bitrix24.com/rest/x/code/",
        "https://example.bitrix24.com/api/1/code/",
        "https://example.bitrix24.com/rest/1/code/?a=1",
        "ftp://example.bitrix24.com/rest/1/code/",
        "",
    ],
)
def test_webhook_urls_are_validated(url: str) -> None:
    with pytest.raises(ValueError):
        DocgenClient.from_webhook(url)
