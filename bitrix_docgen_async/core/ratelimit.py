"""Limit arithmetic: the request bucket and the per-method operating budget. Pure, clock injected.

Two Bitrix24 limits (docs/portal.md#limits):

* the request-rate limit, a leaky bucket per portal and source IP: each HTTP request adds 1 to a
  counter that drains by ``per_second``; a request that would lift it above ``burst`` is refused
  with 503 ``QUERY_LIMIT_EXCEEDED``. A ``batch`` counts once.
* the operating budget, per method and per app/webhook: execution time summed over 10 one-minute
  buckets; once the sum reaches the limit (480 s per 600 s in the cloud) the next call of that
  method is refused with 429 ``OPERATION_TIME_LIMIT``.

The client mirrors both so that the portal never has to refuse it (:class:`TokenBucket`,
:class:`OperatingLedger`); the fake portal enforces them with the same arithmetic
(:class:`LeakyBucket`, :class:`BucketedBudget`). Every function takes ``now`` in seconds on one
monotonic clock chosen by the caller.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from typing import Any

import attrs

__all__ = [
    "BucketedBudget",
    "CostEstimate",
    "LeakyBucket",
    "OperatingBudget",
    "OperatingLedger",
    "RateLimit",
    "TokenBucket",
]


def _positive(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


@attrs.frozen
class RateLimit:
    """The portal's request bucket: ``burst`` requests at once, refilled at ``per_second``.

    Attributes:
        burst: bucket size X (50 on ordinary plans, 250 on Enterprise).
        per_second: drain rate Y (2 on ordinary plans, 5 on Enterprise).
    """

    burst: int = attrs.field(validator=_positive)
    per_second: float = attrs.field(validator=_positive)

    @classmethod
    def standard(cls) -> RateLimit:
        """The limit of every cloud plan but Enterprise: burst 50, 2 requests per second."""
        return cls(burst=50, per_second=2.0)

    @classmethod
    def enterprise(cls) -> RateLimit:
        """The Enterprise plan's limit: burst 250, 5 requests per second."""
        return cls(burst=250, per_second=5.0)


@attrs.frozen
class OperatingBudget:
    """Execution time one method may spend per window (docs/portal.md#operating-time-per-method).

    Attributes:
        limit_s: seconds of execution allowed per window (480 in the cloud's worked example).
        window_s: the window (600 s: ten one-minute buckets).
        buckets: how many buckets the window is cut into (10 on the portal).
    """

    limit_s: float = attrs.field(default=480.0, validator=_positive)
    window_s: float = attrs.field(default=600.0, validator=_positive)
    buckets: int = attrs.field(default=10, validator=_positive)


#: The portal cuts every request off after 60 s (docs/portal.md#request-time-out): no call,
#: nor a whole batch, runs longer, whatever a reply's ``time`` block says.
MAX_CALL_S = 60.0


def plausible_duration(seconds: float | None) -> float | None:
    """A reply's ``duration`` bounded to what a call can take, ``[0, MAX_CALL_S]``.

    Replies are untrusted: a huge figure would push a batch's bookings past the window (so
    nothing would be booked) and a negative one would make reservations shrink.
    """
    if seconds is None:
        return None
    return min(max(0.0, seconds), MAX_CALL_S)


def plausible_reset_in(seconds: float, window_s: float) -> float:
    """Seconds until a budget's oldest bucket drops out, bounded to ``[0, window_s]``.

    No bucket lives longer than the window, whatever ``operating_reset_at`` says (or however
    far our wall clock is from the portal's).
    """
    return min(max(0.0, seconds), window_s)


#: Seconds of delay between taking a token and the request reaching the portal that the
#: margin absorbs (requests delayed unevenly can arrive bunched).
JITTER_S = 0.05


def default_margin(limit: RateLimit) -> float:
    """Tokens to keep in reserve: at least one, or the rate's worth of ``JITTER_S``."""
    return min(max(1.0, limit.per_second * JITTER_S), limit.burst / 2)


@attrs.define
class TokenBucket:
    """The client's mirror of the portal's leaky bucket; fair by construction.

    ``reserve`` debits one token at once and returns how long the caller must wait for it, so
    tokens may go negative: each caller gets its own future slot, in the order it asked, and no
    slot is ever handed out twice. ``margin`` tokens are kept in reserve to absorb the jitter
    between our clock and the moment the portal sees the request.
    """

    limit: RateLimit
    now: float
    margin: float = 1.0
    tokens: float = attrs.field(init=False)
    updated: float = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.tokens = self.capacity
        self.updated = self.now

    @property
    def capacity(self) -> float:
        """How many tokens a full bucket holds: the burst less the safety margin (at least 1)."""
        return max(1.0, self.limit.burst - self.margin)

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(
                self.capacity, self.tokens + (now - self.updated) * self.limit.per_second
            )
            self.updated = now

    def reserve(self, now: float) -> float:
        """Take one token; return the seconds to wait before the request may be sent."""
        self._refill(now)
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.limit.per_second

    def refund(self, now: float) -> None:
        """Give back a token whose request was never sent (its waiter was cancelled)."""
        self._refill(now)
        self.tokens = min(self.capacity, self.tokens + 1.0)

    def drain(self, now: float) -> None:
        """The portal said 503 ``QUERY_LIMIT_EXCEEDED``: its bucket is full, so ours is empty."""
        self._refill(now)
        self.tokens = min(self.tokens, 0.0)


@attrs.define
class LeakyBucket:
    """The portal's side of the request limit: a counter that drains at ``per_second``."""

    limit: RateLimit
    level: float = 0.0
    updated: float = 0.0

    def try_add(self, now: float) -> bool:
        """Count one request at ``now``; False (and nothing counted) if it would overflow."""
        if now > self.updated:
            self.level = max(0.0, self.level - (now - self.updated) * self.limit.per_second)
            self.updated = now
        if self.level + 1.0 > self.limit.burst:
            return False
        self.level += 1.0
        return True


@attrs.define
class BucketedBudget:
    """The portal's operating budget for one method: time summed in ``budget.buckets`` buckets.

    A bucket opens at the first call after the previous one closed, covers
    ``window_s / buckets`` seconds, and drops out ``window_s`` after it opened
    (docs/portal.md#operating-time-per-method: "a bucket's 10-minute countdown starts at the first
    call in that minute").
    """

    budget: OperatingBudget
    opened: deque[tuple[float, float]] = attrs.field(factory=deque)  # (opened_at, seconds)

    def _expire(self, now: float) -> None:
        while self.opened and self.opened[0][0] + self.budget.window_s <= now:
            self.opened.popleft()

    def operating(self, now: float) -> float:
        """The running sum reported as ``time.operating``."""
        self._expire(now)
        return sum(seconds for _, seconds in self.opened)

    def reset_at(self, now: float) -> float | None:
        """When the oldest bucket drops out (``time.operating_reset_at``), if any is open."""
        self._expire(now)
        return self.opened[0][0] + self.budget.window_s if self.opened else None

    def allows(self, now: float) -> bool:
        """Checked before each call: refused once the sum has reached the limit."""
        return self.operating(now) < self.budget.limit_s

    def add(self, now: float, seconds: float) -> None:
        """Book ``seconds`` of execution that started at ``now``."""
        self._expire(now)
        span = self.budget.window_s / self.budget.buckets
        if self.opened and now < self.opened[-1][0] + span:
            opened_at, total = self.opened[-1]
            self.opened[-1] = (opened_at, total + seconds)
        else:
            self.opened.append((now, seconds))


#: Each of the portal's budget buckets is cut into this many slots of the client's ledger: a
#: booking is held until the end of its slot, so it may outlive its exact expiry by a tenth of a
#: bucket (6 s of the cloud's 60 s buckets), which errs on the safe side.
SLOTS_PER_BUCKET = 10


@attrs.define
class OperatingLedger:
    """The client's view of one method's operating budget.

    It books every command's execution time (from ``result_time``) for a full window after it
    was seen, which is never earlier than the portal's own bucket expiry, so it errs on the safe
    side. Commands in flight hold a reservation of their estimated cost. When the portal reports
    more ``operating`` than we booked (another process shares the webhook) the difference is
    booked too, until the portal's ``operating_reset_at``.

    The cost of every operation does not grow with the bookings held: bookings are summed per
    slot (a tenth of a portal bucket), a running total is kept, and expiry drops whole slots, so
    a run of 100,000 adds costs per add what a run of 1,000 does.

    Figures from the portal are not trusted beyond what its rules allow
    (docs/portal.md#operating-time-per-method): the
    reported ``operating`` is clamped to the limit and any reset to one window ahead, so one
    absurd reply cannot block a method for longer than a window.
    """

    budget: OperatingBudget
    #: Fraction of the limit the client plans to fill. The whole limit by default: commands in
    #: flight hold pessimistic reservations (mean + 2 deviations) and bookings expire no earlier
    #: than the portal's, and the portal refuses only once the sum has *reached* the limit.
    utilisation: float = 1.0
    in_flight: float = 0.0
    suspended_until: float = 0.0
    #: seconds booked per slot index; a slot ``k`` expires at ``k * slot_s``
    _sums: dict[int, float] = attrs.field(factory=dict, init=False, repr=False)
    #: the slot indices of ``_sums``, as a min-heap
    _slots: list[int] = attrs.field(factory=list, init=False, repr=False)
    _total: float = attrs.field(default=0.0, init=False, repr=False)

    @property
    def slot_s(self) -> float:
        """The ledger's resolution: a booking is held until the end of its slot."""
        return self.budget.window_s / (self.budget.buckets * SLOTS_PER_BUCKET)

    def _expire(self, now: float) -> None:
        slots, sums = self._slots, self._sums
        limit = now / self.slot_s
        while slots and slots[0] <= limit:
            self._total -= sums.pop(heapq.heappop(slots))
        if not slots:
            self._total = 0.0  # no rounding drift survives an empty ledger

    def booked(self, now: float) -> float:
        """Seconds booked in the window (without the reservations in flight)."""
        self._expire(now)
        return max(0.0, self._total)

    def used(self, now: float) -> float:
        """Seconds booked in the window plus reservations in flight."""
        return self.booked(now) + self.in_flight

    def headroom(self, now: float) -> float:
        """Seconds of execution that may still be started now (0 while suspended)."""
        if now < self.suspended_until:
            return 0.0
        return max(0.0, self.budget.limit_s * self.utilisation - self.used(now))

    def reserve(self, seconds: float) -> None:
        """Hold ``seconds`` for a command that is about to be sent."""
        self.in_flight += seconds

    def release(self, reserved: float) -> None:
        """Drop a reservation whose command was refused before it executed."""
        self.in_flight = max(0.0, self.in_flight - reserved)

    def settle(self, now: float, reserved: float, actual: float, ended_ago: float = 0.0) -> None:
        """Replace a reservation by the execution time the portal reported.

        The portal books a call in the bucket open when it started, and that bucket drops out
        one window after it opened. The call ended at least ``ended_ago`` seconds ago (the
        commands after it in the same batch ran since) and ran for ``actual`` seconds, so it
        started no later than ``now - ended_ago - actual``; expiring the booking one window
        after that moment is never earlier than the portal's own expiry, and needs no clock
        shared with the portal.
        """
        self.release(reserved)
        self._book(now, now - ended_ago - actual + self.budget.window_s, actual)

    def observe(self, now: float, operating: float, reset_in: float | None) -> None:
        """Take the portal's ``time.operating`` into account (after settling our commands).

        What the portal reports beyond our bookings is someone else's (another process on the
        same credential) and is booked until the reset. The portal adds a call's execution
        time when the call ends (docs/portal.md#operating-time-per-method: five more 20 s calls
        take the sum from 400 to 500), so our calls still in flight are not in the figure:
        they stay counted by their reservations alone, and another spender's use is seen at
        once, however many of ours are running.

        ``operating`` is clamped to the limit (the portal refuses once its sum reaches it, so it
        can never hold more) and ``reset_in`` to one window (no bucket lives longer).
        """
        self._top_up(now, operating, reset_in, self.booked(now))

    def _top_up(self, now: float, operating: float, reset_in: float | None, ours: float) -> None:
        operating = min(max(0.0, operating), self.budget.limit_s)
        if operating > ours + 1e-6:
            window = self.budget.window_s
            horizon = min(reset_in, window) if reset_in is not None and reset_in > 0 else window
            self._book(now, now + horizon, operating - ours)

    def suspend(self, now: float, until: float) -> None:
        """The portal said 429: send nothing of this method before ``until``.

        ``until`` is clamped to one window ahead (the portal's oldest bucket drops out by
        then). The portal's sum has reached the limit, whatever we booked: book the difference
        until then, so that the method does not go straight back over it.
        """
        until = min(until, now + self.budget.window_s)
        self.suspended_until = max(self.suspended_until, until)
        self._top_up(now, self.budget.limit_s, until - now, self.booked(now))

    def next_change(self, now: float) -> float | None:
        """The next moment headroom grows by itself (a booking expires or a suspension ends)."""
        self._expire(now)
        moments = [t for t in (self.suspended_until,) if t > now]
        if self._slots:
            moments.append(self._slots[0] * self.slot_s)
        return min(moments) if moments else None

    def _book(self, now: float, expires_at: float, seconds: float) -> None:
        if seconds <= 0.0 or expires_at <= now:
            return
        self._expire(now)
        # The end of the slot that holds ``expires_at`` (a hair of rounding tolerated, so that
        # an expiry on a slot boundary is not pushed one slot further).
        slot = math.ceil(expires_at / self.slot_s - 1e-9)
        total = self._sums.get(slot)
        if total is None:
            heapq.heappush(self._slots, slot)
            self._sums[slot] = seconds
        else:
            self._sums[slot] = total + seconds
        self._total += seconds


@attrs.define
class CostEstimate:
    """A method's execution time, learned from ``result_time``: a running mean and deviation.

    Batches are sized and budget is reserved with :attr:`pessimistic` (mean plus two
    deviations), so that a batch of commands that each run a little long neither crosses the
    operating budget nor the portal's 60 s cut-off.
    """

    mean: float
    deviation: float = attrs.field()
    weight: float = 0.2

    @deviation.default
    def _unsure(self) -> float:
        # One measurement says little about the spread: start wide, let it narrow.
        return 0.5 * self.mean

    def observe(self, seconds: float) -> None:
        """Fold one measurement in."""
        error = seconds - self.mean
        self.mean += self.weight * error
        self.deviation += self.weight * (abs(error) - self.deviation)

    @property
    def pessimistic(self) -> float:
        """The cost to plan with."""
        return self.mean + 2.0 * self.deviation
