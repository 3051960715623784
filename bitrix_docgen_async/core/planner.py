"""Batch composition: which queued commands go in the next request. Pure, tested synchronously.

Queued commands wait in one queue per billing key (the portal books operating time per method,
docs/portal.md#operating-time-per-method), so a spent budget holds back only its own key's queue,
however long: the
planner looks at the head of each key's queue, oldest first, never at a bounded prefix of one
FIFO. A batch holds at most 50 commands (docs/portal.md#batch) and an expected execution time under
a
target (the portal cuts a request off at 60 s, and a ``document.add`` can render for 10-60 s);
the first command goes even if it alone is over the target, or it could never be sent. A
command that may not run inside ``batch`` (file transfers) goes alone.

Where a command is billed decides where it may go (docs/portal.md#how-batch-is-billed): once
the portal's figures have shown that a whole ``batch`` is billed to ``batch`` and a direct call
to its own method, :func:`route` sends a command direct when ``batch``'s budget has no room
for it and its own method's budget has, so that both budgets are spent; while ``batch`` has
room everything stays batched (a direct call would only cost a request).

The planner does not reserve budget: the session offers each take to the limiter, which grants
as many leading commands as fit, then plans again without the keys it has tried, until the
planner has nothing more to add.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence

import attrs

__all__ = ["HEAVY_WRITES", "MAX_BATCH", "Head", "Route", "Take", "plan", "route"]

#: The portal runs at most 50 commands per batch (docs/portal.md#batch).
MAX_BATCH = 50

#: Writes whose execution dominates a bulk run: worth a request of their own to spend their
#: own method's budget next to ``batch``'s.
HEAVY_WRITES = frozenset(
    {
        "crm.documentgenerator.document.add",
        "crm.documentgenerator.document.update",
        "crm.documentgenerator.document.upload",
    }
)


class Route(enum.Enum):
    """Where the front command of a key goes now."""

    BATCH = "batch"
    DIRECT = "direct"


def route(
    *,
    separate_budgets: bool,
    batch_room: bool,
    own_room: bool,
    tokens_free: bool,
) -> Route:
    """Whether a batchable command goes batched or direct (whatever its method).

    A direct call is billed to its own method and a ``batch`` to ``batch`` when the portal
    bills that way (docs/portal.md#how-batch-is-billed). A command goes direct only when
    ``batch``'s budget has no room for it, its own budget has room and a request token is
    free without waiting: a direct call then spends a budget that would otherwise stay idle
    (its own method's, or none for a read under the portal's 0.1 s floor), while one sent as
    long as ``batch`` has room would only cost a request that a batch of 50 could have used.
    Nothing is routed until the portal's figures have shown separate budgets.

    Args:
        separate_budgets: the portal showed it bills ``batch`` apart from direct calls.
        batch_room: ``batch``'s budget has room for the command.
        own_room: the method's own budget has room for the command, with a margin (a method
            whose own budget is spent is refused inside batches too).
        tokens_free: the request for this command got its token without waiting.
    """
    if not separate_budgets or not own_room or not tokens_free or batch_room:
        return Route.BATCH
    return Route.DIRECT


@attrs.frozen
class Head:
    """The front of one billing key's queue.

    Attributes:
        key: the billing key (the method, as the portal books it).
        since: when the oldest queued command of this key arrived (any monotonic order).
        costs: the expected execution time of each of its first commands, in queue order.
        batchable: whether this key's commands may run inside ``batch``.
        direct: whether to send its first command alone, as a direct call.
    """

    key: str
    since: float
    costs: tuple[float, ...]
    batchable: bool = True
    #: Routed to go alone now, as a direct call billed to its own method (see :func:`route`).
    direct: bool = False


@attrs.frozen
class Take:
    """Take the first ``len(costs)`` commands of ``key``'s queue."""

    key: str
    costs: tuple[float, ...]

    @property
    def count(self) -> int:
        """How many commands."""
        return len(self.costs)


def plan(
    heads: Sequence[Head],
    *,
    skip: Collection[str] = (),
    taken: int = 0,
    expected: float = 0.0,
    time_target: float = 20.0,
    limit: int = MAX_BATCH,
) -> list[Take]:
    """What to add to a batch that already holds ``taken`` commands expected to run ``expected``.

    Args:
        heads: each billing key's queue front.
        skip: keys not to take now (tried already, spent, or unmeasured and in flight).
        taken: commands already in the batch.
        expected: their expected execution time, seconds.
        time_target: the expected execution time a batch may carry.
        limit: the most commands per request.

    Returns:
        The takes, oldest key first; empty when nothing more fits.
    """
    takes: list[Take] = []
    for head in sorted(heads, key=lambda h: h.since):
        if head.key in skip or not head.costs or taken >= limit:
            continue
        if not head.batchable or head.direct:
            if taken == 0:
                return [Take(head.key, head.costs[:1])]  # alone, as a direct call
            continue
        chosen: list[float] = []
        for cost in head.costs:
            if taken >= limit or (taken > 0 and expected + cost > time_target):
                break
            chosen.append(cost)
            taken += 1
            expected += cost
        if chosen:
            takes.append(Take(head.key, tuple(chosen)))
    return takes
