"""Skip a test when what it needs is missing, except in CI, where that fails the run.

``.ci/run`` installs redis-server and the ``dev`` extra (redis-py, taskiq, taskiq-redis); with
``CI`` set (``CI=true``, as CI runs it) a missing one is an error of the setup, not a reason to
skip the tests that prove the shared journal, the shared limiter and the workers.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def in_ci() -> bool:
    """Whether the tests run under CI (``CI`` set to anything but ``0``/``false``/empty)."""
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


def need_module(name: str, reason: str) -> ModuleType:
    """``pytest.importorskip`` outside CI; under CI, the import (its error fails the run)."""
    if in_ci():
        return importlib.import_module(name)
    return pytest.importorskip(name, reason=reason)


def missing(what: str) -> None:
    """Skip for ``what`` outside CI; fail under CI."""
    if in_ci():
        pytest.fail(f"{what} (CI=true: the run needs it; .ci/run installs it)")
    pytest.skip(what)
