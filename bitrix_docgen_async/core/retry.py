"""The one retry decision: after a failure, send again now, send again after a wait, or fail.

Every failure is sorted by what it says about execution (DESIGN.md §4, "Retries"):

* **refused** before execution: 503 ``QUERY_LIMIT_EXCEEDED``, 429 ``OPERATION_TIME_LIMIT``, 401
  ``expired_token`` (the errors whose ``retryable`` flag is set). Always safe: the command is
  requeued at once (the limiter paces it), up to ``max_refusals`` times so that a portal that
  refuses forever still ends the call.
* **not sent**: the connection could not be made (:class:`ConnectError`). Nothing reached the
  portal, so any command, even a write, is sent again after a jittered wait.
* **ambiguous**: the request may have executed (connection dropped before or after the portal
  committed, timeout, 5xx, an HTML error page, invalid JSON, a reply missing the command). Reads
  are sent again after a jittered wait; a write fails with :class:`OutcomeUnknownError` instead,
  because a second ``document.add`` creates a second document.
* **final**: everything else (the portal's own answer, ``OVERLOAD_LIMIT``): raised as is.

Waits come from ``backoff``'s wait generators (``expo`` with ``full_jitter``), used here only.
This module is pure; ``backoff`` is imported where the schedule is built, not at import time,
because its package ``__init__`` loads its asyncio decorator and ``core/`` loads no asyncio.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Callable
from typing import Final

import attrs

from bitrix_docgen_async.errors import (
    BitrixError,
    ConnectError,
    ResponseError,
    ServerError,
    TransportError,
)

__all__ = ["Action", "Decision", "Outcome", "RetryPolicy", "classify", "decide", "retry_delay"]

#: Jitter: takes the exponential ceiling, returns the wait (``backoff.full_jitter`` by default).
Jitter = Callable[[float], float]


@attrs.frozen
class RetryPolicy:
    """How often and how patiently failed calls are sent again.

    Attributes:
        max_attempts: retries per command after a failure that a retry may cure (connection
            refused; transport errors and 5xx on reads).
        max_refusals: resends per command after refusals made before execution (503
            ``QUERY_LIMIT_EXCEEDED``, 429 ``OPERATION_TIME_LIMIT``, ``expired_token``); these
            are always safe, so the bound only stops a portal that refuses forever.
        base_delay: the first wait, in seconds.
        max_delay: the longest wait, in seconds.
        max_elapsed: no retry after a wait starts this many seconds after the first attempt.
    """

    max_attempts: int = 5
    max_refusals: int = 30
    base_delay: float = 0.5
    max_delay: float = 10.0
    max_elapsed: float = 120.0

    def delay(self, attempt: int, jitter: Jitter | None = None) -> float:
        """The jittered wait before retry number ``attempt`` (1 for the first retry)."""
        return retry_delay(self, attempt, jitter)


def retry_delay(policy: RetryPolicy, attempt: int, jitter: Jitter | None = None) -> float:
    """The wait before retry ``attempt``: backoff's ``expo`` ceiling, jittered.

    Args:
        policy: base and maximum waits.
        attempt: 1 for the first retry.
        jitter: maps the ceiling to the wait; ``backoff.full_jitter`` (uniform in [0, ceiling])
            by default. Tests pass a deterministic one.
    """
    import backoff  # see the module docstring: keeps asyncio out of core's import graph

    waits = backoff.expo(base=2, factor=policy.base_delay, max_value=policy.max_delay)
    next(waits)  # backoff's generators yield None first (they are primed by a send())
    ceiling = float(next(itertools.islice(waits, max(0, attempt - 1), None)))
    chosen = jitter if jitter is not None else backoff.full_jitter
    return float(chosen(ceiling))


#: Waits between attempts to reach a lost shared state (the Redis limiter): 0.05 s doubling to
#: 1 s, not jittered (one process's own reconnects; the portal is not involved).
RECONNECT: Final = RetryPolicy(base_delay=0.05, max_delay=1.0)


def reconnect_delay(attempt: int) -> float:
    """The wait before reconnect ``attempt`` (1 for the first): :data:`RECONNECT`'s schedule."""
    return retry_delay(RECONNECT, attempt, jitter=float)


class Outcome(enum.Enum):
    """What a failure says about whether the command executed."""

    REFUSED = "refused before execution"
    NOT_SENT = "not sent"
    AMBIGUOUS = "may have executed"
    FINAL = "final"


def classify(error: BaseException) -> Outcome:
    """Sort a failure (see the module docstring)."""
    if isinstance(error, ConnectError):
        return Outcome.NOT_SENT
    if isinstance(error, BitrixError) and error.retryable:
        return Outcome.REFUSED
    if isinstance(error, TransportError | ResponseError | ServerError):
        return Outcome.AMBIGUOUS
    return Outcome.FINAL


class Action(enum.Enum):
    """What to do with the failed command."""

    REQUEUE = "requeue"  # send again as soon as the limiter allows
    RETRY = "retry"  # send again after ``Decision.delay`` seconds
    FAIL = "fail"  # raise the error
    FAIL_UNKNOWN = "fail, outcome unknown"  # raise OutcomeUnknownError (a write may have run)


@attrs.frozen
class Decision:
    """The decision for one command, with the reason logged by the caller."""

    action: Action
    delay: float = 0.0
    reason: str = ""


def decide(
    error: BaseException,
    *,
    idempotent: bool,
    attempt: int,
    refusals: int,
    elapsed: float,
    policy: RetryPolicy,
    jitter: Jitter | None = None,
) -> Decision:
    """Decide what to do after ``error``.

    Args:
        error: the failure.
        idempotent: the command may execute twice with the effect of once (reads).
        attempt: retries already made after failures that were not refusals.
        refusals: resends already made after refusals.
        elapsed: seconds since the command was first sent.
        policy: the bounds and waits.
        jitter: passed to :func:`retry_delay`.
    """
    outcome = classify(error)
    if outcome is Outcome.FINAL:
        return Decision(Action.FAIL, reason=f"{type(error).__name__} is final")
    if outcome is Outcome.REFUSED:
        if refusals >= policy.max_refusals:
            return Decision(Action.FAIL, reason=f"refused {refusals + 1} times")
        return Decision(Action.REQUEUE, reason=f"{type(error).__name__}: {outcome.value}")
    if outcome is Outcome.AMBIGUOUS and not idempotent:
        return Decision(Action.FAIL_UNKNOWN, reason="a write may have executed")
    if isinstance(error, ResponseError) and error.detail == ("too large",):
        # The same reply would be as large again: sending the read again cannot help.
        return Decision(Action.FAIL, reason="the reply is over the size cap")
    if attempt >= policy.max_attempts:
        return Decision(Action.FAIL, reason=f"{attempt + 1} attempts failed")
    delay = retry_delay(policy, attempt + 1, jitter)
    if elapsed + delay > policy.max_elapsed:
        return Decision(Action.FAIL, reason=f"no retry after {elapsed:.1f} s")
    return Decision(
        Action.RETRY,
        delay,
        reason=f"{type(error).__name__}: {outcome.value}, attempt {attempt + 1}",
    )
