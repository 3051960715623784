"""Moved to :mod:`bitrix_docgen_async.workflows.polling`; this old path imports the same module."""

import sys

from bitrix_docgen_async.workflows import polling as _moved
from bitrix_docgen_async.workflows.polling import *  # noqa: F403 - the public names, for type checkers

sys.modules[__name__] = _moved
