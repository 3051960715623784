"""The one retry decision (core/retry.py), synchronously: every failure kind, bounds and waits."""

from __future__ import annotations

import pytest

from bitrix_docgen_async.core.envelope import parse_response
from bitrix_docgen_async.core.retry import (
    Action,
    Outcome,
    RetryPolicy,
    classify,
    decide,
    retry_delay,
)
from bitrix_docgen_async.errors import (
    BitrixError,
    BitrixTimeoutError,
    ConnectError,
    NotFoundError,
    OAuthError,
    OperationTimeLimitError,
    OverloadError,
    QueryLimitExceededError,
    ServerError,
    TokenExpiredError,
    TransportError,
)

POLICY = RetryPolicy(max_attempts=3, max_refusals=4, base_delay=0.5, max_delay=4.0)


def _parsed(status: int, body: bytes) -> BitrixError:
    with pytest.raises(BitrixError) as caught:
        parse_response(status, body, method="crm.documentgenerator.document.get")
    return caught.value


HTML_502 = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
CASES = [
    # (name, error, outcome)
    ("503 query limit", QueryLimitExceededError("QUERY_LIMIT_EXCEEDED", status=503), "refused"),
    ("429 budget", OperationTimeLimitError("OPERATION_TIME_LIMIT", status=429), "refused"),
    ("401 expired token", TokenExpiredError("expired_token", status=401), "refused"),
    ("connection refused", ConnectError("connection refused"), "not_sent"),
    ("dropped before or after the commit", TransportError("ServerDisconnected"), "ambiguous"),
    ("timeout", BitrixTimeoutError("no complete response"), "ambiguous"),
    ("5xx envelope", ServerError("INTERNAL_SERVER_ERROR", status=500), "ambiguous"),
    ("HTML page", _parsed(502, HTML_502), "ambiguous"),
    ("invalid JSON", _parsed(200, b'{"result": NaN-oops'), "ambiguous"),
    ("503 overload", OverloadError("OVERLOAD_LIMIT", status=503), "final"),
    ("not found", NotFoundError("100", "not found", status=400), "final"),
    ("refresh refused", OAuthError("invalid_grant", status=400), "final"),
]


@pytest.mark.parametrize(("name", "error", "outcome"), CASES, ids=[c[0] for c in CASES])
def test_each_failure_kind_is_classified(name: str, error: BitrixError, outcome: str) -> None:
    assert classify(error) is Outcome[outcome.upper()]


def _decide(
    error: BitrixError,
    *,
    idempotent: bool,
    attempt: int = 0,
    refusals: int = 0,
    elapsed: float = 0.0,
) -> tuple[Action, float]:
    decision = decide(
        error,
        idempotent=idempotent,
        attempt=attempt,
        refusals=refusals,
        elapsed=elapsed,
        policy=POLICY,
        jitter=lambda ceiling: ceiling,
    )
    assert decision.reason
    return decision.action, decision.delay


@pytest.mark.parametrize("idempotent", [True, False])
def test_refusals_are_requeued_for_reads_and_writes_until_the_bound(idempotent: bool) -> None:
    error = QueryLimitExceededError("QUERY_LIMIT_EXCEEDED", status=503)
    assert _decide(error, idempotent=idempotent, refusals=3) == (Action.REQUEUE, 0.0)
    assert _decide(error, idempotent=idempotent, refusals=4)[0] is Action.FAIL


def test_ambiguous_failures_retry_reads_after_a_growing_wait_and_never_writes() -> None:
    dropped = TransportError("ServerDisconnected")
    assert _decide(dropped, idempotent=True, attempt=0) == (Action.RETRY, 0.5)
    assert _decide(dropped, idempotent=True, attempt=1) == (Action.RETRY, 1.0)
    assert _decide(dropped, idempotent=True, attempt=2) == (Action.RETRY, 2.0)
    assert _decide(dropped, idempotent=True, attempt=3)[0] is Action.FAIL
    assert _decide(dropped, idempotent=False)[0] is Action.FAIL_UNKNOWN
    html = _parsed(502, HTML_502)
    assert _decide(html, idempotent=False)[0] is Action.FAIL_UNKNOWN


def test_a_refused_connection_retries_even_a_write() -> None:
    assert _decide(ConnectError("refused"), idempotent=False) == (Action.RETRY, 0.5)


def test_final_errors_fail_at_once() -> None:
    assert _decide(OverloadError("OVERLOAD_LIMIT", status=503), idempotent=True)[0] is Action.FAIL
    assert _decide(NotFoundError("100", status=400), idempotent=True)[0] is Action.FAIL


def test_no_retry_past_max_elapsed() -> None:
    dropped = TransportError("ServerDisconnected")
    assert _decide(dropped, idempotent=True, elapsed=119.0)[0] is Action.RETRY
    assert _decide(dropped, idempotent=True, elapsed=119.9)[0] is Action.FAIL


def test_the_wait_is_backoffs_expo_capped_and_full_jitter_by_default() -> None:
    ceilings = [retry_delay(POLICY, n, jitter=lambda c: c) for n in range(1, 7)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    seen = [retry_delay(POLICY, 3) for _ in range(200)]
    assert all(0.0 <= s <= 2.0 for s in seen) and len(set(seen)) > 100
    assert POLICY.delay(2, jitter=lambda c: c / 2) == 0.5


def test_reconnects_to_a_lost_shared_state_wait_by_the_one_schedule() -> None:
    # The Redis limiter's reconnect waits come from here too (no module outside core computes
    # a delay of its own): 0.05 s doubling to 1 s, not jittered.
    from bitrix_docgen_async.core.retry import reconnect_delay

    assert [reconnect_delay(a) for a in range(1, 8)] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
