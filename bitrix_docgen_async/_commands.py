"""What the session moves around: commands, their results, the per-key queues and the counters."""

from __future__ import annotations

import asyncio
import enum
import heapq
import itertools
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from bitrix_docgen_async.core.encoding import build_command, plain_key
from bitrix_docgen_async.core.envelope import TimeInfo
from bitrix_docgen_async.core.methods import normalize_method
from bitrix_docgen_async.core.params import PHP_INT_MAX, PHP_INT_MIN, normalize_params
from bitrix_docgen_async.core.planner import Head
from bitrix_docgen_async.core.ratelimit import CostEstimate

__all__ = [
    "UNSET",
    "ClientStats",
    "Command",
    "CommandQueue",
    "CommandResult",
    "Costs",
    "Group",
    "Unset",
    "check_number",
    "check_options",
    "check_routing",
    "prepare_call",
    "prepare_method",
    "prepare_params",
]


class Unset(enum.Enum):
    """The type of :data:`UNSET`."""

    UNSET = "unset"


#: "Use the default": the session's (or the client view's) own ``queue_timeout``.
UNSET = Unset.UNSET


def check_number(value: object, name: str, *, positive: bool = False) -> None:
    """Refuse anything but a number >= 0 (> 0 when ``positive``), naming the option."""
    bad = isinstance(value, bool) or not isinstance(value, int | float)
    if bad or value < 0 or (positive and value == 0):  # type: ignore[operator]
        raise ValueError(f"{name} must be a number {'>' if positive else '>='} 0, got {value!r}")


def check_routing(value: object) -> None:
    """Refuse a ``budget_routing`` other than ``"auto"`` or ``"off"``."""
    if value not in ("auto", "off"):
        raise ValueError(f"budget_routing must be 'auto' or 'off', got {value!r}")


def prepare_call(method: str, params: Mapping[str, Any] | None) -> tuple[str, dict[str, Any], str]:
    """Validate a call before anything is queued: (method, params, batch command string)."""
    name = prepare_method(method)
    plain, encoded = prepare_params(name, params)
    return name, plain, encoded


def prepare_method(method: str) -> str:
    """The method's canonical name, refused when it cannot be called (``batch``, empty)."""
    name = normalize_method(method)  # never empty, never with "?" (or it raised)
    if name == "batch":
        raise ValueError("send batches with client.batch(), not call('batch')")
    return name


def prepare_params(name: str, params: Mapping[str, Any] | None) -> tuple[dict[str, Any], str]:
    """Validate one call's parameters: (params, batch command string) for method ``name``."""
    if params.__class__ is dict and len(params) == 1:
        # The commonest call, {"id": 61}: what the general path below gives, in one step.
        ((key, value),) = params.items()
        if (
            key.__class__ is str
            and value.__class__ is int
            and PHP_INT_MIN <= value <= PHP_INT_MAX
            and plain_key(key)
        ):
            return {key: value}, f"{name}?{key}={value}"
    # Normalised once, before anything is queued: what cannot be encoded is refused here
    # (naming the argument), and a lone and a batched call then send the same thing.
    plain = normalize_params(params)
    return plain, build_command(name, plain)


def check_options(
    linger: float, batch_time_target: float, queue_timeout: float | None = None
) -> None:
    """Reject session options that cannot work (called before anything is opened)."""
    check_number(linger, "linger")
    check_number(batch_time_target, "batch_time_target", positive=True)
    if queue_timeout is not None:
        check_number(queue_timeout, "queue_timeout")


@attrs.frozen
class CommandResult:
    """One command's success: its ``result`` and, for lists, ``total`` and ``next``.

    ``time`` is its ``time`` block: given read (a :class:`TimeInfo`) or as sent (a JSON
    object, read when first asked for; most callers never look at it).
    """

    result: Any
    total: int | None = None
    next: int | None = None
    raw_time: TimeInfo | Mapping[str, Any] | None = attrs.field(default=None, alias="time")

    @property
    def time(self) -> TimeInfo | None:
        """The command's ``time`` block (docs/portal.md#responses-and-the-time-object)."""
        raw = self.raw_time
        return raw if raw is None or isinstance(raw, TimeInfo) else TimeInfo.from_wire(raw)


@attrs.define
class ClientStats:
    """Counters of what the client did (read them, do not set them).

    Attributes:
        http_requests: HTTP requests to the portal that got an HTTP answer (REST calls,
            ``batch`` requests and file downloads; a retry counts again).
        batches: those of them that were ``batch`` requests (automatic or explicit); a call
            sent alone is not a batch, so ``batches <= http_requests``.
        commands: commands the portal answered, alone or inside a batch (50 in a full batch).
        retries: commands sent again after a refusal or a failure that was safe to retry.
        rate_limited: refusals by the portal's limits: 503 ``QUERY_LIMIT_EXCEEDED`` requests
            and 429 ``OPERATION_TIME_LIMIT`` answers.
        limiter_wait_s: seconds calls spent waiting for the client's own limiter (request
            tokens and operating budget), summed.
        budget_wait_s: the part of ``limiter_wait_s`` spent waiting for operating budget.
        queue_depth: calls queued now, not yet sent.
        budget_left_s: per budget key (a method billed for its direct calls, or ``batch``
            for whole batch requests, docs/portal.md#how-batch-is-billed), the seconds of
            operating budget the portal last said were left (its ``time.operating`` against
            the budget's limit).
        budget_spent_s: per budget key, the seconds the portal last said were spent in its
            window (its ``time.operating``).
        direct_commands: commands the portal answered to a direct call (one per request,
            billed to the command's own method).
        batched_commands: commands the portal answered inside ``batch`` requests.
        billing_model: how the portal's ``time`` figures showed a ``batch`` is billed:
            ``"batch"`` (whole, to ``batch``), ``"method"`` (each command to its method), or
            None until a ``batch`` reply showed it (the client then books to ``batch``).
        downloads: file downloads (GETs of ``*Machine`` URLs), also in ``http_requests``.
    """

    http_requests: int = 0
    batches: int = 0
    commands: int = 0
    retries: int = 0
    rate_limited: int = 0
    limiter_wait_s: float = 0.0
    downloads: int = 0
    budget_wait_s: float = 0.0
    queue_depth: int = 0
    budget_left_s: dict[str, float] = attrs.field(factory=dict)
    budget_spent_s: dict[str, float] = attrs.field(factory=dict)
    direct_commands: int = 0
    batched_commands: int = 0
    billing_model: str | None = None


class Group:
    """The outcomes of several commands awaited as one (``call_many``): one future, no more.

    Its commands share :attr:`future`, so a caller who gives up (cancels it) gives up all of
    them: those still queued are never sent. Each outcome lands in its slot as it arrives, read
    at once by ``read`` if given (so a bulk read keeps models, not their wire JSON, while the
    rest is in flight); the future is resolved with the list once every slot is filled.
    """

    __slots__ = ("future", "outcomes", "pending", "read")

    def __init__(
        self, future: asyncio.Future[Any], count: int, read: Callable[[Any], Any] | None = None
    ) -> None:
        self.future = future
        self.outcomes: list[Any] = [_EMPTY] * count
        self.pending = count
        self.read = read

    @classmethod
    def adopt(
        cls,
        future: asyncio.Future[Any],
        commands: Sequence[Command],
        read: Callable[[Any], Any] | None = None,
    ) -> None:
        """Make ``commands`` (built with ``future``) one group, slots in their order."""
        group = cls(future, len(commands), read)
        for index, command in enumerate(commands):
            command.group, command.index = group, index

    def put(self, index: int, outcome: CommandResult | BaseException) -> None:
        """Fill slot ``index`` (once; a later outcome for it is ignored)."""
        if self.read is not None and isinstance(outcome, CommandResult):
            self.put_result(index, outcome.result)
        else:
            self._fill(index, outcome)

    def put_result(self, index: int, result: Any) -> None:
        """Fill slot ``index`` with a success's ``result``, read (a group built with ``read``;
        without one, slots hold whole :class:`CommandResult` values, given to :meth:`put`)."""
        read = self.read
        try:
            value = read(result) if read is not None else result
        except Exception as exc:  # this call's failure (a reply that does not fit)
            value = exc
        self._fill(index, value)

    def _fill(self, index: int, value: Any) -> None:
        if self.outcomes[index] is not _EMPTY:
            return
        self.outcomes[index] = value
        self.pending -= 1
        if not self.pending and not self.future.done():
            self.future.set_result(self.outcomes)


_EMPTY: Any = object()


@attrs.define(eq=False)
class Command:
    """One call on its way: what to send, who waits for it, and its history."""

    method: str
    params: Mapping[str, Any]
    encoded: str
    future: asyncio.Future[Any]
    idempotent: bool
    batchable: bool = True
    #: The key inside an explicit batch (``$result[key]`` refers to it).
    key: str = ""
    #: Monotonic moment it was queued (the planner serves the oldest key first).
    since: float = 0.0
    #: Monotonic moment after which it may no longer start (``queue_timeout``).
    deadline: float | None = None
    attempts: int = 0
    refusals: int = 0
    reserved: float = 0.0
    #: The budget keys its reservation is held against (``batch``, its method, or both).
    budgets: tuple[str, ...] = ()
    #: Sent inside a ``batch`` request even when alone (booked to ``batch``, not its method).
    in_batch: bool = False
    #: Set when its request is handed to the transport: from then on it may have executed.
    started: bool = False
    first_sent: float | None = None
    #: With ``call_many``: the group it belongs to (``future`` is the group's) and its slot.
    group: Group | None = None
    index: int = 0
    #: Its outcome was handed over (in a group, the shared future is done only at the end).
    settled: bool = False

    def _hand_over(self) -> bool:
        """Mark its outcome handed over; False when it was already, or nobody waits."""
        if self.settled or self.future.done():
            return False
        self.settled = True
        return True

    def resolve(self, result: CommandResult) -> None:
        """Hand ``result`` to whoever waits (nobody, if they gave up)."""
        if not self._hand_over():
            return
        if self.group is None:
            self.future.set_result(result)
        else:
            self.group.put(self.index, result)

    def deliver(
        self, result: Any, total: int | None, next_: int | None, timing: Mapping[str, Any] | None
    ) -> None:
        """:meth:`resolve` with a success's parts; a group that reads them gets only
        ``result`` (no :class:`CommandResult` is built for a value read at once)."""
        group = self.group
        if group is None or group.read is None:
            self.resolve(CommandResult(result, total, next_, timing))
        elif self._hand_over():
            group.put_result(self.index, result)

    def reject(self, error: BaseException) -> None:
        """Raise ``error`` on whoever waits (in a group: put it in this command's slot)."""
        if not self._hand_over():
            return
        if self.group is None:
            self.future.set_exception(error)
        else:
            self.group.put(self.index, error)

    @property
    def billing_key(self) -> str:
        """The budget it is booked against: the portal books operating time per method."""
        return self.method

    @property
    def budget_keys(self) -> tuple[str, ...]:
        """The budgets its reservation is held against (its method until one is chosen)."""
        return self.budgets or (self.method,)

    @property
    def live(self) -> bool:
        """Someone still waits for it (a command of a group: for this one's outcome)."""
        return not self.settled and not self.future.done()


class Costs:
    """Each method's execution time, learned from ``result_time`` (before that, a prior)."""

    def __init__(self, prior: Callable[[str], float]) -> None:
        self._prior = prior
        self._learned: dict[str, CostEstimate] = {}

    def __contains__(self, method: str) -> bool:
        return method in self._learned

    def estimate(self, method: str) -> float:
        """The cost to plan and reserve with."""
        learned = self._learned.get(method)
        return learned.pessimistic if learned is not None else self._prior(method)

    def observe(self, method: str, seconds: float) -> None:
        """Fold in one measurement."""
        learned = self._learned.get(method)
        if learned is None:
            self._learned[method] = CostEstimate(seconds)
        else:
            learned.observe(seconds)


class CommandQueue:
    """One FIFO per billing key, plus the deadlines of the commands that have one.

    Commands whose caller gave up stay in place until they reach a queue's front (or are
    skipped while a head is read): removing them from the middle of a deque is not worth it.
    """

    def __init__(self) -> None:
        self._keys: dict[str, deque[Command]] = {}
        self._deadlines: list[tuple[float, int, Command]] = []
        self._order = itertools.count()
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def push(self, command: Command, *, front: bool = False) -> None:
        """Queue ``command`` at the back (or, when sent again, the front) of its key."""
        key = command.billing_key
        queue = self._keys.get(key)  # (setdefault would build a deque on every push)
        if queue is None:
            queue = self._keys[key] = deque()
        if front:
            queue.appendleft(command)
        else:
            queue.append(command)
        self.size += 1
        if command.deadline is not None:
            heapq.heappush(self._deadlines, (command.deadline, next(self._order), command))

    def push_many(self, commands: Sequence[Command]) -> None:
        """Queue ``commands``, all of one billing key (one method's), at its back, in order."""
        if not commands:
            return
        key = commands[0].billing_key
        queue = self._keys.get(key)
        if queue is None:
            queue = self._keys[key] = deque()
        queue.extend(commands)
        self.size += len(commands)
        for command in commands:
            if command.deadline is not None:
                heapq.heappush(self._deadlines, (command.deadline, next(self._order), command))

    def heads(self, cost: Callable[[str], float], depth: int) -> list[Head]:
        """Each key's front: its oldest arrival and the costs of up to ``depth`` live commands."""
        heads: list[Head] = []
        for key, queue in list(self._keys.items()):
            self._trim(key, queue)
            if not queue:
                continue
            first = queue[0]
            live = 0
            for command in queue:
                if command.live:
                    live += 1
                    if live == depth:
                        break
            heads.append(Head(key, first.since, (cost(first.method),) * live, first.batchable))
        return heads

    def pop(self, key: str, count: int) -> list[Command]:
        """Take the first ``count`` live commands of ``key``."""
        queue = self._keys.get(key)
        if queue is None:
            return []
        taken: list[Command] = []
        while queue and len(taken) < count:
            command = queue.popleft()
            self.size -= 1
            if command.live:
                taken.append(command)
        self._trim(key, queue)
        return taken

    def expired(self, now: float) -> Iterator[Command]:
        """Queued commands whose deadline has passed (the caller fails them)."""
        while self._deadlines and self._deadlines[0][0] <= now:
            command = heapq.heappop(self._deadlines)[2]
            if command.live and not command.started:
                yield command

    def next_deadline(self) -> float | None:
        """The earliest deadline of a command still waiting."""
        while self._deadlines and not self._deadlines[0][2].live:
            heapq.heappop(self._deadlines)
        return self._deadlines[0][0] if self._deadlines else None

    def drain(self) -> list[Command]:
        """Take every queued live command out."""
        everything = [c for queue in self._keys.values() for c in queue if c.live]
        self._keys.clear()
        self._deadlines.clear()
        self.size = 0
        return everything

    def _trim(self, key: str, queue: deque[Command]) -> None:
        while queue and not queue[0].live:
            queue.popleft()
            self.size -= 1
        if not queue:
            self._keys.pop(key, None)
