"""``python -m bitrix_docgen_async.cli``: the same as the ``bitrix-docgen`` command."""

from bitrix_docgen_async.cli import main

raise SystemExit(main())
