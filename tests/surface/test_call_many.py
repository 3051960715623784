"""documents.get_many / client.call_many: bulk calls awaited as one (issue 15)."""

from __future__ import annotations

import asyncio
from typing import Any

import attrs
import pytest

from bitrix_docgen_async import (
    ClientStateError,
    DocgenClient,
    NotFoundError,
    RateLimit,
    RateLimitedError,
)
from bitrix_docgen_async._commands import Command, CommandQueue, Group
from bitrix_docgen_async.errors import ResponseError
from bitrix_docgen_async.resources.base import settle_many
from bitrix_docgen_async.session import CommandResult
from bitrix_docgen_async.testing import FakePortal

FAST = RateLimit(burst=50, per_second=200.0)
GET = "crm.documentgenerator.document.get"


async def test_get_many_reads_in_order_batched(portal: FakePortal) -> None:
    template = portal.seed_template()
    ids = [portal.seed_document(template, 2, entity) for entity in range(1, 61)]
    wanted = [*reversed(ids), ids[0]]  # 61 reads, one id twice
    async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST) as client:
        one = await client.documents.get(ids[0])
        before = portal.stats.requests
        documents = await client.documents.get_many(wanted)
        requests = portal.stats.requests - before
    assert [d.id for d in documents] == wanted
    fresh = {"download_url_machine": None}  # a new token on every read
    assert attrs.evolve(documents[-1], **fresh) == attrs.evolve(one, **fresh)
    assert requests == 2  # 50 + 11 commands, each batch one request


async def test_get_many_failures_as_one_group_or_in_place(portal: FakePortal) -> None:
    template = portal.seed_template()
    good = portal.seed_document(template, 2, 1)
    async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST) as client:
        with pytest.raises(ExceptionGroup) as caught:
            await client.documents.get_many([good, 999, 998])
        group = caught.value
        assert "2 of 3 calls failed (document 999, document 998)" in str(group)
        assert [type(e) for e in group.exceptions] == [NotFoundError, NotFoundError]
        assert [e.__notes__ for e in group.exceptions] == [
            [f"{GET}: document 999"],
            [f"{GET}: document 998"],
        ]
        mixed = await client.documents.get_many([good, 999], return_exceptions=True)
        assert mixed[0].id == good  # type: ignore[union-attr]
        assert isinstance(mixed[1], NotFoundError)


async def test_get_many_checks_every_id_before_sending(portal: FakePortal) -> None:
    async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST) as client:
        before = portal.stats.requests
        with pytest.raises(ValueError, match="document_id"):
            await client.documents.get_many([1, 0])
        assert await client.documents.get_many([]) == []
        assert await client.call_many(GET, []) == []
        assert portal.stats.requests == before


async def test_call_many_returns_what_call_returns(portal: FakePortal) -> None:
    template = portal.seed_template()
    ids = [portal.seed_document(template, 2, entity) for entity in range(1, 4)]
    async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST) as client:
        many = await client.call_many(GET, [{"id": i} for i in ids])
        one_by_one = [await client.call(GET, {"id": i}) for i in ids]
        full = await client.call_many_full(GET, [{"id": ids[0]}, {"id": 999}])
    assert [r["document"]["id"] for r in many] == [r["document"]["id"] for r in one_by_one]
    assert isinstance(full[0], CommandResult) and full[0].time is not None
    assert isinstance(full[1], NotFoundError)


async def test_a_cancelled_get_many_never_sends_what_is_still_queued(portal: FakePortal) -> None:
    template = portal.seed_template()
    ids = [portal.seed_document(template, 2, entity) for entity in range(1, 151)]
    # One request token now and one a minute later: the first batch goes, the rest waits.
    slow = RateLimit(burst=1, per_second=1 / 60)
    async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=slow) as client:
        before = portal.stats.commands
        reading = asyncio.create_task(client.documents.get_many(ids))
        for _ in range(500):  # bounded: 5 s at most
            if portal.stats.commands - before >= 50:
                break
            await asyncio.sleep(0.01)
        reading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reading
        assert client.session.queue.next_deadline() is None
    assert portal.stats.commands - before == 50


async def test_close_fails_a_queued_group_with_one_error(portal: FakePortal) -> None:
    slow = RateLimit(burst=1, per_second=1 / 60)
    async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=slow) as client:
        await client.call("crm.documentgenerator.numerator.list")  # spends the one token
        reading = asyncio.create_task(client.call_many(GET, [{"id": i} for i in range(1, 4)]))
        await asyncio.sleep(0)
    with pytest.raises(ExceptionGroup) as caught:
        await reading
    assert len(caught.value.exceptions) == 1  # the close's one error, noted once
    assert isinstance(caught.value.exceptions[0], ClientStateError)
    assert "3 of 3 calls failed" in str(caught.value)


def test_settle_many_names_positions() -> None:
    bad = ResponseError("cannot read n", status=200)
    assert settle_many("m", [1, 3], return_exceptions=False) == [1, 3]
    with pytest.raises(ExceptionGroup) as caught:
        settle_many("m", [1, bad, 3], return_exceptions=False, label=lambda i: f"row {i}")
    assert "1 of 3 calls failed (row 1)" in str(caught.value)
    [noted] = caught.value.exceptions
    assert type(noted) is ResponseError and str(noted) == str(bad)
    assert noted.__notes__ == ["m: row 1"]
    assert settle_many("m", [1, bad, 3], return_exceptions=True) == [1, bad, 3]


def test_a_shared_exception_gets_each_caller_s_note_on_its_own_copy() -> None:
    # One failed request fails every command in it: two callers' groups may hold one instance.
    shared = ResponseError("the batch reply is not JSON", status=502)
    groups = []
    for label in ("document 61", "document 70"):
        with pytest.raises(ExceptionGroup) as caught:
            settle_many("get", [shared], return_exceptions=False, label=lambda _, s=label: s)
        groups.append(caught.value)
    assert [g.exceptions[0].__notes__ for g in groups] == [
        ["get: document 61"],
        ["get: document 70"],
    ]
    assert not hasattr(shared, "__notes__")  # what the other awaiters see is left alone


async def test_a_reply_that_does_not_fit_fails_only_its_own_read(portal: FakePortal) -> None:
    template = portal.seed_template()
    ids = [portal.seed_document(template, 2, entity) for entity in range(1, 4)]

    def read(result: dict[str, Any]) -> int:
        if result["document"]["id"] == str(ids[1]):
            raise ResponseError("cannot read Document", status=200)
        return int(result["document"]["id"])

    async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST) as client:
        read_back = await client._read_many(GET, [{"id": i} for i in ids], read)
    assert read_back[0] == ids[0] and read_back[2] == ids[2]
    assert isinstance(read_back[1], ResponseError)


async def test_call_many_carries_the_auth_connector(portal: FakePortal) -> None:
    sent: list[Any] = []
    async with DocgenClient.from_webhook(
        portal.webhook_url, rate_limit=FAST, auth_connector="me"
    ) as client:
        real = client.session.call_many

        async def spy(method: str, params: list[Any], **options: Any) -> list[Any]:
            sent.extend(params)
            return await real(method, params, **options)

        client.session.call_many = spy  # type: ignore[method-assign]
        lists = "crm.documentgenerator.numerator.list"
        await client.call_many(lists, [None, {"auth_connector": "own"}])
    assert [p["auth_connector"] for p in sent] == ["me", "own"]


async def test_a_failed_command_of_a_group_is_never_sent_while_the_rest_waits() -> None:
    # A group's future is done only when every slot is; a command whose slot holds its
    # outcome (a queue timeout, say) must not count as waiting, or it could still be sent.
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    commands = [Command(GET, {"id": i}, f"{GET}?id={i}", future, True) for i in (1, 2, 3)]
    Group.adopt(future, commands)
    queue = CommandQueue()
    for command in commands:
        queue.push(command)
    commands[0].reject(RateLimitedError("QUEUE_TIMEOUT", "not sent", method=GET))
    assert not future.done() and not commands[0].live
    assert [len(head.costs) for head in queue.heads(lambda method: 0.1, 50)] == [2]
    assert queue.pop(GET, 3) == commands[1:]
    for command in commands[1:]:
        command.resolve(CommandResult({"document": {}}))
    assert future.done() and isinstance(future.result()[0], RateLimitedError)
