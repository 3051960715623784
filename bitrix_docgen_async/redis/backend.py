"""A :class:`~bitrix_docgen_async.limiter.LimiterBackend` whose state lives in Redis.

Every process that builds its backend with the same key shares one request bucket and one
operating budget per method, whatever host it runs on. Each operation is one Lua script run
atomically on the server's clock (:mod:`.lua`); a request token is the next free slot in the
order the takes reach Redis, so no worker starves.

When Redis goes away mid-run, taking a request token waits for it to come back, at most
``reconnect_timeout`` seconds counted from the first failure, and then raises
:class:`LimiterUnavailableError`; nothing is ever sent on an unshared bucket instead. The other
operations never hold a caller up: a command is not admitted while Redis is down, a booking of
execution time or a suspension is kept and applied once Redis answers again, and a refund, a
release or a drain is dropped (nothing is sent while Redis is down, and a dropped refund or
release only keeps capacity back, which errs on the safe side).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from redis import exceptions as redis_errors
from redis.asyncio import Redis

from bitrix_docgen_async.auth import Auth
from bitrix_docgen_async.core.ratelimit import OperatingBudget, OperatingLedger, RateLimit
from bitrix_docgen_async.core.retry import reconnect_delay
from bitrix_docgen_async.errors import LimiterUnavailableError  # re-exported: old imports
from bitrix_docgen_async.limiter import Clock, Sleep
from bitrix_docgen_async.redis.keys import key_prefixes
from bitrix_docgen_async.redis.lua import BUCKET_SCRIPT, LEDGER_SCRIPT

__all__ = ["LimiterUnavailableError", "RedisBackend"]

log = logging.getLogger("bitrix_docgen_async.limiter")

T = TypeVar("T")

#: Errors after which the same operation may succeed once Redis is back.
_TRANSIENT: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,  # a failover in progress
    TimeoutError,
    OSError,
)
#: Anything that means an operation did not (or may not) take effect.
_FAILED: tuple[type[BaseException], ...] = (*_TRANSIENT, redis_errors.RedisError)
#: Connection errors that waiting does not cure.
_FATAL: tuple[type[BaseException], ...] = (redis_errors.AuthenticationError,)
#: The share of the budget the in-memory ledger fills; the shared one fills the same.
_UTILISATION = OperatingLedger(OperatingBudget()).utilisation
#: Bookings kept while Redis is down, replayed when it answers again.
_BACKLOG_LIMIT = 10_000


def _num(value: float) -> str:
    if math.isinf(value):
        return "1e300" if value > 0 else "-1e300"
    return repr(float(value))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisBackend:
    """Limits kept in Redis and shared by every process that uses the same key.

    Args:
        redis: a ``redis.asyncio.Redis`` client (not closed here).
        key: what identifies the portal and credentials (see :func:`key_prefixes`); every worker
            of one portal must pass the same.
        rate_limit: the portal's request bucket; ``None``: requests are not paced.
        budget: the per-method operating budget; ``None``: commands are not paced.
        where: how to name the server in messages (no password).
        namespace: the first part of every Redis key.
        margin: tokens kept in reserve, as in :class:`~bitrix_docgen_async.core.ratelimit
            .TokenBucket`.
        max_ahead: the furthest in the future a request slot is handed out, seconds (default:
            the time the portal takes to drain a full bucket). A take beyond it waits and asks
            again; after a restart of Redis, the bucket admits nothing for this long.
        utilisation: the share of the operating budget to fill (default: as the in-memory
            :class:`~bitrix_docgen_async.core.ratelimit.OperatingLedger`).
        reservation_ttl: seconds after which execution time reserved by a process that never
            settled it (it crashed) is given back.
        reconnect_timeout: how long to wait for a lost Redis before failing, seconds.
        sleep, clock: injected in tests (``clock`` only measures the outage, never a limit).
    """

    def __init__(
        self,
        redis: Redis,
        *,
        key: str | Auth,
        rate_limit: RateLimit | None,
        budget: OperatingBudget | None,
        where: str = "redis",
        namespace: str = "bitrix_docgen",
        margin: float = 1.0,
        max_ahead: float | None = None,
        utilisation: float | None = None,
        reservation_ttl: float = 300.0,
        reconnect_timeout: float = 30.0,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
    ) -> None:
        if max_ahead is not None and not max_ahead > 0:
            raise ValueError("max_ahead must be > 0")
        if not reconnect_timeout >= 0:
            raise ValueError("reconnect_timeout must be >= 0")
        if not reservation_ttl > 0:
            raise ValueError("reservation_ttl must be > 0")
        utilisation = _UTILISATION if utilisation is None else utilisation
        if not 0 < utilisation <= 1:
            raise ValueError("utilisation must be in (0, 1]")
        self.redis = redis
        self.where = where
        self.rate_limit = rate_limit
        self.budget = budget
        self.margin = margin
        self.max_ahead = (
            max_ahead
            if max_ahead is not None
            else (rate_limit.burst / rate_limit.per_second if rate_limit else 1.0)
        )
        self.utilisation = utilisation
        self.reservation_ttl = reservation_ttl
        self.reconnect_timeout = reconnect_timeout
        self._sleep = sleep
        self._clock = clock
        self.bucket_prefix, self.budget_prefix = key_prefixes(key, namespace)
        self._bucket_script = redis.register_script(BUCKET_SCRIPT)
        self._ledger_script = redis.register_script(LEDGER_SCRIPT)
        # Reservation members held by this process: method -> seconds -> members.
        self._held: dict[str, dict[float, list[str]]] = {}
        # Bookings and suspensions to apply once a lost Redis answers again.
        self._backlog: deque[tuple[str, str, tuple[str, ...]]] = deque(maxlen=_BACKLOG_LIMIT)
        self._contacted = False
        self._down_since: float | None = None
        #: Outages survived (Redis lost and found again).
        self.outages = 0

    def __repr__(self) -> str:
        return f"RedisBackend({self.where}, bucket={self.bucket_prefix!r})"

    @property
    def capacity(self) -> float:
        """Tokens in a full bucket: the burst less the margin (at least 1)."""
        return max(1.0, self.rate_limit.burst - self.margin) if self.rate_limit else 0.0

    @property
    def restart_guard(self) -> float:
        """Seconds after a Redis (re)start before a fresh bucket is full (0 without a rate).

        Up to one second more in practice: Redis reports its uptime in whole seconds, and the
        rebuild takes the lower reading.
        """
        if self.rate_limit is None:
            return 0.0
        return self.max_ahead + self.capacity / self.rate_limit.per_second

    # -- connection -----------------------------------------------------------------------

    async def check(self) -> None:
        """Reach Redis and load the scripts.

        Raises:
            LimiterUnavailableError: Redis cannot be reached or refused us.
        """
        try:
            await self.redis.ping()
            await self.redis.script_load(BUCKET_SCRIPT)
            await self.redis.script_load(LEDGER_SCRIPT)
        except _FAILED as exc:
            raise self._unavailable(exc, "is unavailable") from exc
        self._contacted = True
        await self._recovered()

    def _unavailable(self, exc: BaseException, what: str) -> LimiterUnavailableError:
        return LimiterUnavailableError(
            f"the rate limiter's Redis at {self.where} {what} ({type(exc).__name__}: {exc}); "
            "requests are not sent without the shared budget"
        )

    async def _run(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run one script, waiting for a lost Redis within ``reconnect_timeout``."""
        attempt = 0
        while True:
            try:
                result = await call()
            except _FATAL as exc:
                raise self._unavailable(exc, "refused the connection") from exc
            except _TRANSIENT as exc:
                if not self._contacted:
                    raise self._unavailable(exc, "is unavailable") from exc
                down_since = self._lost(exc)
                left = down_since + self.reconnect_timeout - self._clock()
                if left <= 0:
                    raise self._unavailable(
                        exc, f"has been unreachable for over {self.reconnect_timeout:g} s"
                    ) from exc
                attempt += 1
                await self._sleep(min(reconnect_delay(attempt), left))
                continue
            except redis_errors.RedisError as exc:
                raise self._unavailable(exc, "failed") from exc
            self._contacted = True
            await self._recovered()
            return result

    def _lost(self, exc: BaseException) -> float:
        """Note that Redis failed us; return when the outage began."""
        if self._down_since is None:
            self._down_since = self._clock()
            log.warning(
                "lost the rate limiter's Redis at %s (%s); requests wait up to %g s for it",
                self.where,
                type(exc).__name__,
                self.reconnect_timeout,
            )
        return self._down_since

    async def _recovered(self) -> None:
        if self._down_since is not None:
            log.warning(
                "the rate limiter's Redis at %s is back after %.1f s",
                self.where,
                self._clock() - self._down_since,
            )
            self._down_since = None
            self.outages += 1
        while self._backlog:
            method, op, extra = self._backlog[0]
            try:
                await self._ledger(method, op, *extra)
            except _FAILED:
                return
            self._backlog.popleft()

    async def _once(self, call: Callable[[], Awaitable[T]], what: str) -> T | None:
        """Run one script once; None if it failed (a lost Redis is noted, a bug logged)."""
        try:
            return await call()
        except _TRANSIENT as exc:
            self._lost(exc)
        except redis_errors.RedisError:
            log.exception("a shared %s failed", what)
        return None

    async def _ledger_or_later(self, method: str, op: str, *extra: str) -> None:
        """Run a ledger update now, or keep it for when Redis answers again."""
        if self._down_since is None:
            done = await self._once(lambda: self._ledger(method, op, *extra), f"{op} of {method}")
            if done is not None:
                return
        # Applied later, it expires a little later: that errs on the safe side.
        self._backlog.append((method, op, extra))

    # -- scripts ----------------------------------------------------------------------------

    async def _bucket(self, op: str) -> tuple[bool, float]:
        assert self.rate_limit is not None
        args = [op, _num(self.capacity), _num(self.rate_limit.per_second), _num(self.max_ahead)]
        reply = await self._bucket_script(keys=[f"{self.bucket_prefix}:bucket"], args=args)
        return int(reply[0]) == 1, float(_text(reply[1]))

    async def _ledger(self, method: str, op: str, *extra: str) -> Sequence[Any]:
        assert self.budget is not None
        base = f"{self.budget_prefix}:op:{method}"
        keys = [f"{base}:state", f"{base}:booked", f"{base}:held"]
        args = [
            op,
            _num(self.budget.limit_s),
            _num(self.budget.window_s),
            _num(self.utilisation),
            *extra,
        ]
        reply: Sequence[Any] = await self._ledger_script(keys=keys, args=args)
        return reply

    def _pop_member(self, method: str, reserved: float) -> str:
        by_amount = self._held.get(method)
        if not by_amount:
            return ""
        # Reservations of the same amount are interchangeable; any one will do otherwise, but
        # only for a call that held something: a settle with nothing reserved (a batch's outer
        # figure, a command already booked) must leave another call's hold in flight.
        if reserved in by_amount:
            amount = reserved
        elif reserved > 0:
            amount = next(iter(by_amount))
        else:
            return ""
        members = by_amount[amount]
        member = members.pop()
        if not members:
            del by_amount[amount]
        return member

    # -- LimiterBackend ---------------------------------------------------------------------

    async def take_request(self) -> float:
        """Reserve the next request slot; return the seconds to wait for it.

        Raises:
            LimiterUnavailableError: Redis was never reached, or stayed lost for longer than
                ``reconnect_timeout``.
        """
        if self.rate_limit is None:
            return 0.0
        while True:
            granted, seconds = await self._run(lambda: self._bucket("take"))
            if granted:
                return seconds
            # Every slot within max_ahead is taken: ask again when one may be free.
            await self._sleep(seconds)

    async def refund_request(self) -> None:
        if self.rate_limit is not None and self._down_since is None:
            await self._once(lambda: self._bucket("refund"), "refund")

    async def drain_requests(self) -> None:
        if self.rate_limit is not None and self._down_since is None:
            await self._once(lambda: self._bucket("drain"), "drain")

    async def try_reserve(self, method: str, seconds: float) -> bool:
        if self.budget is None:
            return True
        if self._down_since is not None:
            return False  # never admitted without the shared ledger
        args = (_num(seconds), _num(self.reservation_ttl))
        reply = await self._once(lambda: self._ledger(method, "reserve", *args), "reserve")
        if reply is None or int(reply[0]) != 1:
            return False
        self._held.setdefault(method, {}).setdefault(seconds, []).append(_text(reply[1]))
        return True

    async def release(self, method: str, reserved: float) -> None:
        if self.budget is None:
            return
        member = self._pop_member(method, reserved)
        if member and self._down_since is None:
            # Dropped if it fails: the reservation expires by itself.
            await self._once(lambda: self._ledger(method, "release", member), "release")

    async def settle(
        self,
        method: str,
        reserved: float,
        actual: float,
        operating: float | None,
        reset_in: float | None,
        ended_ago: float = 0.0,
    ) -> None:
        if self.budget is None:
            return
        member = self._pop_member(method, reserved)
        await self._ledger_or_later(
            method,
            "settle",
            member,
            _num(actual),
            _num(ended_ago),
            "" if operating is None else _num(operating),
            "" if reset_in is None else _num(reset_in),
        )

    async def suspend(self, method: str, seconds: float) -> None:
        if self.budget is not None:
            await self._ledger_or_later(method, "suspend", _num(seconds))

    async def wait_hint(self, method: str) -> float | None:
        if self.budget is None or self._down_since is not None:
            return None
        reply = await self._once(lambda: self._ledger(method, "hint"), "hint")
        text = _text(reply[1]) if reply is not None else ""
        return float(text) if text else None
