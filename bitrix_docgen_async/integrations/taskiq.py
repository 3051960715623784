"""Document runs on taskiq workers: one client per worker process, chunks, a shared journal.

```python
# tasks.py, imported by the workers and by the producer
from bitrix_docgen_async.integrations.taskiq import DocgenTaskiq

docgen = DocgenTaskiq("redis://127.0.0.1:6379/0", chunk_size=100, chunks_in_flight=6)
broker = docgen.broker          # taskiq worker tasks:broker --workers 1 --max-async-tasks 2

# the producer
await docgen.broker.startup()
run = await docgen.enqueue("invoices-12", deal_ids, template_id=7, entity_type_id=2)
await run.wait()                # raises the library's own error of a failed chunk
print(await docgen.progress("invoices-12"))
```

What it sets up:

* **One client per worker process.** The worker's startup event
  (``TaskiqEvents.WORKER_STARTUP``) opens one :class:`~bitrix_docgen_async.DocgenClient` with
  a :class:`~bitrix_docgen_async.redis_limiter.RedisLimiter` shared by every worker of the
  portal, and keeps it in the worker's ``TaskiqState``; the shutdown event closes it. Tasks
  that run at once in a worker share it, so their calls are batched together (one client per
  task would send 50 times the requests). The webhook comes from ``webhook=`` or, in the
  worker only, ``BITRIX_WEBHOOK_URL``: the producer never needs it, and it is never part of a
  message, a result or a Redis key.
* **A chunk task** (:data:`TASK_NAME`): ``generate_many`` over its entity ids with a
  :class:`~bitrix_docgen_async.redis_journal.RedisJournal` of the run. taskiq does not drop a
  task id it has seen, and an acknowledged broker delivers a chunk again when its worker dies:
  both are harmless because of the journal's claims alone. An entity done by anyone is
  skipped; one that another worker holds is waited for (its claim is released, or its lease
  runs out and the entity is taken over, looked up on the portal, and finished here), so a
  chunk's task ends only when each of its entities is done or has failed.
* **The producer** (:meth:`DocgenTaskiq.enqueue`) splits the ids into chunks whose task ids
  are ``{run_id}:{chunk}``, for tracking.
* **An acknowledged broker**: taskiq-redis's ``RedisStreamBroker`` (as
  :class:`DocgenStreamBroker`, which also hands over idle messages when the queue is empty).
  A message is acknowledged
  once its result is saved; one that a dead worker never acknowledged is handed to another
  worker once it has been idle for the **redelivery timeout**. That timeout must be longer
  than a chunk can take, or a chunk still running is started a second time (harmless, but
  it does the waiting twice): :func:`redelivery_timeout` computes it from the chunk size, the
  seconds one entity takes at the portal's limits, and how many chunks run at once over all
  workers (they share those limits). A killed worker's chunk is resumed after that timeout.
* **Errors**: a chunk with failed entities raises the first failure, the library's own
  exception (a :class:`~bitrix_docgen_async.errors.BitrixError` subclass, with its message
  and attributes), after every entity of the chunk was tried. taskiq's Redis result backend
  rebuilds an exception from its ``args`` (which loses the class of most of ours), so results
  are kept by :class:`DocgenResultBackend`, which pickles them whole.
* **Progress** per run, readable by anyone from Redis: :meth:`DocgenTaskiq.progress` (the
  journal's counts per state, and the chunks finished).

Needs the ``taskiq`` extra: ``pip install 'bitrix_docgen_async[taskiq]'``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
from collections.abc import AsyncGenerator, Iterable, Mapping, Sequence
from typing import Any

import attrs

try:
    from redis.asyncio import Redis
    from taskiq import (
        AckableMessage,
        AsyncTaskiqTask,
        Context,
        TaskiqDepends,
        TaskiqEvents,
        TaskiqState,
    )
    from taskiq.result import TaskiqResult
    from taskiq_redis import RedisAsyncResultBackend, RedisStreamBroker
    from taskiq_redis.exceptions import ResultIsMissingError
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "the taskiq integration needs taskiq and taskiq-redis: "
        "pip install 'bitrix_docgen_async[taskiq]'"
    ) from exc

from bitrix_docgen_async.client import DocgenClient
from bitrix_docgen_async.core.ratelimit import OperatingBudget, RateLimit
from bitrix_docgen_async.env import WEBHOOK_ENV
from bitrix_docgen_async.errors import BitrixError, JournalError
from bitrix_docgen_async.redis_journal import ClaimLostError, RedisJournal, run_counts
from bitrix_docgen_async.redis_limiter import RedisLimiter

__all__ = [
    "TASK_NAME",
    "DocgenResultBackend",
    "DocgenStreamBroker",
    "DocgenTaskiq",
    "RunHandle",
    "RunProgress",
    "redelivery_timeout",
]

#: The chunk task's name on the broker.
TASK_NAME = "bitrix_docgen_async.generate_chunk"
_STATE_KEY = "bitrix_docgen"
_STANDARD = RateLimit.standard()
_BUDGET = OperatingBudget()


def redelivery_timeout(
    chunk_size: int,
    *,
    seconds_per_entity: float,
    chunks_in_flight: int = 1,
    pdf_wait: float = 0.0,
    margin: float = 3.0,
) -> float:
    """The broker's redelivery idle timeout for chunks of ``chunk_size``, seconds.

    A chunk's entities wait their turn behind the entities of every chunk running at the
    same time (all workers share the portal's limits), so a chunk takes about
    ``chunk_size x seconds_per_entity x chunks_in_flight`` seconds, plus the wait for the
    last PDFs; ``margin`` covers what the estimate misses (retries, a slow portal).

    Args:
        chunk_size: entities per chunk.
        seconds_per_entity: seconds per entity at the portal's limits, e.g.
            ``add_cost / (limit_s / window_s)`` when ``document.add``'s operating budget binds
            (docs/portal.md#operating-time-per-method).
        chunks_in_flight: chunks running at once over all workers (workers x the worker's
            ``--max-async-tasks``).
        pdf_wait: seconds to add for the PDFs of the chunk's last entities.
        margin: the factor applied to the estimate.
    """
    if chunk_size <= 0 or chunks_in_flight <= 0:
        raise ValueError("chunk_size and chunks_in_flight must be > 0")
    if not seconds_per_entity > 0 or not margin >= 1 or not pdf_wait >= 0:
        raise ValueError("seconds_per_entity must be > 0, margin >= 1 and pdf_wait >= 0")
    return margin * (chunk_size * seconds_per_entity * chunks_in_flight + pdf_wait)


class DocgenStreamBroker(RedisStreamBroker):
    """taskiq-redis's ``RedisStreamBroker`` that hands a dead worker's chunk over even when the
    queue is empty.

    taskiq-redis (1.2) looks for messages idle past ``idle_timeout`` (``XAUTOCLAIM``) only after
    a read that returned new messages, so the last chunks of a run, left unacknowledged by a
    killed worker, would wait for the next run to be enqueued. This broker looks after every
    read, empty or not, taking one message at a time: a worker claims only when it asks for
    work, so a busy worker takes nothing over. Only the main stream is read (no
    ``additional_streams``).
    """

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        async with Redis(connection_pool=self.connection_pool) as redis:
            while True:
                fetched: Any = await redis.xreadgroup(
                    self.consumer_group_name,
                    self.consumer_name,
                    {self.queue_name: ">"},
                    block=self.block,
                    noack=False,
                    count=self.count,
                )
                for _stream, messages in fetched or []:
                    for message_id, fields in messages:
                        yield self._message(message_id, fields)
                # XAUTOCLAIM moves an idle message to this consumer atomically: one worker
                # gets it, and its idle time starts again.
                _next, claimed, *_ = await redis.xautoclaim(
                    self.queue_name,
                    self.consumer_group_name,
                    self.consumer_name,
                    min_idle_time=self.idle_timeout,
                    count=1,
                )
                for message_id, fields in claimed:
                    if fields:  # None: trimmed from the stream meanwhile
                        yield self._message(message_id, fields)

    def _message(self, message_id: Any, fields: Any) -> AckableMessage:
        return AckableMessage(
            data=fields[b"data"], ack=self._ack_generator(id=message_id, queue_name=self.queue_name)
        )


class DocgenResultBackend(RedisAsyncResultBackend[Any]):
    """taskiq-redis's result backend, storing each result pickled whole.

    The stock backend turns a task's exception into its class name and ``args`` and calls the
    class with those again, which gives another message, or a plain ``Exception``, for any
    class whose constructor takes more than a message. Pickled whole, an error keeps its class,
    message and attributes (every exception of this library pickles). Like taskiq's own pickle
    serializer, it must only read results that trusted workers wrote.
    """

    async def set_result(self, task_id: str, result: TaskiqResult[Any]) -> None:
        name = self._task_name(task_id)
        value = pickle.dumps(result)
        async with Redis(connection_pool=self.redis_pool) as redis:
            if self.result_ex_time:
                await redis.set(name=name, value=value, ex=self.result_ex_time)
            elif self.result_px_time:
                await redis.set(name=name, value=value, px=self.result_px_time)
            else:
                await redis.set(name=name, value=value)

    async def get_result(self, task_id: str, with_logs: bool = False) -> TaskiqResult[Any]:
        name = self._task_name(task_id)
        async with Redis(connection_pool=self.redis_pool) as redis:
            if self.keep_results:
                value = await redis.get(name=name)
            else:
                value = await redis.getdel(name=name)
        if not isinstance(value, bytes):
            raise ResultIsMissingError
        result: TaskiqResult[Any] = pickle.loads(value)  # noqa: S301 - written by our workers
        if not with_logs:
            result.log = None
        return result


@attrs.frozen
class RunProgress:
    """Where a run stands, read from Redis.

    Attributes:
        run_id: the run.
        entities: how many entities were enqueued.
        chunks: how many chunks were enqueued.
        chunks_finished: chunks whose task ended with each entity done or failed.
        done: entities done (by any worker).
        failed: entities whose last attempt failed and which are not done.
        in_progress: entities with an add recorded (``adding``/``added``), not done.
    """

    run_id: str
    entities: int
    chunks: int
    chunks_finished: int
    done: int
    failed: int
    in_progress: int

    @property
    def finished(self) -> bool:
        """Every chunk finished."""
        return self.chunks > 0 and self.chunks_finished >= self.chunks


@attrs.define
class RunHandle:
    """The chunks of one enqueued run.

    Attributes:
        run_id: the run.
        tasks: one taskiq task per chunk, in order; ``task_id`` is ``{run_id}:{chunk}``.
    """

    run_id: str
    tasks: list[AsyncTaskiqTask[dict[str, Any]]]

    async def wait(self, within: float = 3600.0, poll: float = 0.2) -> list[dict[str, Any]]:
        """Each chunk's summary, once all are finished.

        Raises:
            BitrixError: a chunk's first failed entity's error (its own class and message);
                the other chunks' results are lost to this call, not to the run.
            taskiq.exceptions.TaskiqResultTimeoutError: not finished ``within`` seconds.
        """
        results = await asyncio.gather(
            *(task.wait_result(check_interval=poll, timeout=within) for task in self.tasks)
        )
        for result in results:
            result.raise_for_error()
        return [result.return_value for result in results]


@attrs.define
class _Worker:
    """What one worker process holds: its client, its limiter, its journal connection."""

    client: DocgenClient
    limiter: RedisLimiter
    redis: Redis


class DocgenTaskiq:
    """A taskiq broker set up for document runs, with its worker hooks and chunk task.

    Args:
        redis_url: the Redis of the queue, the results, the journals and the limiter.
        webhook: the portal's webhook URL for the workers (default: ``BITRIX_WEBHOOK_URL`` in
            the worker's environment); never needed by the producer.
        rate_limit, operating_budget: the portal's limits, shared by all workers through a
            ``RedisLimiter`` keyed by the webhook.
        client_options: more ``DocgenClient.from_webhook`` options for the workers' clients.
        chunk_size: the producer's default entities per chunk.
        seconds_per_entity, chunks_in_flight, pdf_wait: the estimate the redelivery timeout
            is computed from (see :func:`redelivery_timeout`); ``seconds_per_entity``
            defaults to 1.0 (a real portal's ``document.add`` under its operating budget).
        redelivery: the broker's redelivery idle timeout in seconds, instead of computing it.
        queue_name: the Redis stream of the chunks.
        namespace: the first part of the journal's and the progress's Redis keys.
        journal_lease: seconds a dead worker's entities stay claimed (see ``RedisJournal``).
        reservation_ttl: seconds before the operating budget that a killed worker had reserved
            for its calls in flight is given back to the others (``RedisLimiter``); the default
            sits above the portal's 60 s cut-off (docs/portal.md#request-time-out), after which
            no call of the dead worker can still be running. Until then the others may wait.
        max_in_flight, reconcile_delay: passed to ``generate_many``.
        result_ttl: seconds chunk results are kept in Redis.
    """

    def __init__(
        self,
        redis_url: str,
        *,
        webhook: str | None = None,
        rate_limit: RateLimit | None = _STANDARD,
        operating_budget: OperatingBudget | None = _BUDGET,
        client_options: Mapping[str, Any] | None = None,
        chunk_size: int = 100,
        seconds_per_entity: float = 1.0,
        chunks_in_flight: int = 4,
        pdf_wait: float = 60.0,
        redelivery: float | None = None,
        queue_name: str = "bitrix_docgen",
        namespace: str = "bitrix_docgen",
        journal_lease: float = 30.0,
        reservation_ttl: float = 90.0,
        max_in_flight: int = 200,
        reconcile_delay: float = 2.0,
        result_ttl: int = 7 * 24 * 3600,
    ) -> None:
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be > 0, got {chunk_size!r}")
        self.redis_url = redis_url
        self._webhook = webhook
        self.rate_limit = rate_limit
        self.operating_budget = operating_budget
        self.client_options = dict(client_options or {})
        self.chunk_size = chunk_size
        self.namespace = namespace
        self.journal_lease = journal_lease
        self.reservation_ttl = reservation_ttl
        self.max_in_flight = max_in_flight
        self.reconcile_delay = reconcile_delay
        if redelivery is None:
            redelivery = redelivery_timeout(
                chunk_size,
                seconds_per_entity=seconds_per_entity,
                chunks_in_flight=chunks_in_flight,
                pdf_wait=pdf_wait,
            )
        #: The broker's redelivery idle timeout, seconds.
        self.redelivery = redelivery
        #: How long a chunk waits for entities that another worker holds, seconds.
        self.held_wait = max(4 * redelivery, 4 * journal_lease, 600.0)
        self.broker = DocgenStreamBroker(
            redis_url,
            queue_name=queue_name,
            consumer_group_name=queue_name,
            idle_timeout=max(1, int(redelivery * 1000)),
            # One chunk per read: a worker takes no more than it runs, so the others get theirs.
            xread_count=1,
            xread_block=1000,
        ).with_result_backend(
            DocgenResultBackend(redis_url, result_ex_time=result_ttl, prefix_str=namespace)
        )
        self.broker.add_event_handler(TaskiqEvents.WORKER_STARTUP, self._startup)
        self.broker.add_event_handler(TaskiqEvents.WORKER_SHUTDOWN, self._shutdown)
        self.generate_chunk = self.broker.register_task(_generate_chunk, task_name=TASK_NAME)

    def __repr__(self) -> str:
        return f"DocgenTaskiq(queue={self.broker.queue_name!r}, chunk_size={self.chunk_size})"

    def _keys(self, run_id: str) -> tuple[str, str]:
        base = f"{self.namespace}:run:{run_id}"
        return base, f"{base}:chunks_finished"

    # -- the worker side -----------------------------------------------------------------------

    async def _startup(self, state: TaskiqState) -> None:
        webhook = self._webhook or os.environ.get(WEBHOOK_ENV)
        if not webhook:
            raise ValueError(f"no webhook: pass webhook= or set {WEBHOOK_ENV} for the workers")
        async with contextlib.AsyncExitStack() as stack:
            limiter = await stack.enter_async_context(
                RedisLimiter(
                    self.redis_url,
                    key=webhook,
                    rate_limit=self.rate_limit,
                    operating_budget=self.operating_budget,
                    namespace=self.namespace,
                    reservation_ttl=self.reservation_ttl,
                )
            )
            client = await stack.enter_async_context(
                DocgenClient.from_webhook(webhook, limiter=limiter, **self.client_options)
            )
            redis = Redis.from_url(self.redis_url, socket_timeout=10, socket_connect_timeout=10)
            stack.push_async_callback(redis.aclose)
            state[_STATE_KEY] = _Worker(client, limiter, redis)
            state[_STATE_KEY + ".owner"] = self
            state[_STATE_KEY + ".stack"] = stack.pop_all()

    async def _shutdown(self, state: TaskiqState) -> None:
        stack = state.get(_STATE_KEY + ".stack")
        state.pop(_STATE_KEY, None)
        if isinstance(stack, contextlib.AsyncExitStack):
            await stack.aclose()

    async def _run_chunk(
        self,
        worker: _Worker,
        run_id: str,
        chunk: int,
        entity_ids: Sequence[int],
        template_id: int,
        entity_type_id: int,
        wait_pdf: bool,
        download_dir: str | None,
        values: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        pending = list(entity_ids)
        done = made = failed = 0
        first_error: BaseException | None = None
        loop = asyncio.get_running_loop()
        started = loop.time()
        waits = 0
        while pending:
            held: list[int] = []
            journal = RedisJournal(
                worker.redis, run_id, namespace=self.namespace, lease=self.journal_lease
            )
            async for result in worker.client.documents.generate_many(
                template_id=template_id,
                entity_type_id=entity_type_id,
                entity_ids=pending,
                values=values,
                wait_pdf=wait_pdf,
                download_dir=download_dir,
                journal=journal,
                max_in_flight=self.max_in_flight,
                reconcile_delay=self.reconcile_delay,
            ):
                if isinstance(result.error, ClaimLostError) or (
                    result.skipped and result.document_id is None and result.error is None
                ):
                    held.append(result.entity_id)  # another worker holds it right now
                elif result.error is not None:
                    failed += 1
                    if first_error is None:
                        first_error = result.error
                else:
                    done += 1
                    made += not result.skipped
            pending = held
            if pending:
                # Its holder finishes it, or dies and its lease runs out: look again then. A
                # duplicate delivery waits for the first one's chunk, however slow, within
                # a bound (a holder that renews its claims for ever would be a bug).
                if loop.time() - started > self.held_wait:
                    raise JournalError(
                        f"run {run_id}, chunk {chunk}: {len(pending)} entities still held by "
                        f"another worker after {loop.time() - started:.0f} s"
                    )
                waits += 1
                await asyncio.sleep(min(self.journal_lease / 3, 0.2 * waits))
        _, finished = self._keys(run_id)
        await worker.redis.sadd(finished, chunk)
        summary = {
            "run_id": run_id,
            "chunk": chunk,
            "done": done,
            "made": made,
            "failed": failed,
            "seconds": round(loop.time() - started, 3),
        }
        if first_error is not None:
            raise first_error
        return summary

    # -- the producer side ---------------------------------------------------------------------

    async def enqueue(
        self,
        run_id: str,
        entity_ids: Iterable[int],
        *,
        template_id: int,
        entity_type_id: int,
        chunk_size: int | None = None,
        wait_pdf: bool = True,
        download_dir: str | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> RunHandle:
        """Send a run's chunks to the workers (call ``broker.startup()`` first).

        Enqueueing the same run again sends its chunks again: harmless (the journal skips what
        is done), and the way to finish a run whose chunks were lost.

        Args:
            run_id: names the run (its journal, its progress, its task ids).
            entity_ids: the CRM items, one document each.
            template_id, entity_type_id, wait_pdf, values: as ``generate_many``'s.
            chunk_size: entities per chunk (default: the one given to the constructor).
            download_dir: a folder on each worker's host to save the PDFs to.

        Returns:
            The chunks' tasks, with task ids ``{run_id}:{chunk}``.
        """
        size = chunk_size or self.chunk_size
        if size <= 0:
            raise ValueError(f"chunk_size must be > 0, got {size!r}")
        ids = [int(x) for x in entity_ids]
        if len(set(ids)) != len(ids):
            raise ValueError("entity_ids repeat an id")
        chunks = [ids[k : k + size] for k in range(0, len(ids), size)]
        base, _ = self._keys(run_id)
        redis = Redis.from_url(self.redis_url, socket_timeout=10, socket_connect_timeout=10)
        try:
            await redis.hset(base, mapping={"entities": len(ids), "chunks": len(chunks)})
        finally:
            await redis.aclose()
        tasks = []
        for number, chunk in enumerate(chunks):
            task = (
                await self.generate_chunk.kicker()
                .with_task_id(f"{run_id}:{number}")
                .kiq(
                    run_id,
                    number,
                    chunk,
                    template_id,
                    entity_type_id,
                    wait_pdf,
                    download_dir,
                    dict(values) if values is not None else None,
                )
            )
            tasks.append(task)
        return RunHandle(run_id, tasks)

    async def progress(self, run_id: str) -> RunProgress:
        """Where the run stands (from Redis; any process can ask)."""
        base, finished = self._keys(run_id)
        redis = Redis.from_url(self.redis_url, socket_timeout=10, socket_connect_timeout=10)
        try:
            meta = await redis.hgetall(base)
            chunks_finished = await redis.scard(finished)
            counts = await run_counts(redis, run_id, self.namespace)
        finally:
            await redis.aclose()
        return RunProgress(
            run_id=run_id,
            entities=int(meta.get(b"entities", 0)),
            chunks=int(meta.get(b"chunks", 0)),
            chunks_finished=int(chunks_finished),
            done=counts["done"],
            failed=counts["failed"],
            in_progress=counts["adding"] + counts["added"],
        )


async def _generate_chunk(
    run_id: str,
    chunk: int,
    entity_ids: list[int],
    template_id: int,
    entity_type_id: int,
    wait_pdf: bool = True,
    download_dir: str | None = None,
    values: dict[str, Any] | None = None,
    context: Context = TaskiqDepends(),  # noqa: B008 - taskiq's way to inject the context
) -> dict[str, Any]:
    """Generate one document for each entity of a chunk (the task :data:`TASK_NAME`)."""
    state = context.state
    worker = state.get(_STATE_KEY)
    owner = state.get(_STATE_KEY + ".owner")
    if not isinstance(worker, _Worker) or not isinstance(owner, DocgenTaskiq):
        raise BitrixError("the worker's client is not open (its startup event did not run)")
    return await owner._run_chunk(
        worker,
        run_id,
        chunk,
        entity_ids,
        template_id,
        entity_type_id,
        wait_pdf,
        download_dir,
        values,
    )
