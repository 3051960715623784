"""Typed, immutable models of what the document generator returns.

The models carry no wire knowledge; :mod:`bitrix_docgen_async.core.convert` reads the portal's
JSON into them.
"""

from bitrix_docgen_async.models.common import EntityType, Page
from bitrix_docgen_async.models.documents import Document, FieldDescription, ProductsSummary
from bitrix_docgen_async.models.events import DocumentEvent, DocumentEventType, EventBinding
from bitrix_docgen_async.models.numerators import Numerator, SequentSettings
from bitrix_docgen_async.models.templates import Template

__all__ = [
    "Document",
    "DocumentEvent",
    "DocumentEventType",
    "EntityType",
    "EventBinding",
    "FieldDescription",
    "Numerator",
    "Page",
    "ProductsSummary",
    "SequentSettings",
    "Template",
]
