"""Resources: one per entity; they validate arguments, build calls and structure results."""

from bitrix_docgen_async.resources.documents import Documents
from bitrix_docgen_async.resources.events import Events
from bitrix_docgen_async.resources.listing import Listing
from bitrix_docgen_async.resources.numerators import Numerators
from bitrix_docgen_async.resources.templates import Templates

__all__ = ["Documents", "Events", "Listing", "Numerators", "Templates"]
