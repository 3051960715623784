"""A taskiq worker generating documents, one client per worker process.

Run three of them (on one host or several; they share only Redis)::

    export BITRIX_WEBHOOK_URL=https://example.bitrix24.com/rest/1/<code>/
    export REDIS_URL=redis://127.0.0.1:6379/0
    taskiq worker examples.taskiq_worker:broker --workers 1 --max-async-tasks 1

and send them a run with ``examples/taskiq_producer.py``. The producer imports this module for
the broker and the chunk task, and needs only ``REDIS_URL``.

The portal's limits and the run's timing come from the environment, so that one file serves a
real portal (the defaults: the standard plan, ``document.add``'s operating budget) and the fake
portal of the tests:

* ``DOCGEN_RATE``: ``burst,per_second`` of the request bucket (default ``50,2``);
* ``DOCGEN_BUDGET``: ``limit_s,window_s`` of the operating budget (default ``480,600``);
* ``DOCGEN_CHUNK_SIZE``: entities per chunk (default 100);
* ``DOCGEN_REDELIVERY``: seconds before a dead worker's chunk goes to another worker (default:
  computed from the chunk size, see ``redelivery_timeout``);
* ``DOCGEN_LEASE``: seconds before a dead worker's entities are taken over (default 30);
* ``DOCGEN_RECONCILE_DELAY``: seconds between two lookups of a lost add (default 2);
* ``DOCGEN_RESERVATION_TTL``: seconds before the budget a dead worker had reserved is given
  back (default 90: above the portal's 60 s cut-off).
"""

from __future__ import annotations

import os

from bitrix_docgen_async import OperatingBudget, RateLimit
from bitrix_docgen_async.integrations.taskiq import DocgenTaskiq


def _pair(name: str, default: str) -> tuple[float, float]:
    first, second = os.environ.get(name, default).split(",")
    return float(first), float(second)


_burst, _per_second = _pair("DOCGEN_RATE", "50,2")
_limit, _window = _pair("DOCGEN_BUDGET", "480,600")
_redelivery = os.environ.get("DOCGEN_REDELIVERY")

docgen = DocgenTaskiq(
    os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
    rate_limit=RateLimit(burst=int(_burst), per_second=_per_second),
    operating_budget=OperatingBudget(limit_s=_limit, window_s=_window),
    chunk_size=int(os.environ.get("DOCGEN_CHUNK_SIZE", "100")),
    chunks_in_flight=3,
    redelivery=float(_redelivery) if _redelivery else None,
    journal_lease=float(os.environ.get("DOCGEN_LEASE", "30")),
    reconcile_delay=float(os.environ.get("DOCGEN_RECONCILE_DELAY", "2")),
    reservation_ttl=float(os.environ.get("DOCGEN_RESERVATION_TTL", "90")),
)
#: What ``taskiq worker examples.taskiq_worker:broker`` runs.
broker = docgen.broker
