"""The portal commands against a FakePortal: generate, lists, wait, download, errors, Ctrl-C.

The portal serves on this test's loop; the command line runs in a worker thread with its own
loop (or, for signals, in a subprocess), exactly as a user would run it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from collections import Counter
from pathlib import Path

import pytest

from bitrix_docgen_async import RateLimit
from bitrix_docgen_async.cli import main
from bitrix_docgen_async.testing import FakePortal
from tests.helpers import PortalFactory

ROOT = Path(__file__).resolve().parents[2]
ENV = "BITRIX_WEBHOOK_URL"


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the command line in a thread; its exit code, stdout and stderr."""
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
async def fake(start_portal: PortalFactory, monkeypatch: pytest.MonkeyPatch) -> FakePortal:
    portal = await start_portal(rate_limit=RateLimit(burst=50, per_second=100.0), pdf_delay=0.05)
    monkeypatch.setenv(ENV, portal.webhook_url)
    return portal


def no_secret(portal: FakePortal, *texts: str) -> None:
    for text in texts:
        assert portal.webhook_code not in text
        assert "token=" not in text and "Machine" not in text


async def test_generate_list_wait_and_download(
    fake: FakePortal, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    numerator = fake.seed_numerator("CLI numbers", "CLI-{NUMBER}")
    template = fake.seed_template("CLI invoice", numerator_id=numerator)
    code, out, err = await cli(
        capsys, "generate", "--template", str(template), "--entity-type", "Deal",
        "--ids", "1-10,3", "--values", '{"Comment": "from the cli"}',
    )  # fmt: skip
    assert code == 0, err
    assert re.search(r"done in this run\s+│ 10 ", out), out
    docs = dict(fake.documents)
    assert Counter(int(d["entityId"]) for d in docs.values()) == Counter(range(1, 11))
    # stored values (a document read back shows only the service ones, protocol.md §8.9)
    assert {d.values["Comment"] for d in fake.state.documents.values()} == {"from the cli"}
    no_secret(fake, out, err)

    code, out, err = await cli(capsys, "templates", "list")
    assert code == 0 and "CLI invoice" in out and "deal" in out, err
    code, out, err = await cli(capsys, "numerators", "list")
    assert code == 0 and "CLI numbers" in out and "CLI-{NUMBER}" in out, err
    code, out, err = await cli(
        capsys, "documents", "list", "--entity-type", "2", "--entity-id", "4"
    )
    assert code == 0, err
    [doc4] = [i for i, d in docs.items() if int(d["entityId"]) == 4]
    assert "deal 4" in out and re.search(rf"│\s+{doc4} │", out) and "Documents (1)" in out
    code, out, err = await cli(capsys, "documents", "list", "--limit", "3")
    assert code == 0 and "Documents (3 of 10)" in out, out

    ids = ",".join(str(i) for i in docs)
    code, out, err = await cli(capsys, "wait", "--ids", ids, "--timeout", "10")
    assert code == 0, out + err
    assert out.count("ready") == 10
    code, out, err = await cli(capsys, "download", "--ids", ids, "--out", str(tmp_path))
    assert code == 0, out + err
    for doc_id in docs:
        saved = tmp_path / f"document-{doc_id}.pdf"
        assert saved.read_bytes() == fake.document_file(doc_id, "pdf")
    code, out, err = await cli(
        capsys, "download", "--ids", str(doc4), "--out", str(tmp_path), "--kind", "docx"
    )
    assert code == 0 and (tmp_path / f"document-{doc4}.docx").exists(), err
    no_secret(fake, out, err)


async def test_generate_to_a_folder_with_a_journal_then_resume(
    fake: FakePortal, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    template = fake.seed_template()
    values = tmp_path / "values.json"
    values.write_text(json.dumps({"Comment": "x"}))
    argv = [
        "generate", "--template", str(template), "--entity-type", "deal", "--ids", "1-25",
        "--values", f"@{values}", "--out", str(tmp_path / "pdf"),
        "--journal", str(tmp_path / "run.db"), "--pdf-first-check", "0.1",
    ]  # fmt: skip
    code, out, err = await cli(capsys, *argv)
    assert code == 0, out + err
    pdfs = sorted((tmp_path / "pdf").glob("*.pdf"))
    assert len(pdfs) == 25 and all(p.read_bytes().startswith(b"%PDF-") for p in pdfs)
    assert "PDFs saved" in out and "25 in" in out
    code, out, err = await cli(capsys, *argv)
    assert code == 0, out + err
    assert "done by an earlier run (journal) │ 25" in out, out
    assert len(fake.documents) == 25
    # the journal belongs to deals: another entity type is refused before anything is sent
    other = [a if a != "deal" else "lead" for a in argv]
    code, out, err = await cli(capsys, *other)
    assert code == 2 and out == "" and len(err.splitlines()) == 1, err
    assert "belongs to another entity type" in err
    (tmp_path / "junk.db").write_text("not sqlite " * 100)
    code, out, err = await cli(capsys, *argv[:-4], "--journal", str(tmp_path / "junk.db"))
    assert code == 2 and "cannot use the journal" in err and len(err.splitlines()) == 1, err


async def test_failed_items_exit_1(
    fake: FakePortal, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    template = fake.seed_template()
    doc = fake.seed_document(template, 2, 1)
    await asyncio.sleep(0.1)  # converted: one look is enough
    code, out, err = await cli(capsys, "wait", "--ids", f"{doc},999", "--timeout", "10")
    assert code == 1
    assert "ready" in out and "NotFoundError" in out and "999" in out
    code, out, err = await cli(capsys, "download", "--ids", f"{doc},999", "--out", str(tmp_path))
    assert code == 1
    assert (tmp_path / f"document-{doc}.pdf").exists() and "NotFoundError" in out
    no_secret(fake, out, err)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, out, _ = await cli(capsys, "download", "--ids", str(doc), "--out", str(blocker / "x"))
    assert code == 1 and "NotADirectoryError" in out, out


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--template", "999"], "template 999 not found"),
        (["--template", "{lead}"], "is bound to lead, not to deal"),
    ],
)
async def test_generate_checks_the_template_first(
    fake: FakePortal, capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    lead = fake.seed_template("Lead only", entity_type_ids=(1,))
    argv = [a.replace("{lead}", str(lead)) for a in argv]
    code, out, err = await cli(capsys, "generate", *argv, "--entity-type", "deal", "--ids", "1-3")
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and says in err, err
    assert len(fake.documents) == 0


async def test_names_are_shown_as_they_are(
    fake: FakePortal, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.seed_template("[bold]Q[/x] & co")
    code, out, err = await cli(capsys, "templates", "list")
    assert code == 0 and "[bold]Q[/x] & co" in out, err


async def test_a_wrong_webhook_code_is_one_line_without_the_code(
    fake: FakePortal, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = fake.webhook_url.replace(fake.webhook_code, "0123456789abcdef")
    code, out, err = await cli(capsys, "templates", "list", "--webhook", wrong)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1, err
    assert "refused the webhook" in err and "NO_AUTH_FOUND" in err
    assert "0123456789abcdef" not in err and fake.webhook_code not in err


async def test_ctrl_c_stops_cleanly_and_the_journal_resumes(tmp_path: Path) -> None:
    add = "crm.documentgenerator.document.add"
    async with FakePortal(
        rate_limit=RateLimit.enterprise(), pdf_delay=0.05, method_costs={add: 0.03}
    ) as portal:
        template = portal.seed_template()
        argv = [
            sys.executable, "-m", "bitrix_docgen_async.cli", "generate", "--plan", "enterprise",
            "--template", str(template), "--entity-type", "deal", "--ids", "1-120",
            "--out", str(tmp_path / "pdf"), "--journal", str(tmp_path / "run.db"),
            "--pdf-first-check", "0.1",
        ]  # fmt: skip
        env = {**os.environ, ENV: portal.webhook_url}
        pipe = asyncio.subprocess.PIPE
        child = await asyncio.create_subprocess_exec(
            *argv, stdout=pipe, stderr=pipe, env=env, cwd=ROOT
        )
        for _ in range(1500):  # up to 30 s for the run to get under way
            if len(portal.documents) >= 10:
                break
            await asyncio.sleep(0.02)
        assert 0 < len(portal.documents) < 120, "the run should be under way"
        child.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(child.communicate(), 30)
        text = out.decode() + err.decode()
        assert child.returncode == 130, text
        assert "Traceback" not in text and portal.webhook_code not in text
        assert (
            "the journal" in text
            and "is consistent: run the same command" in text
            and "interrupted (SIGINT)" in text
        )

        child = await asyncio.create_subprocess_exec(
            *argv, stdout=pipe, stderr=pipe, env=env, cwd=ROOT
        )
        out, err = await asyncio.wait_for(child.communicate(), 60)
        assert child.returncode == 0, out.decode() + err.decode()
        counts = Counter(int(d["entityId"]) for d in portal.documents.values())
        assert counts == Counter(range(1, 121))
        assert len(list((tmp_path / "pdf").glob("document-*.pdf"))) == 120
        assert not list((tmp_path / "pdf").glob("*.part"))
