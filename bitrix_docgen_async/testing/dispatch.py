"""Executing REST commands: one direct call or a ``batch``, with costs, budgets and ``time``.

Each command is checked against its method's operating budget (one per credential and method,
:mod:`.billing`), executed, and then takes its cost in real time (``asyncio.sleep``). Where the
cost is billed depends on the billing model: a direct call always to its own method; a command
inside a ``batch`` to its own method under ``"method"`` billing, or, under ``"batch"`` billing
(the default), the whole request's execution to ``batch`` once it has run, after the request was
let in only while ``batch`` had budget left (docs/portal.md#how-batch-is-billed). The handler runs
*before* the cost elapses, so whatever a started command writes is committed by the time a
request is cut off. Commands that fail (a :class:`PortalError` from the handler) are not
charged. A request runs its commands in order and starts none once it has been running for
``request_time_cap`` seconds; the caller turns that into a 504.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
from aiohttp import web

from bitrix_docgen_async.core.ratelimit import BucketedBudget, OperatingBudget
from bitrix_docgen_async.testing.batch import BATCH_LIMIT, BatchRun, parse_commands
from bitrix_docgen_async.testing.billing import BATCH_METHOD, Billing, BillingModel, RunningSum
from bitrix_docgen_async.testing.state import (
    AuthInfo,
    CallContext,
    MethodRegistry,
    PortalError,
    PortalState,
    PortalStats,
    normalize_method,
)
from bitrix_docgen_async.testing.wire import time_block

if TYPE_CHECKING:
    from bitrix_docgen_async.testing.portal import FakePortal

__all__ = ["Dispatcher", "Outcome", "Reply"]

_log = logging.getLogger(__name__)


@attrs.define
class Outcome:
    """What one command produced: a result (with list paging) or an error, and its ``time``."""

    result: Any = None
    total: int | None = None
    next: int | None = None
    error: PortalError | None = None
    time: dict[str, Any] | None = None


@attrs.frozen
class Reply:
    """The reply of a request; ``cut`` when it ran into the request time cap.

    ``raw`` is a ready HTTP response a handler returned instead of a JSON ``result`` (file
    downloads), sent as it is.
    """

    status: int
    body: dict[str, Any]
    cut: bool = False
    raw: web.StreamResponse | None = None


class Dispatcher:
    """Runs commands for one portal."""

    def __init__(
        self,
        *,
        portal: FakePortal,
        registry: MethodRegistry,
        state: PortalState,
        stats: PortalStats,
        clock: Callable[[], float],
        operating_budget: OperatingBudget | None,
        operating_billing: BillingModel,
        operating_floor: float,
        method_costs: Mapping[str, float] | None,
        default_cost: float,
        cost_jitter: float,
        seed: int,
    ) -> None:
        self.portal = portal
        self.registry = registry
        self.state = state
        self.stats = stats
        self.clock = clock
        # Without a budget nothing is refused, but ``time.operating`` is still reported.
        self.billing = Billing(
            model=operating_billing,
            budget=operating_budget,
            floor=operating_floor,
            stats=stats,
        )
        self.costs = {normalize_method(k): v for k, v in (method_costs or {}).items()}
        self.default_cost = default_cost
        self.jitter = cost_jitter
        self._rng = random.Random(seed)

    def cost(self, method: str) -> float:
        """Seconds one command of ``method`` takes (configured cost plus seeded jitter).

        A method that costs nothing stays free: jitter varies a cost, it does not invent one.
        """
        base = self.costs.get(method, self.default_cost)
        if self.jitter and base > 0:
            base += self._rng.uniform(-self.jitter, self.jitter)
        return max(0.0, base)

    def budget_of(self, identity: str, method: str) -> BucketedBudget:
        """The operating budget of ``method`` for one credential (``"batch"`` for batches)."""
        return self.billing.budget_of(identity, method)

    async def run(
        self,
        auth: AuthInfo,
        method: str,
        params: dict[str, Any],
        deadline: float,
        base_url: str | None = None,
    ) -> Reply:
        """Execute one HTTP request's worth of work: a direct call or a batch.

        ``base_url`` is how the caller addressed the portal (see :attr:`CallContext.base_url`).
        """
        if normalize_method(method) == "batch":
            return await self._batch(auth, params, deadline, base_url)
        outcome = await self.command(auth, method, params, base_url=base_url)
        if outcome.error is not None:
            return Reply(outcome.error.status, outcome.error.payload())
        if isinstance(outcome.result, web.StreamResponse):
            return Reply(200, {}, raw=outcome.result)
        body: dict[str, Any] = {"result": outcome.result}
        if outcome.next is not None:
            body["next"] = outcome.next
        if outcome.total is not None:
            body["total"] = outcome.total
        body["time"] = outcome.time
        return Reply(200, body)

    async def command(
        self,
        auth: AuthInfo,
        method: str,
        params: dict[str, Any],
        *,
        in_batch: bool = False,
        running: RunningSum | None = None,
        base_url: str | None = None,
    ) -> Outcome:
        """Check, execute, bill and time one command.

        ``running`` is the request's :class:`RunningSum` when the command runs inside a
        ``batch`` billed whole to ``batch``: the command is then not billed to its own method
        (the caller bills the request) and reports the running figure as its ``operating``.
        """
        spec = self.registry.get(method)
        name = normalize_method(method)
        if in_batch and (name == "batch" or (spec is not None and not spec.batchable)):
            return Outcome(error=_not_batchable())
        if spec is None:
            return Outcome(error=PortalError("ERROR_METHOD_NOT_FOUND", "Method not found!", 404))
        identity = auth.identity
        now = self.clock()
        # A method blocked by its own budget is refused inside a batch too, whichever way the
        # batch is billed (docs/portal.md#how-batch-is-billed).
        if not self.billing.allows(identity, spec.name, now):
            return Outcome(error=_operation_time_limit())
        cost = self.cost(spec.name)
        self.stats.commands += 1
        self.stats.by_method[spec.name] += 1
        loop = asyncio.get_running_loop()
        wall_start, started = time.time(), loop.time()
        connector = params.get("auth_connector")
        ctx = CallContext(
            self.portal,
            self.state,
            auth,
            spec.name,
            base_url,
            connector.strip() if isinstance(connector, str) else "",
        )
        try:
            value = await spec.call(ctx, params)
            outcome = Outcome(*value) if spec.paged else Outcome(value)
        except PortalError as exc:
            return Outcome(error=exc)
        except Exception:
            _log.exception("fake portal: handler of %s failed", spec.name)
            return Outcome(error=PortalError("INTERNAL_SERVER_ERROR", "Internal server error", 500))
        if cost > 0:
            await asyncio.sleep(cost)
        if running is None:
            # Billed when it ends, in the bucket open when it started: the portal cannot know
            # a call's execution time before it has run (docs/portal.md#operating-time-per-method).
            self.billing.bill(identity, spec.name, now, cost)
        processing = loop.time() - started
        later = self.clock()
        if running is None:
            operating, reset_at = self.billing.figures(identity, spec.name, later, time.time)
        else:
            operating = running.add(cost)
            _, reset_at = self.billing.figures(identity, BATCH_METHOD, later, time.time)
        outcome.time = time_block(
            wall_start, wall_start + processing, processing, operating=operating, reset_at=reset_at
        )
        return outcome

    async def _batch(
        self, auth: AuthInfo, params: dict[str, Any], deadline: float, base_url: str | None
    ) -> Reply:
        whole = self.billing.batch_billed_whole
        requested = self.clock()
        # Billed to ``batch``, a request is checked against that budget before it runs and
        # refused whole with HTTP 429 once it is spent (docs/portal.md#how-batch-is-billed).
        if whole and not self.billing.allows(auth.identity, BATCH_METHOD, requested):
            error = _operation_time_limit()
            return Reply(error.status, error.payload())
        loop = asyncio.get_running_loop()
        wall_start, started = time.time(), loop.time()
        commands, halt = parse_commands(params)
        self.portal.stats.batch_sizes.append(len(commands))
        run = BatchRun()
        running = RunningSum(self.billing.floor) if whole else None
        processing = 0.0
        cut = False
        for index, (key, raw) in enumerate(commands):
            if index >= BATCH_LIMIT:
                run.fail(
                    key, PortalError("ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded")
                )
                continue
            if loop.time() >= deadline:
                cut = True
                break
            method, call_params = run.prepare(raw)
            outcome = await self.command(
                auth, method, call_params, in_batch=True, running=running, base_url=base_url
            )
            if outcome.error is not None:
                run.fail(key, outcome.error)
                if halt:
                    break
                continue
            run.succeed(key, outcome.result, outcome.total, outcome.next, outcome.time)
            processing += outcome.time["processing"] if outcome.time else 0.0
        elapsed = loop.time() - started
        if running is None:
            # Each command was billed to its own method; the outer call is not billed.
            block = time_block(wall_start, wall_start + elapsed, processing)
        else:
            self.billing.bill(auth.identity, BATCH_METHOD, requested, running.total)
            operating, reset_at = self.billing.figures(
                auth.identity, BATCH_METHOD, self.clock(), time.time
            )
            block = time_block(
                wall_start,
                wall_start + elapsed,
                processing,
                operating=operating,
                reset_at=reset_at,
            )
        return Reply(200, {"result": run.sections(), "time": block}, cut=cut)


def _not_batchable() -> PortalError:
    return PortalError(
        "ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage", 405
    )


def _operation_time_limit() -> PortalError:
    return PortalError(
        "OPERATION_TIME_LIMIT", "Method is blocked due to operation time limit.", 429
    )
