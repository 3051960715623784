"""A bulk run's journal shared through Redis by any number of processes on any number of hosts.

```python
from bitrix_docgen_async.redis_journal import RedisJournal

journal = RedisJournal("redis://127.0.0.1:6379/0", run_id="invoices-2026-12")
async for result in client.documents.generate_many(..., journal=journal):
    ...
```

It keeps the same per-entity records as the local
:class:`~bitrix_docgen_async.workflows.journal.SqliteJournal` (``adding`` with the first intent's
time,
``added`` with the document id, ``done`` with the PDF path, the last error), and adds what many
workers need: a **claim** per entity, with an owner and a **lease**. A worker claims an entity
before any call to the portal; while it works, a background task renews the lease; when it stops
it releases the claim. Another worker that meets a live claim leaves the entity alone
(``Claim.held_elsewhere``). A worker that crashed (SIGKILL, lost host) renews nothing, so once its
lease has run out the next worker takes the claim over and gets the entity's record with the
crashed worker's intent time: the bulk run then looks the document up on the portal (the same
lost-add lookup as after an ambiguous failure) before it adds anything, so a crash never makes a
duplicate. Every write checks that the writer still holds the claim, atomically (Lua scripts), so a
worker whose lease was taken over stops instead of adding a second document.

Time: leases are measured on the Redis server's clock (``TIME``), so hosts with skewed clocks
agree; ``clock=`` replaces it in tests. Intent times are the worker's wall clock, as in the local
journal, because the portal's document list is compared with them
(docs/portal.md#document-generator).

The run is bound, as the local journal is, to the portal, the caller's identity (a hash: never a
webhook code or a token), the template and the entity type; opening it for anything else raises
:class:`~bitrix_docgen_async.errors.JournalError`. Keys: ``{namespace}:journal:{run_id}:meta``,
``...:records``, ``...:claims`` (hashes keyed by entity id) and ``...:counts`` (how many
entities are in each state: ``adding``, ``added``, ``done``, and ``failed`` for those whose last
attempt failed and which are not done), readable by anyone with :func:`run_counts`. Needs the
``redis`` extra: ``pip install 'bitrix_docgen_async[redis]'``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

try:
    from redis.asyncio import Redis
    from redis.exceptions import RedisError
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "RedisJournal needs redis-py: pip install 'bitrix_docgen_async[redis]'"
    ) from exc

from bitrix_docgen_async.errors import JournalError
from bitrix_docgen_async.redis.keys import safe_url
from bitrix_docgen_async.workflows.journal import Claim, JournalEntry, RunBinding

__all__ = ["ClaimLostError", "RedisJournal", "journal_keys", "run_counts"]

_SCHEMA_VERSION = "1"

# Shared by every script: the clock, the claim check and the state counts.
#   now: ARGV[1] when >= 0 (an injected clock), else the server's TIME.
#   owns(entity): the claim is ours and its lease has not run out.
#   bucket(record): the counts hash field a record is counted under ('' for none).
_PRELUDE = """
local claims, records, counts = KEYS[1], KEYS[2], KEYS[3]
local now = tonumber(ARGV[1])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local owner = ARGV[2]
local function holder(entity)
  local held = redis.call('HGET', claims, entity)
  if not held then return nil, 0 end
  local sep = string.find(held, ' ', 1, true)
  return string.sub(held, sep + 1), tonumber(string.sub(held, 1, sep - 1))
end
local function owns(entity)
  local who, expires = holder(entity)
  return who == owner and expires > now
end
local function bucket(raw)
  if not raw then return '' end
  local r = cjson.decode(raw)
  if r.state ~= 'done' and r.error ~= nil and r.error ~= cjson.null then return 'failed' end
  return r.state
end
local function store(entity, old, record)
  local raw = cjson.encode(record)
  local before, after = bucket(old), bucket(raw)
  if before ~= after then
    if before ~= '' then redis.call('HINCRBY', counts, before, -1) end
    redis.call('HINCRBY', counts, after, 1)
  end
  redis.call('HSET', records, entity, raw)
end
"""

# ARGV: now, owner, entity, lease. Returns {status, record or false, previous owner or false}:
# status 1 = claimed (new, renewed, or taken over from an expired owner), 0 = held elsewhere.
_CLAIM = (
    _PRELUDE
    + """
local entity, lease = ARGV[3], tonumber(ARGV[4])
local who, expires = holder(entity)
if who and who ~= owner and expires > now then
  return {0, false, who}
end
redis.call('HSET', claims, entity, string.format('%.6f', now + lease) .. ' ' .. owner)
local previous = false
if who and who ~= owner then previous = who end
return {1, redis.call('HGET', records, entity) or false, previous}
"""
)

# ARGV: now, owner, lease, entity... Returns the entities whose claim is no longer ours.
_RENEW = (
    _PRELUDE
    + """
local lease = tonumber(ARGV[3])
local lost = {}
for i = 4, #ARGV do
  if owns(ARGV[i]) then
    redis.call('HSET', claims, ARGV[i], string.format('%.6f', now + lease) .. ' ' .. owner)
  else
    table.insert(lost, ARGV[i])
  end
end
return lost
"""
)

# ARGV: now, owner, entity. Drops the claim if it is ours (live or not).
_RELEASE = (
    _PRELUDE
    + """
local who = holder(ARGV[3])
if who == owner then redis.call('HDEL', claims, ARGV[3]) return 1 end
return 0
"""
)

# ARGV: now, owner, entity, action, a, b. Returns the stored record, or false when the claim
# is not ours (any more): the writer must stop.
#   intend: a = the writer's wall-clock time (kept only if no intent is recorded yet)
#   added: a = document id; done: a = document id, b = pdf path ('' for none);
#   failed: a = the error text.
_WRITE = (
    _PRELUDE
    + """
local entity, action = ARGV[3], ARGV[4]
if not owns(entity) then return false end
local old = redis.call('HGET', records, entity)
local r = {}
if old then r = cjson.decode(old) end
if action == 'intend' then
  r.state = 'adding'
  -- kept as the writer's text: cjson would round a float to 14 digits
  if r.intended_at == nil or r.intended_at == cjson.null then r.intended_at = ARGV[5] end
elseif action == 'added' then
  r.state = 'added'
  r.document_id = tonumber(ARGV[5])
elseif action == 'done' then
  r.state = 'done'
  r.document_id = tonumber(ARGV[5])
  if ARGV[6] == '' then r.pdf_path = cjson.null else r.pdf_path = ARGV[6] end
  r.error = cjson.null
elseif action == 'failed' then
  -- as in the local journal, an error is noted on an existing record only
  if not old then return 'no record' end
  r.error = ARGV[5]
end
store(entity, old, r)
return redis.call('HGET', records, entity)
"""
)

# KEYS: meta; ARGV: field, value, field, value, ... Returns '' when bound (now or before),
# else the first field whose value differs (with the stored value).
_BIND = """
local meta = KEYS[1]
if redis.call('EXISTS', meta) == 0 then
  redis.call('HSET', meta, unpack(ARGV))
  return {'', ''}
end
for i = 1, #ARGV, 2 do
  local stored = redis.call('HGET', meta, ARGV[i])
  if stored ~= ARGV[i + 1] then return {ARGV[i], stored or ''} end
end
return {'', ''}
"""

_NAMES = {
    "schema": "journal format",
    "portal": "portal",
    "identity": "webhook user or application",
    "template_id": "template",
    "entity_type_id": "entity type",
}


class ClaimLostError(JournalError):
    """This worker's claim on an entity ran out and another worker took the entity over.

    Nothing more is written or added for it here: the other worker finishes it.
    """


def journal_keys(run_id: str, namespace: str = "bitrix_docgen") -> dict[str, str]:
    """The Redis keys of a run's journal: ``meta``, ``records``, ``claims``, ``counts``."""
    base = f"{namespace}:journal:{run_id}"
    return {name: f"{base}:{name}" for name in ("meta", "records", "claims", "counts")}


async def run_counts(redis: Redis, run_id: str, namespace: str = "bitrix_docgen") -> dict[str, int]:
    """How many entities of a run are ``adding``, ``added``, ``done`` and ``failed``.

    Reads one hash, so anyone (a producer, a dashboard) can follow a run that many workers
    share.
    """
    raw = await redis.hgetall(journal_keys(run_id, namespace)["counts"])
    counts = {"adding": 0, "added": 0, "done": 0, "failed": 0}
    for key, value in raw.items():
        name = key.decode() if isinstance(key, bytes) else str(key)
        counts[name] = int(value)
    return counts


def _default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


class RedisJournal:
    """A journal that many workers of one run share through Redis.

    Use it wherever ``journal=`` is taken (``generate_many``): every worker of the run passes
    the same ``run_id``. One instance serves one ``generate_many`` call at a time (it is opened
    and closed by it); make one per call, sharing a Redis client if you like.

    Args:
        redis_url_or_client: ``redis://[user:password@]host:port/db`` (the password never appears
            in a message or repr), or a ``redis.asyncio.Redis`` of yours (never closed here).
        run_id: names the run; the same id on every worker of it.
        namespace: the first part of every Redis key.
        lease: seconds a claim lasts without renewal: how long a crashed worker's entities wait
            before another worker takes them over. Renewed every ``lease / 3`` while the run is
            open.
        owner: this worker's name in the claims (default: host, pid and a random part).
        clock: seconds, replacing the Redis server's ``TIME`` for leases (tests).
        connect_timeout: the socket timeouts of a client built from a URL, seconds.

    Raises:
        ValueError: ``run_id`` is empty or has a space, or ``lease`` is not positive.
    """

    def __init__(
        self,
        redis_url_or_client: str | Redis,
        run_id: str,
        *,
        namespace: str = "bitrix_docgen",
        lease: float = 30.0,
        owner: str | None = None,
        clock: Callable[[], float] | None = None,
        connect_timeout: float = 5.0,
    ) -> None:
        if not run_id or any(ch.isspace() for ch in run_id):
            raise ValueError(f"run_id must be a non-empty word, got {run_id!r}")
        if not lease > 0:
            raise ValueError(f"lease must be > 0, got {lease!r}")
        if isinstance(redis_url_or_client, str):
            self._redis = Redis.from_url(
                redis_url_or_client,
                socket_timeout=connect_timeout,
                socket_connect_timeout=connect_timeout,
            )
            self._owned: Redis | None = self._redis
            self.where = safe_url(redis_url_or_client)
        else:
            self._redis = redis_url_or_client
            self._owned = None
            options = redis_url_or_client.connection_pool.connection_kwargs
            self.where = f"{options.get('host', 'redis')}:{options.get('port', '')}"
        self.run_id = run_id
        self.namespace = namespace
        self.lease = float(lease)
        self.owner = owner or _default_owner()
        self._clock = clock
        self._keys = journal_keys(run_id, namespace)
        self._held: set[int] = set()
        self._lost: set[int] = set()
        self._renewer: asyncio.Task[None] | None = None
        self._open = False
        self._claim = self._redis.register_script(_CLAIM)
        self._renew = self._redis.register_script(_RENEW)
        self._release = self._redis.register_script(_RELEASE)
        self._write = self._redis.register_script(_WRITE)
        self._bind = self._redis.register_script(_BIND)

    def __repr__(self) -> str:
        return f"RedisJournal({self.where}, run_id={self.run_id!r})"

    @property
    def redis(self) -> Redis:
        """The Redis client (for :func:`run_counts` and the like)."""
        return self._redis

    def _error(self, doing: str, exc: BaseException) -> JournalError:
        return JournalError(
            f"journal {self.run_id} on {self.where}: cannot {doing}: {type(exc).__name__}: {exc}"
        )

    def _now(self) -> float:
        return self._clock() if self._clock is not None else -1.0

    async def _script(self, doing: str, script: Any, *args: object) -> Any:
        if not self._open:
            raise JournalError(f"journal {self.run_id}: not open")
        keys = [self._keys["claims"], self._keys["records"], self._keys["counts"]]
        try:
            return await script(keys=keys, args=[self._now(), self.owner, *args])
        except (RedisError, OSError) as exc:
            raise self._error(doing, exc) from None

    @staticmethod
    def _entry(entity_id: int, raw: bytes | str | None) -> JournalEntry | None:
        if not raw:
            return None
        record = json.loads(raw)
        return JournalEntry(
            entity_id=entity_id,
            state=str(record.get("state") or "adding"),
            intended_at=_float_or_none(record.get("intended_at")),
            document_id=_int_or_none(record.get("document_id")),
            pdf_path=record.get("pdf_path"),
        )

    # -- the Journal protocol ---------------------------------------------------------------

    async def open(self, binding: RunBinding) -> None:
        """Bind the run (or check its binding) and start renewing this worker's claims."""
        if self._open:
            raise JournalError(f"journal {self.run_id}: already open")
        wanted = {
            "schema": _SCHEMA_VERSION,
            "portal": binding.portal.lower().rstrip("/"),
            "identity": binding.identity_hash,
            "template_id": str(binding.template_id),
            "entity_type_id": str(binding.entity_type_id),
        }
        args = [item for pair in wanted.items() for item in pair]
        try:
            field, stored = await self._bind(keys=[self._keys["meta"]], args=args)
        except (RedisError, OSError) as exc:
            await self._disconnect()
            raise self._error("read its binding", exc) from None
        field = field.decode() if isinstance(field, bytes) else str(field)
        if field:
            # generate_many closes only a journal it opened: leave no connection behind
            await self._disconnect()
            stored = stored.decode() if isinstance(stored, bytes) else str(stored)
            shown = "" if field == "identity" else f": {stored} there, {wanted[field]} now"
            raise JournalError(
                f"journal {self.run_id} belongs to another {_NAMES[field]}{shown}; "
                "use a new run id for this run"
            )
        self._open = True
        self._renewer = asyncio.get_running_loop().create_task(self._renew_loop())

    async def _disconnect(self) -> None:
        """Drop the connections of a client built from a URL (it reconnects if used again)."""
        if self._owned is not None:
            await self._owned.connection_pool.disconnect()

    async def claim(self, entity_id: int) -> Claim:
        status, raw, _previous = await self._script(
            "claim an entity", self._claim, entity_id, self.lease
        )
        if not status:
            return Claim(None, held_elsewhere=True)
        self._held.add(entity_id)
        self._lost.discard(entity_id)
        return Claim(self._entry(entity_id, raw))

    async def lookup(self, entity_id: int) -> JournalEntry | None:
        if not self._open:
            raise JournalError(f"journal {self.run_id}: not open")
        try:
            raw = await self._redis.hget(self._keys["records"], str(entity_id))
        except (RedisError, OSError) as exc:
            raise self._error("read a record", exc) from None
        return self._entry(entity_id, raw)

    async def _write_record(self, doing: str, entity_id: int, *args: object) -> bytes | None:
        raw: bytes | None = await self._script(doing, self._write, entity_id, *args)
        if not raw:
            # The lease ran out and another worker took the entity over: what this worker
            # would write (or add next) could duplicate that worker's document.
            self._held.discard(entity_id)
            raise ClaimLostError(
                f"journal {self.run_id}: entity {entity_id} is no longer claimed by this "
                f"worker (lease of {self.lease:g} s ran out); another worker carries on with it"
            )
        return raw

    async def intend(self, entity_id: int) -> float:
        now = time.time()
        raw = await self._write_record("record an intent", entity_id, "intend", repr(now))
        entry = self._entry(entity_id, raw)
        return entry.intended_at if entry is not None and entry.intended_at else now

    async def record_added(self, entity_id: int, document_id: int) -> None:
        await self._write_record("record a document", entity_id, "added", document_id)

    async def record_done(self, entity_id: int, document_id: int, pdf_path: str | None) -> None:
        await self._write_record(
            "record a finished entity", entity_id, "done", document_id, pdf_path or ""
        )

    async def record_failed(self, entity_id: int, error: str) -> None:
        await self._write_record("record an error", entity_id, "failed", error)

    async def release(self, entity_id: int) -> None:
        self._held.discard(entity_id)
        self._lost.discard(entity_id)
        await self._script("release a claim", self._release, entity_id)

    async def close(self) -> None:
        """Stop renewing, release this worker's claims, close a client built from a URL."""
        renewer, self._renewer = self._renewer, None
        if renewer is not None:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        if self._open:
            for entity_id in list(self._held):
                with contextlib.suppress(JournalError):
                    await self.release(entity_id)
        self._open = False
        self._held.clear()
        owned, self._owned = self._owned, None
        if owned is not None:
            await owned.aclose()

    # -- extras ------------------------------------------------------------------------------

    async def counts(self) -> dict[str, int]:
        """How many entities of the run are in each state (see :func:`run_counts`)."""
        try:
            return await run_counts(self._redis, self.run_id, self.namespace)
        except (RedisError, OSError) as exc:
            raise self._error("count", exc) from None

    async def renew(self) -> set[int]:
        """Renew this worker's claims now; return the entities whose claim was lost."""
        held = sorted(self._held)
        if not held:
            return set()
        lost = await self._script("renew claims", self._renew, self.lease, *held)
        gone = {int(x) for x in lost}
        self._held -= gone
        self._lost |= gone
        return gone

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            # A Redis that does not answer now may answer at the next turn, within the lease;
            # the writes check the claim themselves, so nothing is written under a lost one.
            with contextlib.suppress(JournalError):
                await self.renew()


def _float_or_none(value: Any) -> float | None:
    if value is None:
        return None
    return float(value)


def _int_or_none(value: Any) -> int | None:
    if value is None:
        return None
    return int(value)
