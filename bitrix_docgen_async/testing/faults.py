"""Injected failures of the fake portal: random per request, or queued deterministically.

Kinds (each is something a real portal, or the nginx in front of it, does now and then):

* ``error_500``: JSON ``INTERNAL_SERVER_ERROR`` with HTTP 500; nothing executed.
* ``html_502``: nginx's HTML "502 Bad Gateway" page; nothing executed.
* ``invalid_json``: the call executes and commits, then a truncated JSON body comes back (200).
* ``slow``: the reply is held back ``slow_delay`` seconds before the call executes.
* ``drop_before``: the connection is closed without a response; nothing executed.
* ``drop_after``: the call executes and commits, then the connection is closed without a response.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

import attrs

__all__ = ["FAULT_KINDS", "Faults"]

#: Every fault kind, in the order their probabilities are stacked for the random roll.
FAULT_KINDS: tuple[str, ...] = (
    "error_500",
    "html_502",
    "invalid_json",
    "slow",
    "drop_before",
    "drop_after",
)


def _probability(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be within [0, 1], got {value!r}")


def _lower_set(value: Iterable[str] | None) -> frozenset[str] | None:
    return None if value is None else frozenset(name.lower() for name in value)


@attrs.define
class _Injection:
    kind: str
    remaining: int
    method: str | None


@attrs.define
class Faults:
    """Which requests fail, and how.

    Probabilities apply per HTTP request to ``/rest/``: one draw from a ``random.Random(seed)``
    picks at most one kind. ``methods`` restricts the requests that can be hit: a direct call by
    its method name, a batch when any of its commands' methods (or ``"batch"``) is in the set.

    Attributes:
        seed: seed of the random draws.
        error_500: probability of a JSON 500.
        html_502: probability of an HTML 502 page.
        invalid_json: probability of a truncated JSON body after the call committed.
        slow: probability of a reply delayed by ``slow_delay`` seconds.
        slow_delay: the delay of a slow reply, seconds.
        drop_before: probability of a dropped connection before execution.
        drop_after: probability of a dropped connection after the call committed.
        methods: method names (any case) that faults may hit; ``None`` means every request.
    """

    seed: int = 0
    error_500: float = attrs.field(default=0.0, validator=_probability)
    html_502: float = attrs.field(default=0.0, validator=_probability)
    invalid_json: float = attrs.field(default=0.0, validator=_probability)
    slow: float = attrs.field(default=0.0, validator=_probability)
    slow_delay: float = 2.0
    drop_before: float = attrs.field(default=0.0, validator=_probability)
    drop_after: float = attrs.field(default=0.0, validator=_probability)
    methods: frozenset[str] | None = attrs.field(default=None, converter=_lower_set)
    _rng: random.Random = attrs.field(init=False, repr=False)
    _queue: list[_Injection] = attrs.field(init=False, factory=list, repr=False)

    def __attrs_post_init__(self) -> None:
        total = sum(getattr(self, kind) for kind in FAULT_KINDS)
        if total > 1.0 + 1e-9:
            raise ValueError(f"fault probabilities add up to {total}, more than 1")
        self._rng = random.Random(self.seed)

    def inject(self, kind: str, count: int = 1, method: str | None = None) -> None:
        """Make the next ``count`` matching requests fail with ``kind``.

        Args:
            kind: one of :data:`FAULT_KINDS`.
            count: how many requests to hit.
            method: hit only requests of this method (a batch matches when one of its commands
                has it, or when it is ``"batch"``); ``None`` hits any request.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        self._queue.append(_Injection(kind, count, method.lower() if method else None))

    def pending(self) -> int:
        """How many injected faults are still queued."""
        return sum(item.remaining for item in self._queue)

    def clear(self) -> None:
        """Drop every queued injection."""
        self._queue.clear()

    def pick(self, methods: Iterable[str]) -> str | None:
        """Decide the fault of one request whose (lower-cased) method names are ``methods``.

        Queued injections come first; otherwise one random draw, if the request is eligible.
        """
        names = frozenset(methods)
        for item in self._queue:
            if item.method is None or item.method in names:
                item.remaining -= 1
                if item.remaining == 0:
                    self._queue.remove(item)
                return item.kind
        if self.methods is not None and not names & self.methods:
            return None
        if not any(getattr(self, kind) for kind in FAULT_KINDS):
            return None
        draw = self._rng.random()
        edge = 0.0
        for kind in FAULT_KINDS:
            edge += getattr(self, kind)
            if draw < edge:
                return kind
        return None
