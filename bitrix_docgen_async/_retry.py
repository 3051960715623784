"""Retry waits. The only module that knows about ``backoff``.

Waits grow exponentially with full jitter (backoff's ``expo`` and ``full_jitter``), so that many
callers retrying after the same fault do not hit the portal again in lock step.
"""

from __future__ import annotations

import itertools

import attrs
import backoff

__all__ = ["RetryPolicy"]


@attrs.frozen
class RetryPolicy:
    """How often and how patiently the session retries.

    Attributes:
        max_attempts: attempts per command for failures after which a retry is safe but not
            certain to help (transport errors and 5xx on reads).
        max_refusals: attempts per command for refusals made before execution (503
            ``QUERY_LIMIT_EXCEEDED``, 429 ``OPERATION_TIME_LIMIT``, ``expired_token``); these
            are always safe, so the bound only stops a portal that refuses forever.
        base_delay: the first wait, in seconds.
        max_delay: the longest wait, in seconds.
    """

    max_attempts: int = 5
    max_refusals: int = 30
    base_delay: float = 0.5
    max_delay: float = 10.0

    def delay(self, attempt: int) -> float:
        """The jittered wait before retry number ``attempt`` (1 for the first retry)."""
        waits = backoff.expo(base=2, factor=self.base_delay, max_value=self.max_delay)
        next(waits)  # backoff's generators yield None first (they are primed by a send())
        ceiling = next(itertools.islice(waits, max(0, attempt - 1), None))
        return backoff.full_jitter(ceiling)
