"""The workflows built on the client's calls: PDF polling, downloads, bulk generation, journals.

* :mod:`~bitrix_docgen_async.workflows.polling` -- one loop polls every document waiting for its
  PDF, 50 per batched request (docs/portal.md#pdf-conversion).
* :mod:`~bitrix_docgen_async.workflows.download` -- streaming, atomic, checked downloads of the
  ``*Machine`` URLs (docs/portal.md#machine-urls-and-downloads).
* :mod:`~bitrix_docgen_async.workflows.bulk` (+ ``bulk_progress``) -- ``generate_many``.
* :mod:`~bitrix_docgen_async.workflows.journal` -- the journal protocol and its SQLite form.

The old module paths (``bitrix_docgen_async.workflows.bulk`` and so on) still import, as the same
modules.
"""
