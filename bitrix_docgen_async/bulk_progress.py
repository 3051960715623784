"""Moved to :mod:`bitrix_docgen_async.workflows.bulk_progress`; this old path imports the same
module."""

import sys

from bitrix_docgen_async.workflows import bulk_progress as _moved
from bitrix_docgen_async.workflows.bulk_progress import *  # noqa: F403 - the public names, for type checkers

sys.modules[__name__] = _moved
