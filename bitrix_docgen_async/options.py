"""The keyword options of :class:`DocgenClient`, typed for ``from_webhook`` / ``from_oauth``.

``ClientOptions`` lists every keyword ``DocgenClient.__init__`` takes, so that a type checker
sees a misspelled option (``rate_limt=``) in ``DocgenClient.from_webhook(url, **options)``;
:func:`check_option_names` rejects it at run time too, naming the closest known option.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Literal, TypedDict

import aiohttp

from bitrix_docgen_async.core.pdf import PollSchedule
from bitrix_docgen_async.core.ratelimit import OperatingBudget, RateLimit
from bitrix_docgen_async.core.retry import RetryPolicy
from bitrix_docgen_async.limiter import Clock, Limiter, Sleep
from bitrix_docgen_async.tracing import RequestHook, ResponseHook
from bitrix_docgen_async.transport import Timeouts, Transport

__all__ = ["OPTION_NAMES", "ClientOptions", "check_option_names", "closest"]


class ClientOptions(TypedDict, total=False):
    """The keyword options of ``DocgenClient`` (all optional; see its docstring)."""

    rate_limit: RateLimit | None
    operating_budget: OperatingBudget | None
    limiter: Limiter | None
    http_session: aiohttp.ClientSession | None
    linger: float
    batch_time_target: float
    timeouts: Timeouts
    retry: RetryPolicy
    pdf_schedule: PollSchedule | None
    download_concurrency: int
    queue_timeout: float | None
    transport: Transport | None
    auth_connector: str | None
    clock: Clock
    sleep: Sleep
    on_request: RequestHook | None
    on_response: ResponseHook | None
    budget_routing: Literal["auto", "off"]


#: Every option name, in the order ``DocgenClient`` documents them.
OPTION_NAMES: tuple[str, ...] = tuple(ClientOptions.__annotations__)


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name most like ``name`` (difflib), or None when nothing is close."""
    matches = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return matches[0] if matches else None


def check_option_names(options: Iterable[str], *, where: str = "DocgenClient") -> None:
    """Reject option names ``DocgenClient`` does not take.

    Raises:
        TypeError: naming the first unknown option and the closest known one.
    """
    for name in options:
        if name in OPTION_NAMES:
            continue
        hint = closest(name, OPTION_NAMES)
        suggestion = f"; did you mean {hint!r}?" if hint else ""
        raise TypeError(f"{where}() got an unexpected option {name!r}{suggestion}")
