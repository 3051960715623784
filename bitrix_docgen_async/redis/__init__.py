"""The limiter shared through Redis (needs the ``redis`` extra).

```python
from bitrix_docgen_async.redis import RedisLimiter
```

* :mod:`.limiter`: :class:`RedisLimiter`, the :class:`~bitrix_docgen_async.limiter.Limiter`
  whose request bucket and operating budgets live in Redis;
* :mod:`.backend`: the :class:`~bitrix_docgen_async.limiter.LimiterBackend` that runs the
  scripts and waits out a lost connection within a bound;
* :mod:`.lua`: the two Lua scripts that update the bucket and a method's budget atomically, on
  the Redis server's own clock;
* :mod:`.keys`: the Redis keys of one portal, from hashes of its URL and credentials.

:class:`~bitrix_docgen_async.errors.LimiterUnavailableError` lives in ``errors`` (importable
without the extra). ``bitrix_docgen_async.redis_limiter`` still works (a compatibility import).
"""

from bitrix_docgen_async.errors import LimiterUnavailableError
from bitrix_docgen_async.redis.backend import RedisBackend
from bitrix_docgen_async.redis.keys import key_prefixes
from bitrix_docgen_async.redis.limiter import RedisLimiter

__all__ = ["LimiterUnavailableError", "RedisBackend", "RedisLimiter", "key_prefixes"]
