"""Moved to :mod:`bitrix_docgen_async.workflows.bulk`; this old path imports the same module."""

import sys

from bitrix_docgen_async.workflows import bulk as _moved
from bitrix_docgen_async.workflows.bulk import *  # noqa: F403 - the public names, for type checkers

sys.modules[__name__] = _moved
