"""core/ is sans-I/O: importing it must not pull in aiohttp or asyncio."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "bitrix_docgen_async" / "core"


def test_core_imports_neither_aiohttp_nor_asyncio() -> None:
    modules = sorted(p.stem for p in CORE.glob("*.py") if p.stem != "__init__")
    assert modules, "no core modules found"
    package = CORE.parent
    code = (
        "import sys, types\n"
        # Stand in for the package so that its __init__ (which loads the aiohttp client)
        # does not run: what is measured is what core/ itself pulls in.
        + f"pkg = types.ModuleType('bitrix_docgen_async'); pkg.__path__ = [{str(package)!r}]\n"
        + "sys.modules['bitrix_docgen_async'] = pkg\n"
        + "".join(f"import bitrix_docgen_async.core.{m}\n" for m in modules)
        + "bad = [m for m in ('aiohttp', 'asyncio') if m in sys.modules]\n"
        + "print(','.join(bad))\n"
    )
    # A fresh interpreter: pytest itself has imported asyncio already.
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "", f"core pulled in: {out.stdout.strip()}"
