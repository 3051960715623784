"""Routing across the two budgets a portal that bills ``batch`` whole offers (issue 13).

docs/portal.md#how-batch-is-billed: a whole ``batch`` request is billed to ``batch``, a direct
call to its own method. Budgets are scaled down (a tenth of a second per minute, so that none
frees during a test) and every wait is bounded.
"""

from __future__ import annotations

from bitrix_docgen_async.core.planner import Route, route

DOC_ADD = "crm.documentgenerator.document.add"
GET = "crm.documentgenerator.numerator.get"


def test_route_sends_heavy_writes_direct_only_with_separate_budgets_and_room() -> None:
    def go(method: str, **overrides: bool) -> Route:
        flags = {"separate_budgets": True, "batch_room": True, "own_room": True}
        flags["tokens_free"] = True
        flags.update(overrides)
        return route(method, **flags)

    assert go(DOC_ADD) is Route.DIRECT
    assert go(DOC_ADD, separate_budgets=False) is Route.BATCH  # "method" billing: never
    assert go(DOC_ADD, own_room=False) is Route.BATCH
    assert go(DOC_ADD, tokens_free=False) is Route.BATCH  # the request bucket binds
    assert go(GET) is Route.BATCH  # reads stay batched while batch has room
    assert go(GET, batch_room=False) is Route.DIRECT
    assert go(GET, batch_room=False, own_room=False) is Route.BATCH  # waits for batch
    assert go(GET, separate_budgets=False, batch_room=False) is Route.BATCH
