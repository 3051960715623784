"""Moved to :mod:`bitrix_docgen_async.workflows.bulk_progress`; this old path imports the same
module."""

import sys

from bitrix_docgen_async.workflows import bulk_progress as _moved

sys.modules[__name__] = _moved
