"""A limiter shared through Redis by any number of processes on any number of hosts.

```python
from bitrix_docgen_async import DocgenClient
from bitrix_docgen_async.redis import RedisLimiter

async with RedisLimiter("redis://127.0.0.1:6379/0", key=webhook_url) as limiter:
    async with DocgenClient.from_webhook(webhook_url, limiter=limiter) as client:
        ...
```

Every worker of one portal passes the same ``key`` (the webhook URL is the natural choice; only
its hash reaches Redis) and the same limits. Needs the ``redis`` extra:
``pip install 'bitrix_docgen_async[redis]'``.
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType

try:
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "RedisLimiter needs redis-py: pip install 'bitrix_docgen_async[redis]'"
    ) from exc

from bitrix_docgen_async.auth import Auth
from bitrix_docgen_async.core.ratelimit import OperatingBudget, RateLimit
from bitrix_docgen_async.errors import LimiterUnavailableError
from bitrix_docgen_async.limiter import Clock, Limiter, Sleep
from bitrix_docgen_async.redis.backend import RedisBackend
from bitrix_docgen_async.redis.keys import key_prefixes, safe_url

__all__ = ["LimiterUnavailableError", "RedisBackend", "RedisLimiter", "key_prefixes"]

_STANDARD = RateLimit.standard()
_BUDGET = OperatingBudget()


class RedisLimiter(Limiter):
    """A :class:`~bitrix_docgen_async.limiter.Limiter` whose bucket and budgets live in Redis.

    Pass it as ``limiter=`` to :class:`~bitrix_docgen_async.DocgenClient`; it replaces the
    client's ``rate_limit`` and ``operating_budget``. Use it in ``async with`` (or call
    :meth:`check` and, at the end, :meth:`aclose`): entering checks that Redis answers, so a
    missing Redis is a clear :class:`LimiterUnavailableError` at start, not a hang later.

    Args:
        redis_url: ``redis://[user:password@]host:port/db`` (or ``rediss://``, ``unix://``);
            the password never appears in a message or repr.
        key: identifies the portal and the credentials: the webhook URL,
            ``client_endpoint + client_id`` of an OAuth application, an ``Auth``, or any string.
            Every worker of one portal must pass the same key; it is hashed before use.
        rate_limit: the portal's request bucket (``None``: requests are not paced).
        operating_budget: the per-method execution budget (``None``: commands are not paced).
        redis: a ``redis.asyncio.Redis`` of yours instead of ``redis_url`` (never closed here).
        namespace: the first part of every Redis key.
        reconnect_timeout: how long calls wait for a Redis lost mid-run before they fail with
            :class:`LimiterUnavailableError`, seconds.
        connect_timeout: the socket connect and read timeout of a client built from
            ``redis_url``, seconds.
        max_ahead: the furthest in the future a request slot is handed out (default: the time
            the portal drains a full bucket in); see :class:`RedisBackend`.
        margin: request tokens kept in reserve.
        utilisation: the share of the operating budget to fill (default: as in memory).
        reservation_ttl: seconds after which execution time reserved by a crashed process is
            given back.
        sleep, clock: injected in tests.

    Raises:
        ValueError: neither or both of ``redis_url`` and ``redis`` were given, or a bound is
            out of range.
    """

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        key: str | Auth,
        rate_limit: RateLimit | None = _STANDARD,
        operating_budget: OperatingBudget | None = _BUDGET,
        redis: Redis | None = None,
        namespace: str = "bitrix_docgen",
        reconnect_timeout: float = 30.0,
        connect_timeout: float = 5.0,
        max_ahead: float | None = None,
        margin: float = 1.0,
        utilisation: float | None = None,
        reservation_ttl: float = 300.0,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
    ) -> None:
        if (redis_url is None) == (redis is None):
            raise ValueError("pass exactly one of redis_url and redis")
        if redis is None:
            assert redis_url is not None
            # No retries inside redis-py: the backend waits for a lost server itself, within
            # reconnect_timeout, and knows which operations may be repeated.
            redis = Redis.from_url(
                redis_url,
                socket_timeout=connect_timeout,
                socket_connect_timeout=connect_timeout,
                retry=Retry(NoBackoff(), 0),
            )
            self._owned: Redis | None = redis
            where = safe_url(redis_url)
        else:
            self._owned = None
            options = redis.connection_pool.connection_kwargs
            where = f"{options.get('host', 'redis')}:{options.get('port', '')}"
        backend = RedisBackend(
            redis,
            key=key,
            rate_limit=rate_limit,
            budget=operating_budget,
            where=where,
            namespace=namespace,
            margin=margin,
            max_ahead=max_ahead,
            utilisation=utilisation,
            reservation_ttl=reservation_ttl,
            reconnect_timeout=reconnect_timeout,
            sleep=sleep,
            clock=clock,
        )
        super().__init__(backend, operating_budget, sleep=sleep, clock=clock)
        #: The backend, with its Redis-specific attributes.
        self.shared = backend

    def __repr__(self) -> str:
        return f"RedisLimiter({self.shared.where}, bucket={self.shared.bucket_prefix!r})"

    async def check(self) -> None:
        """Make sure Redis answers and knows the scripts.

        Raises:
            LimiterUnavailableError: it does not.
        """
        await self.shared.check()

    async def aclose(self) -> None:
        """Close the Redis client built from ``redis_url`` (a client passed in is left open)."""
        owned, self._owned = self._owned, None
        if owned is not None:
            await owned.aclose()

    async def __aenter__(self) -> RedisLimiter:
        try:
            await self.check()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
