"""Compatibility: the shared limiter moved to :mod:`bitrix_docgen_async.redis`.

``from bitrix_docgen_async.redis_limiter import RedisLimiter`` keeps working.
"""

from bitrix_docgen_async.redis import (
    LimiterUnavailableError,
    RedisBackend,
    RedisLimiter,
    key_prefixes,
)

__all__ = ["LimiterUnavailableError", "RedisBackend", "RedisLimiter", "key_prefixes"]
