"""Read the REST envelope: success, error, the ``time`` block and the inner result of ``batch``.

Pure: bytes in, values or exceptions out (docs/portal.md#responses-and-the-time-object,
docs/portal.md#batch, docs/portal.md#errors).

* A success is ``{"result": ..., "time": {...}}``, plus top-level ``total``/``next`` for list
  methods (§1.3, §6) -> :class:`Envelope`.
* An error is ``{"error": ..., "error_description": ...}`` with any status, 200 included (§4.1;
  PY raises an ``error`` found in a 2xx body too) -> the :class:`ApiError` from
  :func:`~bitrix_docgen_async.core.errormap.error_for`, raised.
* Anything else (an nginx HTML page, truncated JSON, a JSON array) -> :class:`ResponseError`.
  Its message never quotes a response body: a 2xx body may hold tokens or personal data, and an
  error page may echo the request path, which holds the webhook code. An HTML page is described
  by its status, content type and size only.
* The portal's ``error`` and ``error_description`` are kept in the error (they are its
  explanation) after :func:`~bitrix_docgen_async.core.redact.scrub`: URLs, ``/rest/`` paths,
  token-shaped strings and the caller's known secrets are blanked out.
* The ``x-bitrix-ri`` response header (the portal's request id,
docs/portal.md#where-the-sources-disagree) becomes the
  error's ``request_id``.
* ``batch`` answers 200 even when commands fail; :func:`split_batch` splits its inner ``result``
  per command id (§2).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from bitrix_docgen_async.core.errormap import error_for
from bitrix_docgen_async.core.redact import scrub
from bitrix_docgen_async.errors import ApiError, ResponseError

_fast_loads: Callable[[bytes], Any] | None
try:  # The optional "fast" extra: a JSON decoder in Rust, 3-4 x the stdlib's speed on replies.
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - the tests also run with it set to None
    _fast_loads = None

__all__ = [
    "REQUEST_ID_HEADER",
    "BatchReply",
    "Envelope",
    "TimeInfo",
    "header",
    "parse_response",
    "request_id_of",
    "split_batch",
    "time_figure",
]

#: The portal's request id header (docs/portal.md#where-the-sources-disagree) and the shape an id is
#: accepted in: a header
#: is untrusted text that ends up in a message, so anything else is dropped.
REQUEST_ID_HEADER = "x-bitrix-ri"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_CONTENT_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+\-]+/[A-Za-z0-9!#$&^_.+\-]+")
# docs/portal.md#errors: an error code is "a string of digits, Latin letters and underscores".
_CODE_LIKE = re.compile(r"[A-Za-z0-9_]*")
_INTEGER = re.compile(r"[+-]?\d+")


def _number(value: object) -> float | None:
    """A finite number from an int, a float or a numeric string; anything else is ``None``.

    The ``time`` fields vary (docs/portal.md#responses-and-the-time-object): 2026 docgen examples
    send an integer ``start``
    and ``processing``, so ints are as good as floats. ``bool`` is an ``int`` in Python but never
    a time, so it is refused.
    """
    kind = value.__class__
    if kind is float:
        return value if math.isfinite(value) else None  # type: ignore[arg-type,return-value]
    if kind is int:
        return float(value)  # type: ignore[arg-type]
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _string(value: object) -> str | None:
    return value if isinstance(value, str) else None


@attrs.frozen
class TimeInfo:
    """The ``time`` object of a response or of one batch command
    (docs/portal.md#responses-and-the-time-object).

    The docs say its fields "may vary depending on the method and environment", so every one is
    optional.

    Attributes:
        start: Unix time the request began.
        finish: Unix time it ended.
        duration: ``finish - start``, seconds.
        processing: processing time, seconds.
        operating: this method's execution time for this app/webhook over the last 10 minutes,
            seconds (the operating budget, §3.2).
        operating_reset_at: Unix time at which part of that budget is released; absent from some
            responses (``event.bind``, ``user.current``).
        date_start: ISO-8601 start with offset, e.g. ``2024-08-29T10:34:19+03:00``.
        date_finish: ISO-8601 finish with offset.
    """

    start: float | None = None
    finish: float | None = None
    duration: float | None = None
    processing: float | None = None
    operating: float | None = None
    operating_reset_at: float | None = None
    date_start: str | None = None
    date_finish: str | None = None

    @classmethod
    def from_wire(cls, data: object) -> TimeInfo | None:
        """Read a ``time`` object leniently.

        Args:
            data: the decoded JSON value of ``time``.

        Returns:
            A :class:`TimeInfo` (fields that are missing or unreadable are ``None``), or ``None``
            when ``data`` is not a JSON object (absent, ``[]``, a scalar).
        """
        if not isinstance(data, Mapping):
            return None
        return cls(*_time_fields(data))


def _time_fields(data: Mapping[str, Any]) -> tuple[Any, ...]:
    """The fields of a :class:`TimeInfo`, in order, read leniently from a ``time`` object."""
    get = data.get
    return (
        _number(get("start")),
        _number(get("finish")),
        _number(get("duration")),
        _number(get("processing")),
        _number(get("operating")),
        _number(get("operating_reset_at")),
        _string(get("date_start")),
        _string(get("date_finish")),
    )


def time_figure(data: Mapping[str, Any] | None, name: str) -> float | None:
    """One number of a raw ``time`` object (as :class:`TimeInfo` would read it), or ``None``.

    Args:
        data: a ``time`` object as sent (e.g. a value of :attr:`BatchReply.raw_times`), or None.
        name: the field, e.g. ``"duration"`` or ``"operating"``.
    """
    return None if data is None else _number(data.get(name))


@attrs.frozen
class Envelope:
    """A success envelope (docs/portal.md#responses-and-the-time-object).

    Attributes:
        result: the decoded ``result``, whatever its JSON type (docgen methods wrap it in an
            object such as ``{"document": {...}}``; ``batch`` nests another envelope).
        time: the request's ``time`` block, or ``None`` when absent.
        total: the list total (§6), or ``None`` when absent.
        next: the ``start`` of the next page (§6), or ``None`` when there is none.
        request_id: the portal's id of the request (``x-bitrix-ri``, §11), when sent; pass it
            to :func:`split_batch` so that the commands' errors carry it.
    """

    result: Any
    time: TimeInfo | None = None
    total: int | None = None
    next: int | None = None
    request_id: str | None = None


@attrs.frozen
class BatchReply:
    """The inner ``result`` of a ``batch`` call, split per command key (docs/portal.md#batch).

    A key is in exactly one of ``results`` and ``errors`` when its command ran; under ``halt=1``
    the commands after the first failure appear in neither.

    Attributes:
        results: command key -> result of each successful command. A key present with ``None``
            is a success that returned ``null``.
        errors: command key -> the mapped exception (``status`` is ``None``, because the batch
            itself is a 200; ``method`` comes from the ``methods`` given to :func:`split_batch`).
        totals: command key -> ``total`` of list commands.
        nexts: command key -> ``next`` of list commands that have another page.
        raw_times: command key -> the command's ``time`` object as sent (JSON objects only;
            failed commands have none). :attr:`times` reads them; the session reads the few
            figures it needs straight from here (:func:`time_figure`), so that a batch of 50
            does not build 50 :class:`TimeInfo` objects nobody looks at.
    """

    results: Mapping[str, Any] = attrs.field(factory=dict)
    errors: Mapping[str, ApiError] = attrs.field(factory=dict)
    totals: Mapping[str, int] = attrs.field(factory=dict)
    nexts: Mapping[str, int] = attrs.field(factory=dict)
    raw_times: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)

    @property
    def times(self) -> dict[str, TimeInfo]:
        """Command key -> the command's ``time`` block, read (:meth:`TimeInfo.from_wire`)."""
        return {key: TimeInfo(*_time_fields(value)) for key, value in self.raw_times.items()}


def _count(value: object, what: str, status: int) -> int | None:
    """Read ``total``/``next``: an int or a numeric string; ``None`` when absent or null.

    A value that is there but unreadable raises rather than reads as "no next page", which would
    silently end a paging loop early.
    """
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value.strip())
    raise ResponseError(f"{what} is not an integer but {_kind(value)}", status=status)


def _kind(value: object) -> str:
    """Name a JSON value's type without quoting its content."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN/Infinity, which are not JSON (RFC 8259); Bitrix24 never sends them.
    raise ValueError(f"non-standard constant {name}")


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A header's value, the name compared case-insensitively (any mapping will do)."""
    if not headers:
        return None
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    for key, found in headers.items():
        if key.lower() == wanted:
            return found
    return None


def request_id_of(headers: Mapping[str, str] | None) -> str | None:
    """The portal's request id (``x-bitrix-ri``, docs/portal.md#where-the-sources-disagree), if it
    is there and sane."""
    value = header(headers, REQUEST_ID_HEADER)
    if value is None:
        return None
    value = value.strip()
    return value if _REQUEST_ID.fullmatch(value) else None


def _content_type(headers: Mapping[str, str] | None) -> str:
    value = (header(headers, "Content-Type") or "").split(";")[0].strip().lower()
    return value if _CONTENT_TYPE.fullmatch(value) else "no content type"


def _not_json(status: int, text: str, size: int, content_type: str, problem: str) -> ResponseError:
    stripped = text.lstrip()
    if stripped.startswith("<") or content_type in ("text/html", "application/xhtml+xml"):
        # An nginx/Apache error page (502, 504, a 403 from a WAF). Described, never quoted: its
        # title or body may echo the request path, which holds the webhook code (§1.1), and a
        # 2xx page may be an application page with personal data in it.
        message = f"not JSON: an HTML page ({content_type}, {size} bytes)"
        return ResponseError(message, status=status, detail=(problem,))
    return ResponseError(f"not JSON: {problem} ({content_type}, {size} bytes)", status=status)


def _decode(status: int, body: bytes, content_type: str) -> object:
    """Decode a JSON body (UTF-8, a BOM tolerated) or raise :class:`ResponseError`."""
    if _fast_loads is not None:
        # orjson reads what the stdlib reads, bar what it refuses (NaN/Infinity, numbers that
        # overflow a double, lone surrogates, a BOM, invalid UTF-8, nesting past 1024), which
        # then goes the stdlib's way below, errors and messages included. Differences: an
        # integer literal beyond 64 bits reads as a float (PHP's json_encode cannot write one:
        # its integers are 64-bit, larger numbers are already floats), and nesting reads to
        # 1,024 levels where the stdlib's limit is whatever is left of the stack.
        try:
            return _fast_loads(body)
        except ValueError:  # orjson.JSONDecodeError; the stdlib path says what is wrong
            pass
    raw = bytes(body)
    if not raw.strip():
        raise ResponseError("empty body", status=status)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ResponseError(
            f"not JSON: the body is not UTF-8 ({content_type}, {len(raw)} bytes)", status=status
        ) from None
    # The ResponseError is raised outside the except block so that it does not chain the
    # JSONDecodeError, whose ``doc`` attribute holds the whole body.
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        # The body ended early (a dropped connection, a proxy's size cap): either the parser ran
        # off the end, or a string was never closed.
        if exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string"):
            problem = f"truncated after {len(raw)} bytes"
        else:
            problem = f"{exc.msg} (character {exc.pos})"
    except ValueError as exc:
        problem = str(exc)
    except RecursionError:
        problem = "nested too deeply"
    raise _not_json(status, text, len(raw), content_type, problem)


def _wire_text(value: object) -> str:
    """Text of a wire value; ``None`` becomes ``""`` (never ``"None"``)."""
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _error_parts(payload: Mapping[str, Any]) -> tuple[str, str]:
    """The (code, description) of an error object, as text.

    Besides the usual ``{"error": "CODE", "error_description": "..."}``, PY documents a REST v3
    form where ``error`` is itself an object ``{"code", "message"}``
    (fixtures/sdks/b24pysdk/error_catalogue.json ``matching``).
    """
    error = payload.get("error")
    description = payload.get("error_description")
    if isinstance(error, Mapping):
        message = error.get("message")
        return _wire_text(error.get("code")), _wire_text(
            message if message is not None else description
        )
    return _wire_text(error), _wire_text(description)


def _portal_error(
    code: str,
    description: str,
    *,
    status: int | None,
    method: str | None,
    secrets: Iterable[str],
    request_id: str | None,
) -> ApiError:
    """The mapped error, classified on the raw texts and carrying the scrubbed ones."""
    secrets = tuple(secrets)
    error = error_for(code, description, status=status, method=method, request_id=request_id)
    clean_code, clean_description = scrub(code, secrets), scrub(description, secrets)
    if (clean_code, clean_description) == (code, description):
        return error
    return type(error)(
        clean_code, clean_description, status=error.status, method=method, request_id=request_id
    )


def parse_response(
    status: int,
    body: bytes,
    *,
    method: str | None = None,
    headers: Mapping[str, str] | None = None,
    secrets: Iterable[str] = (),
) -> Envelope:
    """Parse one HTTP response of a REST call.

    Args:
        status: the HTTP status.
        body: the raw response body.
        method: the REST method called, for the error's message.
        headers: the response headers: ``Content-Type`` describes a body that is not JSON, and
            ``x-bitrix-ri`` becomes the error's ``request_id``.
        secrets: the credentials' secrets (webhook code, tokens), blanked out of the portal's
            error texts wherever they occur (:func:`~bitrix_docgen_async.core.redact.scrub`).

    Returns:
        The success :class:`Envelope` (2xx with a ``result``).

    Raises:
        ApiError: the mapped subclass, for an error envelope whatever the status (the OAuth
            server's ``wrong_client`` even comes with 200).
        ResponseError: for anything not understood: not JSON, not an object, an HTTP error
            without an ``error``, neither ``result`` nor ``error``, unreadable ``total``/``next``.
    """
    data = _decode(status, body, _content_type(headers))
    if not isinstance(data, dict):
        raise ResponseError(f"the JSON is not an object but {_kind(data)}", status=status)
    if "error" in data:
        code, description = _error_parts(data)
        raise _portal_error(
            code,
            description,
            status=status,
            method=method,
            secrets=secrets,
            request_id=request_id_of(headers),
        )
    if status >= 400:
        raise ResponseError("an HTTP error without an error envelope", status=status)
    if "result" not in data:
        raise ResponseError("a JSON object with neither result nor error", status=status)
    if not 200 <= status < 300:
        raise ResponseError("a result with a non-2xx status", status=status)
    return Envelope(
        result=data["result"],
        time=TimeInfo.from_wire(data.get("time")),
        total=_count(data.get("total"), "total", status),
        next=_count(data.get("next"), "next", status),
        request_id=request_id_of(headers),
    )


def _section(container: Mapping[str, Any], name: str) -> dict[str, Any]:
    """One section of a batch result, keyed by command id as text.

    PHP serialises an empty array as ``[]`` and an array with keys 0..n-1 as a JSON list, so a
    section may be missing, ``[]``, an object, or a list whose index is the key
    (docs/portal.md#batch;
    JS types every section ``T[] | Record<key, T>``).
    """
    value = container.get(name)
    if value is None:
        return {}
    if isinstance(value, list):
        return {str(index): item for index, item in enumerate(value)}
    if isinstance(value, dict):
        # A decoded JSON object's keys are strings already: no copy (nothing here changes it).
        return value
    raise ResponseError(f"batch section {name} is {_kind(value)}", status=200)


def _command_error(
    key: str,
    value: object,
    methods: Mapping[str, str] | None,
    secrets: tuple[str, ...],
    request_id: str | None,
) -> ApiError:
    method = methods.get(key) if methods is not None else None
    if isinstance(value, Mapping):
        code, description = _error_parts(value)
    elif isinstance(value, str):
        # JS types result_error values as string-or-object. A bare string shaped like a code
        # (§4.1) is taken as the code; any other text as the description of an empty code.
        code, description = (value, "") if _CODE_LIKE.fullmatch(value) else ("", value)
    else:
        code, description = _wire_text(value), ""
    # status None: the batch call itself answered 200 (docs/portal.md#batch).
    return _portal_error(
        code, description, status=None, method=method, secrets=secrets, request_id=request_id
    )


def split_batch(
    result: object,
    methods: Mapping[str, str] | None = None,
    *,
    secrets: Iterable[str] = (),
    request_id: str | None = None,
) -> BatchReply:
    """Split the ``result`` of a batch reply.

    Args:
        result: the top-level ``result`` of the batch envelope, i.e. the object holding
            ``result``, ``result_error``, ``result_total``, ``result_next``, ``result_time``.
        methods: command key -> REST method, to name the method in each mapped error.
        secrets: the credentials' secrets, blanked out of the commands' error texts.
        request_id: the batch request's ``x-bitrix-ri`` (:func:`request_id_of`), carried by
            every command error.

    Returns:
        The per-command :class:`BatchReply`.

    Raises:
        ResponseError: status 200, on a shape it cannot read (a section that is neither object
            nor list, an unreadable total or next).
    """
    if isinstance(result, list) and not result:
        # An empty PHP array: a batch with no commands.
        result = {}
    if not isinstance(result, dict):
        raise ResponseError(f"batch result is {_kind(result)}, not an object", status=200)

    known = tuple(secrets)
    errors = {
        key: _command_error(key, value, methods, known, request_id)
        for key, value in _section(result, "result_error").items()
    }
    # A failed command should not also be in `result`; if it were, trust the error, so that a
    # write is never reported as done when the portal said it failed.
    results = _section(result, "result")
    if errors:
        results = {key: value for key, value in results.items() if key not in errors}
    totals: dict[str, int] = {}
    for key, value in _section(result, "result_total").items():
        total = _count(value, f"result_total[{key}]", 200)
        if total is not None:
            totals[key] = total
    nexts: dict[str, int] = {}
    for key, value in _section(result, "result_next").items():
        following = _count(value, f"result_next[{key}]", 200)
        if following is not None:
            nexts[key] = following
    # Kept as sent (read on demand): only JSON objects, as TimeInfo.from_wire reads them.
    times = _section(result, "result_time")
    if not all(value.__class__ is dict for value in times.values()):
        times = {key: value for key, value in times.items() if isinstance(value, Mapping)}
    return BatchReply(results=results, errors=errors, totals=totals, nexts=nexts, raw_times=times)
