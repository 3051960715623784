"""``bitrix-docgen``: the command line of bitrix_docgen_async (install the ``[cli]`` extra).

```text
bitrix-docgen demo [-n 200] [--fast] [--out ./docgen-demo]
bitrix-docgen generate --template ID --entity-type deal --ids 1-500,7,9
                       [--values JSON|@file.json] [--wait-pdf] [--out DIR] [--journal FILE]
                       [--json] [--give-up-after 180] [--progress-every 30]
                       [--plan standard|enterprise|fast] [--rate R] [--burst N]
                       [--budget S] [--window S]
bitrix-docgen wait --ids 10-20 [--timeout 300]
bitrix-docgen download --ids 10-20 --out DIR [--kind pdf|docx|image]
bitrix-docgen templates list | numerators list
bitrix-docgen documents list [--entity-type deal] [--entity-id 7] [--template ID] [--limit 50]
bitrix-docgen emulator [--port P] [--host 127.0.0.1] [--seed demo] [--fast]
```

The portal commands use ``--webhook URL`` or ``$BITRIX_WEBHOOK_URL`` (better: arguments are
visible to other users in ``ps``); the URL is never printed. ``demo`` runs against an embedded
fake portal and ``emulator`` serves one for tests in other languages. Entity types are given by
name (``deal``, ``smart_invoice``, any case) or number; ids as ``1-500,7,9`` (overlaps merged,
processed in ascending order).

Exit codes: 0 ok; 1 some items failed; 2 the command could not run as given (usage error,
missing webhook, refused credentials, a wrong template, an unwritable ``--out``, missing
``rich``), before any document is created; 3 the portal did not answer for ``--give-up-after``
seconds while requests failed (``generate``); 130 (143) interrupted by Ctrl-C (SIGTERM), after a
clean stop: a ``--journal`` run resumes where it stopped. Errors are one line on stderr.
"""

from bitrix_docgen_async.cli.app import main

__all__ = ["main"]
