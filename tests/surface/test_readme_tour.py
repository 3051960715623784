"""The README's tour runs as written and finishes without idle polling (issue 16).

The code block under "## Tour" is taken from README.md and run in a temporary folder. No
wall-clock assert (the machine may be loaded): the tour's own ``print(client.stats)`` shows how
many HTTP requests it made, and one poll round is all a 1 s conversion needs when the first look
comes at the conversion time.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bitrix_docgen_async import PollSchedule

README = Path(__file__).resolve().parents[2] / "README.md"


def tour_code() -> str:
    match = re.search(r"^## Tour\n\n```python\n(.*?)^```", README.read_text(), re.S | re.M)
    assert match is not None, "README.md has no python block under '## Tour'"
    return match.group(1)


def test_the_tour_polls_once_and_downloads_the_pdf(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = tour_code()
    assert "FakePortal(pdf_delay=1.0)" in code and "pdf_schedule=" in code
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "tour"}
    exec(compile(code, str(README), "exec"), namespace)  # noqa: S102
    schedule = namespace["FAKE_PDF_SCHEDULE"]
    assert isinstance(schedule, PollSchedule)
    # Within 2 x the PDF delay even if the first look came a moment too early: the first look
    # at the delay, the next one a (jittered) interval later.
    assert schedule.min_conversion >= 1.0
    assert schedule.min_conversion + schedule.interval * (1 + schedule.jitter) < 2 * 1.0
    out = capsys.readouterr().out
    number, path, stats = out.split(" ", 2)
    assert number == "INV-1"
    pdf = tmp_path / path
    assert pdf.read_bytes().startswith(b"%PDF-")
    counts = dict(re.findall(r"(\w+)=(\d+)", stats))
    # numerator.add, template.add, document.add, ONE document.get round, the PDF's GET.
    assert int(counts["http_requests"]) == 5, stats
    assert int(counts["downloads"]) == 1
    assert int(counts["retries"]) == 0
