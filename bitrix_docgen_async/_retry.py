"""Compatibility: :class:`RetryPolicy` now lives with the retry decision in ``core/retry.py``."""

from __future__ import annotations

from bitrix_docgen_async.core.retry import RetryPolicy

__all__ = ["RetryPolicy"]
