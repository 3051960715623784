"""``bitrix-docgen demo --fast``: a bulk run on the embedded portal, PDFs on disk, a summary."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bitrix_docgen_async.cli import main
from bitrix_docgen_async.cli.demo import lower_bound
from bitrix_docgen_async.cli.presets import FAST, REALISTIC


def test_demo_fast_writes_valid_pdfs_and_a_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--fast", "-n", "20"]) == 0
    out, err = capsys.readouterr()
    pdfs = sorted((tmp_path / "docgen-demo").glob("*.pdf"))
    assert len(pdfs) == 20
    assert all(p.read_bytes().startswith(b"%PDF-") for p in pdfs)
    assert not list((tmp_path / "docgen-demo").glob("*.part"))
    assert "Summary" in out
    assert re.search(r"documents generated\s+│ 20", out), out
    assert re.search(r"PDFs saved \(valid %PDF-\)\s+│ 20 of 20", out), out
    assert re.search(r"refused by the portal \(503 / 429\)\s+│ 0 / 0", out), out
    assert "portal's lower bound" in out and "wall time" in out
    # the live progress went to stderr; no secret went anywhere
    assert "downloaded" in err and "20/20" in err
    assert "/rest/1/" not in out + err


def test_lower_bound_of_the_limits() -> None:
    # 250 requests at burst 50 and 2/s: 100 s; 400 adds of 1.5 s (600 s) against 480 s per 600 s
    bound = lower_bound(REALISTIC, requests=250, adds=400)
    assert bound.requests == pytest.approx(100.0)
    assert bound.budget == pytest.approx((600 - 480) / 0.8)
    assert bound.conversion == 8.0 and bound.total == pytest.approx(150.0)
    fast = lower_bound(FAST, requests=30, adds=20)
    assert fast.requests == 0.0 and fast.budget == 0.0
    assert fast.total == pytest.approx(0.08)  # the shortest conversion, (24 - 16) s / 100
