"""``FakePortal.realistic(scale=...)``: the documented limits and costs, divided by ``scale``.

protocol.md §3.1 (burst 50, 2/s), §3.2 (480 s per 10 minutes; the docs' examples show
``document.add``/``update``/``delete`` spending about 1 to 2 s of ``operating``), §8.5 (PDFs
after 8 to 40 s). Checked over raw HTTP on an injected clock; the costs themselves elapse in
real time, so the scale keeps this test short.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from bitrix_docgen_async.core.encoding import encode_query
from bitrix_docgen_async.testing import FakePortal
from tests.helpers import FakeClock

ADD = "crm.documentgenerator.document.add"
GET = "crm.documentgenerator.document.get"
LIST = "crm.documentgenerator.numerator.list"
SCALE = 1000.0


async def post(http: aiohttp.ClientSession, url: str, body: Any = None) -> tuple[int, Any]:
    async with http.post(url, json=body if body is not None else {}) as response:
        return response.status, await response.json(content_type=None)


async def test_request_bucket_costs_and_pdf_delay(http: aiohttp.ClientSession) -> None:
    clock = FakeClock(100.0)
    async with FakePortal.realistic(scale=SCALE, clock=clock) as portal:
        template = portal.seed_template()
        url = portal.webhook_url
        statuses = [(await post(http, url + LIST))[0] for _ in range(51)]
        assert statuses == [200] * 50 + [503]  # burst 50, nothing drained on a still clock
        clock.advance(1 / SCALE)  # 2 * scale per second: two requests' room
        assert [(await post(http, url + LIST))[0] for _ in range(3)] == [200, 200, 503]
        clock.advance(1.0 / SCALE)
        status, body = await post(
            http, url + ADD, {"templateId": template, "entityTypeId": 2, "entityId": 1}
        )
        assert status == 200
        assert 1.0 / SCALE <= body["time"]["operating"] <= 2.0 / SCALE  # 1.5 +- 0.5 s, scaled
        assert "pdfUrl" not in body["result"]["document"]
        clock.advance(8.0 / SCALE - 1e-6)  # no PDF before the documented minimum of 8 s
        status, body = await post(http, url + GET, {"id": 1})
        assert status == 200 and "pdfUrl" not in body["result"]["document"]
        assert body["time"]["operating"] == 0  # a read costs nothing
        clock.advance(32.0 / SCALE)  # 40 s at most
        _, body = await post(http, url + GET, {"id": 1})
        assert "pdfUrl" in body["result"]["document"]


async def test_operating_budget_is_480_s_of_writes_per_window(http: aiohttp.ClientSession) -> None:
    clock = FakeClock(100.0)
    async with FakePortal.realistic(scale=SCALE, clock=clock) as portal:
        template = portal.seed_template()
        query = encode_query({"templateId": template, "entityTypeId": 2, "entityId": 1})
        batch = {"cmd": {f"a{i}": f"{ADD}?{query}" for i in range(50)}}
        added, refusal = 0, None
        for _ in range(12):  # 600 adds of 1 s or more would overrun 480 s whatever the draws
            clock.advance(10 / SCALE)  # keeps the request bucket from filling up
            status, body = await post(http, portal.webhook_url + "batch", batch)
            if status == 429:  # billing the whole batch refuses it at the door
                refusal = body["error"]
                break
            added += len(body["result"]["result"])
            errors = body["result"]["result_error"]
            if errors:
                refusal = next(iter(errors.values()))["error"]
                break
        assert refusal == "OPERATION_TIME_LIMIT"
        # the sum crossed 480 / scale seconds with adds of 1 to 2 s (/ scale) each
        assert 480 / 2 <= added <= 480 + 1
        assert portal.stats.rejected_operating >= 1
        clock.advance(600 / SCALE)  # the window has passed: writing works again
        status, _ = await post(
            http,
            portal.webhook_url + ADD,
            {"templateId": template, "entityTypeId": 2, "entityId": 2},
        )
        assert status == 200


async def test_a_plain_fake_portal_costs_nothing(http: aiohttp.ClientSession) -> None:
    async with FakePortal() as portal:
        template = portal.seed_template()
        status, body = await post(
            http,
            portal.webhook_url + ADD,
            {"templateId": template, "entityTypeId": 2, "entityId": 1},
        )
        assert status == 200 and body["time"]["operating"] == 0


def test_scale_must_be_positive() -> None:
    with pytest.raises(ValueError, match="scale"):
        FakePortal.realistic(scale=0)
