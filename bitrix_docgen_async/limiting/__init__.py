"""Shared limiter state: the Redis backend of :mod:`bitrix_docgen_async.redis_limiter`.

* :mod:`.lua` holds the two Lua scripts that update the request bucket and a method's operating
  budget atomically, on the Redis server's own clock;
* :mod:`.redis_backend` is the :class:`~bitrix_docgen_async.limiter.LimiterBackend` that runs
  them and waits out a lost connection within a bound;
* :mod:`.keys` derives the Redis keys of one portal from hashes of its URL and credentials;
* :mod:`.redis_server` starts a throwaway ``redis-server`` for tests and benchmarks.

Everything here needs the ``redis`` extra: ``pip install 'bitrix_docgen_async[redis]'``.
"""
