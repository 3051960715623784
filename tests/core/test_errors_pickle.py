"""Every public exception of the package crosses a process boundary intact (issue 11 §10).

Job queues (arq, taskiq, celery) pickle a failed job's error. The classes are discovered by
walking the package, so a new exception class is tested the day it is added: if its
constructor takes something other than a message, it needs a sample in ``SAMPLES``, and the
test says so.
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
import subprocess
import sys
from typing import Any, TypeVar

import pytest

import bitrix_docgen_async
from bitrix_docgen_async import errors
from bitrix_docgen_async.errors import (
    BitrixError,
    ConnectError,
    OutcomeUnknownError,
    ResponseError,
    ServerError,
    TransportError,
)

E = TypeVar("E", bound=BaseException)


def _discover() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(bitrix_docgen_async.__path__, "bitrix_docgen_async."):
        if "._" in info.name:
            continue  # private modules
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
                and not name.startswith("_")
            ):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return [found[key] for key in sorted(found)]


CLASSES = _discover()

#: Constructor arguments of the classes whose constructor is not ``cls(message)``.
SAMPLES: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {
    "ConnectError": (("portal.example:443", 4), {"reason": "connection refused"}),
    "RedirectError": (("https://old.example", "http://new.example", "plain http"), {}),
    "ResponseError": (("not JSON",), {"status": 502, "detail": ("Expecting value",)}),
    "OutcomeUnknownError": (
        ("crm.documentgenerator.document.add", ServerError("500", "boom", status=500)),
        {},
    ),
    "DownloadError": ((1919, "pdf", "the portal refused", 403), {}),
    "PollTimeoutError": (([11, 12, 13],), {}),
    "UsageError": (("bad option",), {"prog": "bitrix-docgen generate"}),
    "InvalidEventError": (("data[FIELDS][ID]", "not a decimal integer"), {}),
    "UnknownEventError": (("ONCRMDEALADD",), {}),
    "UnknownFieldsError": ((5, ["Coment"], {"Coment": ["Comment"]}), {}),
    "PortalError": (("100", "Template not found", 400), {}),
    "OfflineEventsUnavailableError": (("rest_offline_extended", "no confirm mode"), {}),
}


def _make(cls: type[BaseException]) -> BaseException:
    if issubclass(cls, errors.ApiError):
        return cls(
            "SOME_CODE",
            "a description",
            status=400,
            method="crm.documentgenerator.document.get",
            request_id="5f2a9c1e3b",
        )
    args, kwargs = SAMPLES.get(cls.__name__, ((f"{cls.__name__} happened",), {}))
    try:
        return cls(*args, **kwargs)
    except TypeError as exc:  # pragma: no cover - tells what to do when it fails
        pytest.fail(f"{cls.__qualname__} needs a sample in SAMPLES ({exc})")


def round_trip(error: E, protocol: int = pickle.DEFAULT_PROTOCOL) -> E:
    """``error`` pickled and unpickled, as a job queue carries it to another process."""
    copy: E = pickle.loads(pickle.dumps(error, protocol=protocol))  # noqa: S301 - our own bytes
    return copy


def _comparable(value: Any) -> Any:
    """Exceptions compare by type and text (they have no value equality)."""
    if isinstance(value, BaseException):
        return (type(value), str(value), _comparable(vars(value)))
    if isinstance(value, dict):
        return {key: _comparable(item) for key, item in value.items()}
    return value


def test_discovery_finds_the_known_classes() -> None:
    names = {cls.__name__ for cls in CLASSES}
    assert set(errors.__all__) <= names
    assert {"InvalidEventError", "PortalError", "UsageError", "LimiterUnavailableError"} <= names
    assert len(CLASSES) >= len(errors.__all__) + 5


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_every_public_exception_round_trips_through_pickle(cls: type[BaseException]) -> None:
    error = _make(cls)
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        copy = round_trip(error, protocol)
        assert type(copy) is cls
        assert str(copy) == str(error)
        assert copy.args == error.args
        assert _comparable(vars(copy)) == _comparable(vars(error))
        if isinstance(error, BitrixError):
            assert copy.retryable is error.retryable  # type: ignore[attr-defined]


def test_attributes_survive_with_their_values() -> None:
    error = OutcomeUnknownError("crm.documentgenerator.document.add", ConnectError("h:443", 3))
    copy = round_trip(error)
    assert copy.method == "crm.documentgenerator.document.add"
    assert isinstance(copy.cause, ConnectError)
    assert (copy.cause.address, copy.cause.attempts) == ("h:443", 3)
    timeout = round_trip(errors.PollTimeoutError([1, 2]))
    assert timeout.pending == (1, 2)
    assert str(timeout) == "2 document(s) still pending at the deadline"
    download = round_trip(errors.DownloadError(7, "docx", "gone", 404))
    assert (download.document_id, download.kind, download.status) == (7, "docx", 404)
    response = round_trip(ResponseError("odd", status=502, detail=["x"]))
    assert (response.status, response.detail, str(response)) == (502, ("x",), "odd (HTTP 502)")


def test_connect_error_names_host_port_and_attempts_and_may_be_sent_again() -> None:
    error = ConnectError("portal.example:443")
    assert str(error) == "connection refused to portal.example:443 after 1 attempt"
    again = error.with_attempts(11)
    assert str(again) == "connection refused to portal.example:443 after 11 attempts"
    assert (again.address, again.attempts, again.reason) == ("portal.example:443", 11, error.reason)
    # Its docstring: nothing was sent, so even a write may be sent again.
    assert ConnectError.retryable is True
    assert issubclass(ConnectError, TransportError)
    assert TransportError.retryable is False  # the outcome of anything else is unknown


def test_a_foreign_cause_is_neither_quoted_nor_kept() -> None:
    class Foreign(Exception):
        pass

    secret = "https://portal.example/rest/1/k3j4h5g6f7d8s9a0/crm.x"
    error = OutcomeUnknownError("crm.documentgenerator.document.add", Foreign(secret))
    assert secret not in str(error) and "Foreign" in str(error)
    assert isinstance(error.cause, TransportError)
    assert secret.encode() not in pickle.dumps(error)


def test_limiter_unavailable_error_needs_no_redis() -> None:
    code = (
        "import sys\n"
        "sys.modules['redis'] = None  # any import of redis now fails\n"
        "from bitrix_docgen_async import LimiterUnavailableError, BitrixError\n"
        "from bitrix_docgen_async.errors import LimiterUnavailableError as same\n"
        "assert same is LimiterUnavailableError and issubclass(same, BitrixError)\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "ok"


def test_limiter_unavailable_error_keeps_its_old_import_paths() -> None:
    pytest.importorskip("redis")
    from bitrix_docgen_async.redis.backend import LimiterUnavailableError as old
    from bitrix_docgen_async.redis_limiter import LimiterUnavailableError as older

    assert old is older is errors.LimiterUnavailableError
