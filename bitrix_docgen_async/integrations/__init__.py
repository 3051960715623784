"""Adapters to job queues (``bitrix_docgen_async.integrations.taskiq``).

Each is a thin layer over what stays queue-neutral: ``generate_many``, the shared
:class:`~bitrix_docgen_async.redis_journal.RedisJournal` and the shared
:class:`~bitrix_docgen_async.redis_limiter.RedisLimiter`.
"""
