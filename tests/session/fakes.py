"""An in-memory transport and a manual clock for the session's tests (no sockets, no real time).

``FakeTransport`` answers REST calls and ``batch`` requests like the portal's envelope does
(docs/portal.md#responses-and-the-time-object, docs/portal.md#batch), with a ``result_time``
duration per method, per-method errors, failures
of whole requests, and an optional gate that holds replies until the test opens it. It records
every request and every command it received, at the moment ``post_form`` is called.
The clock is the tests' one ``FakeClock`` (``tests.helpers``), re-exported here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO
from urllib.parse import parse_qsl

from bitrix_docgen_async.core.encoding import parse_str
from bitrix_docgen_async.errors import TransportError
from bitrix_docgen_async.transport import HttpResponse
from tests.helpers import FakeClock, turns

__all__ = ["WEBHOOK", "FakeClock", "FakeTransport", "turns"]

WEBHOOK = "http://127.0.0.1:9/rest/1/fakewebhookcode/"


def _command_params(query: str) -> dict[str, str]:
    return dict(parse_qsl(query, keep_blank_values=True))


class FakeTransport:
    """Answers like the portal, from memory.

    Args:
        costs: ``result_time.duration`` per method (0.01 s otherwise); a list is used in turn.
        errors: per method, the ``(code, description)`` of a per-command error.
        result: builds a method's ``result`` from its params.
    """

    user_agent = "fake-transport"

    def __init__(
        self,
        costs: Mapping[str, float | list[float]] | None = None,
        errors: Mapping[str, tuple[str, str]] | None = None,
        result: Callable[[str, Mapping[str, str]], Any] | None = None,
    ) -> None:
        self.costs = dict(costs or {})
        self.errors = dict(errors or {})
        self.result = result or (lambda method, params: {"method": method, **params})
        #: (method, payload) of every request, in order.
        self.requests: list[tuple[str, dict[str, Any]]] = []
        #: (method, params) of every command received (direct or inside a batch).
        self.commands: list[tuple[str, dict[str, str]]] = []
        #: When set, replies wait until it is set again (requests are recorded at once).
        self.gate: asyncio.Event | None = None
        #: Raised instead of answering, once per entry.
        self.failures: list[BaseException] = []
        self.opened = self.closed = 0

    async def open(self) -> None:
        self.opened += 1

    async def close(self) -> None:
        self.closed += 1

    def sent(self, method: str) -> list[dict[str, str]]:
        """The params of every command of ``method`` received."""
        return [params for name, params in self.commands if name == method]

    def _cost(self, method: str) -> float:
        cost = self.costs.get(method, 0.01)
        if isinstance(cost, list):
            return cost.pop(0) if len(cost) > 1 else cost[0]
        return cost

    def _one(self, method: str, params: Mapping[str, str]) -> tuple[Any, Any, dict[str, Any]]:
        timing = {"duration": self._cost(method)}
        if method in self.errors:
            code, description = self.errors[method]
            return None, {"error": code, "error_description": description}, timing
        return self.result(method, params), None, timing

    async def post_json(self, url: str, payload: Mapping[str, Any]) -> HttpResponse:
        method = url.rstrip("/").rsplit("/", 1)[-1].lower()
        self.requests.append((method, dict(payload)))
        if method == "batch":
            parsed = {}
            for key, encoded in payload["cmd"].items():
                name, _, query = encoded.partition("?")
                parsed[key] = (name.lower(), _command_params(query))
                self.commands.append(parsed[key])
        else:
            params = {k: str(v) for k, v in payload.items() if not isinstance(v, dict)}
            self.commands.append((method, params))
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(0)
        if self.failures:
            raise self.failures.pop(0)
        if method != "batch":
            result, error, timing = self._one(method, params)
            body = error if error is not None else {"result": result, "time": timing}
            return HttpResponse(400 if error else 200, {}, json.dumps(body).encode(), url)
        results: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        times: dict[str, Any] = {}
        for key, (name, params) in parsed.items():
            result, error, timing = self._one(name, params)
            times[key] = timing
            if error is not None:
                errors[key] = error
            else:
                results[key] = result
        body = {
            "result": {
                "result": results,
                "result_error": errors,
                "result_total": [],
                "result_next": [],
                "result_time": times,
            },
            "time": {"duration": 0.01},
        }
        return HttpResponse(200, {}, json.dumps(body).encode(), url)

    async def post_form(self, url: str, body: bytes) -> HttpResponse:
        """A form body, read as the portal reads it (PHP's ``parse_str``).

        See docs/portal.md#one-wire-form.
        """
        return await self.post_json(url, parse_str(body))

    async def get(self, url: str, params: Mapping[str, str] | None = None) -> HttpResponse:
        raise TransportError("the fake transport has no GET")

    async def download(
        self, url: str, file: BinaryIO, headers: Mapping[str, str], *, chunk_size: int = 1 << 16
    ) -> tuple[int, Mapping[str, str]]:
        raise TransportError("the fake transport has no downloads")
