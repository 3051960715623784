"""Constants shared by tests (importable as ``tests.helpers``)."""

from __future__ import annotations

from bitrix_docgen_async import RetryPolicy

#: Retries in tests wait milliseconds, not seconds.
FAST_RETRY = RetryPolicy(base_delay=0.005, max_delay=0.05, max_attempts=10)
