"""First contact with an unmeasured method: a write with an upper-estimate prior is not held
back a whole round; a render (or a method we know nothing of) still probes with one batch."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bitrix_docgen_async import DocgenClient
from tests.session.fakes import WEBHOOK, FakeClock, FakeTransport, turns

ADD = "crm.documentgenerator.numerator.add"
DOC_ADD = "crm.documentgenerator.document.add"
UNKNOWN = "crm.item.add"


def make_client(transport: FakeTransport, clock: FakeClock, **options: Any) -> DocgenClient:
    options.setdefault("rate_limit", None)
    return DocgenClient.from_webhook(
        WEBHOOK, transport=transport, clock=clock, sleep=clock.sleep, linger=0, **options
    )


async def requests_before_any_reply(method: str, calls: int, **options: Any) -> list[int]:
    """Sizes of the requests sent while no reply has come back yet."""
    transport = FakeTransport()
    transport.gate = asyncio.Event()
    async with make_client(transport, FakeClock(), **options) as client:
        tasks = [asyncio.create_task(client.call(method, {"n": i})) for i in range(calls)]
        await turns(60)
        sizes = [len(payload.get("cmd", {})) or 1 for _, payload in transport.requests]
        transport.gate.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 5.0)
    return sizes


async def test_an_unmeasured_write_fills_every_batch_at_once() -> None:
    assert await requests_before_any_reply(ADD, 120) == [50, 50, 20]


@pytest.mark.parametrize("method", [DOC_ADD, UNKNOWN])
async def test_a_render_or_an_unknown_method_probes_with_one_batch(method: str) -> None:
    sizes = await requests_before_any_reply(method, 120)
    assert len(sizes) == 1


async def test_under_a_short_batch_target_a_write_probes_sized_for_three_times_its_prior() -> None:
    # 0.1 s prior x 3 = 0.3 s per command: 3 commands fit a 1 s target; the rest waits for the
    # measurement, because a full batch at a too-low prior could run far past the target.
    assert await requests_before_any_reply(ADD, 120, batch_time_target=1.0) == [3]
