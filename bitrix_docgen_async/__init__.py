"""Asyncio-native client for the Bitrix24 CRM Document Generator."""

from bitrix_docgen_async._version import __version__
from bitrix_docgen_async.core.ratelimit import OperatingBudget, RateLimit

__all__ = ["OperatingBudget", "RateLimit", "__version__"]
