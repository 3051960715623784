"""Fixtures of the shared-limiter tests: a real ``redis-server`` on a free port.

The tests here skip, with the reason, when redis-py or ``redis-server`` is missing
(``pip install -e '.[dev]'``; ``apt-get install redis-server``), except under CI (``CI=true``),
where that fails the run (``tests/redis/needs.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.redis.needs import missing
from tests.redis.redis_server import RedisServer, redis_server_path


@pytest.fixture
async def redis_server() -> AsyncIterator[RedisServer]:
    """A ``redis-server --save '' --appendonly no`` of this test's own, stopped after it."""
    if redis_server_path() is None:
        missing("redis-server is not installed (apt-get install redis-server)")
    async with RedisServer(start_timeout=10.0) as server:
        yield server
