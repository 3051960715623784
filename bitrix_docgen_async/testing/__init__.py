"""An in-process fake Bitrix24 portal for tests, benchmarks and the demo.

```python
async with FakePortal(rate_limit=RateLimit(burst=50, per_second=2.0)) as portal:
    url = portal.webhook_url + "crm.documentgenerator.numerator.list"
```

Further methods are added on ``portal.registry`` (see :class:`MethodRegistry`).
:func:`build_docx` makes a real ``.docx`` to use as a template file.
"""

from bitrix_docgen_async.testing.delivery import DeliveryOutcome, EventDelivery
from bitrix_docgen_async.testing.faults import FAULT_KINDS, Faults
from bitrix_docgen_async.testing.files import build_docx
from bitrix_docgen_async.testing.oauth import OAuthCredentials
from bitrix_docgen_async.testing.portal import FakePortal
from bitrix_docgen_async.testing.records import EventBinding, PendingEvent
from bitrix_docgen_async.testing.state import (
    AuthInfo,
    CallContext,
    MethodRegistry,
    PortalError,
    PortalState,
    PortalStats,
    paginate,
)

__all__ = [
    "FAULT_KINDS",
    "AuthInfo",
    "CallContext",
    "DeliveryOutcome",
    "EventBinding",
    "EventDelivery",
    "FakePortal",
    "Faults",
    "MethodRegistry",
    "OAuthCredentials",
    "PendingEvent",
    "PortalError",
    "PortalState",
    "PortalStats",
    "build_docx",
    "paginate",
]
