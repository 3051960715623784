"""``bitrix-docgen generate`` run unattended: plain progress, ``--json``, limits, exit codes.

The fake portal serves on this test's loop; the command line runs in a worker thread with its
own loop (``main()`` in-process, with capsys: stderr is not a terminal) or, where a pipe or a
signal matters, in a subprocess. Exit codes: 0 ok, 1 some entity failed, 2 usage or
configuration error, 3 unreachable (on an injected clock: no real waiting), 130/143 signals.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from bitrix_docgen_async import OperatingBudget, RateLimit
from bitrix_docgen_async.cli import main
from bitrix_docgen_async.cli.commands import GIVE_UP_AFTER, limits_of
from bitrix_docgen_async.cli.errors import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_SIGTERM,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
)
from bitrix_docgen_async.cli.parser import build_parser
from bitrix_docgen_async.testing import FakePortal
from tests.helpers import FakeClock, PortalFactory

ROOT = Path(__file__).resolve().parents[2]
ENV = "BITRIX_WEBHOOK_URL"
ADD = "crm.documentgenerator.document.add"
#: Limits the test portal enforces and the command is told about (fast plan, our figures).
FLAGS = ["--plan", "fast", "--burst", "50", "--rate", "100"]


async def cli(
    capsys: pytest.CaptureFixture[str], *argv: str, **inject: object
) -> tuple[int, str, str]:
    """Run the command line in a thread; its exit code, stdout and stderr."""
    code = await asyncio.to_thread(lambda: main(list(argv), **inject))  # type: ignore[arg-type]
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
async def fake(start_portal: PortalFactory, monkeypatch: pytest.MonkeyPatch) -> FakePortal:
    portal = await start_portal(rate_limit=RateLimit(burst=50, per_second=100.0), pdf_delay=0.05)
    monkeypatch.setenv(ENV, portal.webhook_url)
    return portal


def no_secret(portal: FakePortal, *texts: str) -> None:
    for text in texts:
        assert portal.webhook_code not in text and portal.webhook_url not in text
        assert "token=" not in text and "Machine" not in text


def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_piped_output_gets_plain_progress_lines(tmp_path: Path) -> None:
    async with FakePortal(
        rate_limit=RateLimit(burst=50, per_second=100.0),
        pdf_delay=0.05,
        method_costs={ADD: 0.002},
    ) as portal:
        template = portal.seed_template()
        argv = [
            sys.executable, "-m", "bitrix_docgen_async.cli", "generate", *FLAGS,
            "--template", str(template), "--entity-type", "deal", "--ids", "1-200",
            "--wait-pdf",
        ]  # fmt: skip
        pipe = asyncio.subprocess.PIPE
        child = await asyncio.create_subprocess_exec(
            *argv, stdout=pipe, stderr=pipe, env={**os.environ, ENV: portal.webhook_url}, cwd=ROOT
        )
        out, err = await asyncio.wait_for(child.communicate(), 60)
    text = err.decode()
    assert child.returncode == EXIT_OK, out.decode() + text
    no_secret(portal, out.decode(), text)
    assert "lower bound" in text and "ETA at least" in text and "bucket 50 at 100/s" in text
    lines = [line for line in text.splitlines() if line.startswith("progress: ")]
    done = [int(re.match(r"progress: (\d+)/200 ", line)[1]) for line in lines]  # type: ignore[index]
    # a line every 5 % (200 entities: every 10), in order, the last one at 100 %
    assert len(lines) >= 20 and done == sorted(done) and done[-1] == 200, text
    assert all(f"{step}/200" in text for step in range(10, 201, 10))
    assert re.search(r"failed 0 · added \d+ · [\d.]+/s · ETA \d", lines[0]), lines[0]
    assert "\x1b[" not in text and "━" not in text  # no terminal drawing in a pipe
    assert re.search(r"done in this run\s+│ 200 ", out.decode())


async def test_progress_lines_also_come_with_time(
    start_portal: PortalFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    # every entity waits for a PDF that takes 1.5 s: lines by time while none is done
    slow = await start_portal(rate_limit=None, pdf_delay=1.5)
    template = slow.seed_template()
    code, _, err = await cli(
        capsys, "generate", *FLAGS, "--webhook", slow.webhook_url, "--template",
        str(template), "--entity-type", "deal", "--ids", "1-3", "--wait-pdf",
        "--pdf-first-check", "1.5", "--progress-every", "0.2",
    )  # fmt: skip
    assert code == EXIT_OK, err
    waiting = [line for line in err.splitlines() if line.startswith("progress: 0/3 (0%)")]
    assert len(waiting) >= 3 and "ETA unknown" in waiting[0], err


async def test_json_lines_match_the_portals_documents(
    fake: FakePortal, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    numerator = fake.seed_numerator("Ops", "OPS-{NUMBER}")
    template = fake.seed_template(numerator_id=numerator)
    out_dir = tmp_path / "not" / "yet" / "there"
    code, out, err = await cli(
        capsys, "generate", *FLAGS, "--template", str(template), "--entity-type", "deal",
        "--ids", "1-30", "--out", str(out_dir), "--json",
    )  # fmt: skip
    assert code == EXIT_OK, err
    no_secret(fake, out, err)
    records = [json.loads(line) for line in out.splitlines()]  # stdout holds only JSON lines
    assert sorted(r["entity_id"] for r in records) == list(range(1, 31))
    stored = fake.documents
    for record in records:
        doc = stored[record["document_id"]]
        assert int(doc["entityId"]) == record["entity_id"] and record["entity_type_id"] == 2
        assert record["number"] == doc["number"] and record["number"].startswith("OPS-")
        assert record["ok"] is True and record["error"] is None and record["skipped"] is False
        path = Path(record["pdf_path"])
        assert path.parent == out_dir and path.read_bytes().startswith(b"%PDF-")
    assert len(stored) == 30 and "Summary" in err  # the summary goes to stderr


async def test_identical_errors_are_counted_once_and_exit_1(
    start_portal: PortalFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    failing = await start_portal(
        rate_limit=RateLimit(burst=50, per_second=100.0), pdf_delay=0.05, pdf_failure_rate=1.0
    )
    template = failing.seed_template()
    code, out, err = await cli(
        capsys, "generate", *FLAGS, "--webhook", failing.webhook_url, "--template",
        str(template), "--entity-type", "deal", "--ids", "1-40", "--wait-pdf", "--json",
    )  # fmt: skip
    assert code == EXIT_FAILED, err
    no_secret(failing, out, err)
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 40 and not any(r["ok"] for r in records)
    classes = Counter(r["error"]["class"] for r in records)
    [(name, count)] = classes.items()
    assert count == 40 and records[0]["document_id"] in failing.documents
    # one row for the 40 errors that differ only in their ids, printed once
    assert "Errors (40 entities, 1 distinct)" in err, err
    assert re.search(rf"│\s+40 │ {name}: document {{document}}: ", err), err
    assert err.count("TRANSFORMATION_FAILED") == 1, err
    for record in records:  # --json keeps each entity's own message
        assert f"document {record['document_id']}:" in record["error"]["message"]


async def test_unreachable_portal_exits_3_after_give_up_on_the_injected_clock(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cr3tc0de0123"
    monkeypatch.setenv(ENV, f"http://127.0.0.1:{closed_port()}/rest/1/{secret}/")
    for extra, give_up in (([], GIVE_UP_AFTER), (["--give-up-after", "900"], 900.0)):
        clock = FakeClock()
        started_at = clock()

        async def sleep(seconds: float, clock: FakeClock = clock) -> None:
            clock.advance(seconds)
            await asyncio.sleep(0)

        began = time.monotonic()
        code, out, err = await cli(
            capsys, "generate", "--template", "1", "--entity-type", "deal", "--ids", "1-500",
            *extra, clock=clock, sleep=sleep,
        )  # fmt: skip
        assert code == EXIT_UNREACHABLE, out + err
        assert clock() - started_at >= give_up  # it waited the whole --give-up-after ...
        assert time.monotonic() - began < 20  # ... on the injected clock, not in real time
        assert f"has not answered for {give_up:g} s" in err
        assert "500 of 500 entities not done (exit 3)" in err
        assert secret not in out + err and len(err.splitlines()) == 1, err


async def test_a_portal_lost_mid_run_exits_3(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    portal = FakePortal(rate_limit=RateLimit(burst=50, per_second=100.0), method_costs={ADD: 0.01})
    await portal.start()
    template = portal.seed_template()
    monkeypatch.setenv(ENV, portal.webhook_url)
    clock = FakeClock()

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)
        await asyncio.sleep(0)

    argv = [
        "generate", *FLAGS, "--template", str(template), "--entity-type", "deal",
        "--ids", "1-2000", "--give-up-after", "60",
    ]  # fmt: skip
    run = asyncio.create_task(cli(capsys, *argv, clock=clock, sleep=sleep))
    try:
        for _ in range(1500):  # up to 30 s for the run to get under way
            if len(portal.documents) >= 100 or run.done():
                break
            await asyncio.sleep(0.02)
        assert 100 <= len(portal.documents) < 2000, "the run should be under way"
        assert not run.done(), "a healthy run must not give up, however fast the clock runs"
    finally:
        await portal.close()
    code, out, err = await asyncio.wait_for(run, 60)
    assert code == EXIT_UNREACHABLE, out + err
    made = len(portal.documents)
    assert re.search(r"giving up with \d+ of 2000 entities not done", err), err
    assert re.search(r"entities\s+│ \d+ of 2000", out), out
    assert made < 2000 and "--journal makes runs resumable" in err
    no_secret(portal, out, err)


async def test_waiting_on_the_limits_is_not_giving_up(
    start_portal: PortalFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    # the injected clock races ahead (every watchdog look adds a second) while the client
    # waits for its bucket: no request fails, so the run is not given up
    portal = await start_portal(rate_limit=RateLimit(burst=2, per_second=20.0), pdf_delay=0.02)
    template = portal.seed_template()
    clock = FakeClock()

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)
        await asyncio.sleep(0)

    code, out, err = await cli(
        capsys, "generate", "--plan", "fast", "--burst", "2", "--rate", "20", "--webhook",
        portal.webhook_url, "--template", str(template), "--entity-type", "deal", "--ids",
        "1-60", "--wait-pdf", "--give-up-after", "1", clock=clock, sleep=sleep,
    )  # fmt: skip
    assert code == EXIT_OK, out + err
    assert clock() - 1000.0 > 1 and len(portal.documents) == 60


@pytest.mark.parametrize("blocked", ["a-file/out", "a-file"])
async def test_unwritable_out_exits_2_before_any_document(
    fake: FakePortal, capsys: pytest.CaptureFixture[str], tmp_path: Path, blocked: str
) -> None:
    template = fake.seed_template()
    (tmp_path / "a-file").write_text("not a folder")
    before = fake.stats.requests
    code, out, err = await cli(
        capsys, "generate", *FLAGS, "--template", str(template), "--entity-type", "deal",
        "--ids", "1-10", "--out", str(tmp_path / blocked),
    )  # fmt: skip
    assert code == EXIT_USAGE and out == "", err
    assert len(err.splitlines()) == 1 and "--out" in err and "cannot write there" in err, err
    assert fake.stats.by_method[ADD] == 0 and fake.stats.requests == before
    assert len(fake.documents) == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
async def test_read_only_out_exits_2(
    fake: FakePortal, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    template = fake.seed_template()
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o500)
    code, _, err = await cli(
        capsys, "generate", *FLAGS, "--template", str(template), "--entity-type", "deal",
        "--ids", "1-10", "--out", str(folder),
    )  # fmt: skip
    assert code == EXIT_USAGE and "Permission denied" in err, err
    assert fake.stats.by_method[ADD] == 0 and list(folder.iterdir()) == []


def test_limit_flags_override_the_plan() -> None:
    parse = build_parser().parse_args
    standard = limits_of(parse(["templates", "list"]))
    assert (standard.rate_limit, standard.budget) == (RateLimit.standard(), OperatingBudget())
    enterprise = limits_of(parse(["templates", "list", "--plan", "enterprise"]))
    assert enterprise.rate_limit == RateLimit.enterprise()
    custom = limits_of(
        parse(["templates", "list", "--plan", "fast", "--rate", "7", "--budget", "3"])
    )
    assert custom.rate_limit == RateLimit(burst=50, per_second=7.0)
    assert custom.budget == OperatingBudget(limit_s=3.0, window_s=6.0)
    both = limits_of(parse(["templates", "list", "--burst", "5", "--window", "60"]))
    assert both.rate_limit == RateLimit(burst=5, per_second=2.0)
    assert both.budget == OperatingBudget(limit_s=480.0, window_s=60.0)


@pytest.mark.parametrize(
    ("flags", "refused"),
    [
        (["--plan", "fast", "--burst", "2", "--rate", "20"], False),  # the portal's limits
        (["--plan", "fast"], True),  # a bucket of 50 at 200/s against one of 2 at 20/s
    ],
)
async def test_limit_flags_reach_the_client(
    start_portal: PortalFactory,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    refused: bool,
) -> None:
    portal = await start_portal(
        rate_limit=RateLimit(burst=2, per_second=20.0), operating_budget=None, pdf_delay=0.02
    )
    template = portal.seed_template()
    code, out, err = await cli(
        capsys, "generate", *flags, "--webhook", portal.webhook_url, "--template",
        str(template), "--entity-type", "deal", "--ids", "1-12,20-30", "--wait-pdf",
        "--pdf-first-check", "0.02",
    )  # fmt: skip
    assert code == EXIT_OK, out + err
    assert len(portal.documents) == 23
    assert (portal.stats.rejected_rate_limit > 0) is refused, portal.stats


async def test_sigterm_exits_143(tmp_path: Path) -> None:
    async with FakePortal(
        rate_limit=RateLimit.enterprise(), pdf_delay=0.05, method_costs={ADD: 0.03}
    ) as portal:
        template = portal.seed_template()
        argv = [
            sys.executable, "-m", "bitrix_docgen_async.cli", "generate", "--plan", "enterprise",
            "--template", str(template), "--entity-type", "deal", "--ids", "1-400",
            "--journal", str(tmp_path / "run.db"),
        ]  # fmt: skip
        pipe = asyncio.subprocess.PIPE
        child = await asyncio.create_subprocess_exec(
            *argv, stdout=pipe, stderr=pipe, env={**os.environ, ENV: portal.webhook_url}, cwd=ROOT
        )
        for _ in range(1500):  # up to 30 s for the run to get under way
            if len(portal.documents) >= 10:
                break
            await asyncio.sleep(0.02)
        assert 0 < len(portal.documents) < 400, "the run should be under way"
        child.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(child.communicate(), 30)
    text = out.decode() + err.decode()
    assert child.returncode == EXIT_SIGTERM, text
    assert "interrupted (SIGTERM)" in text and "Traceback" not in text
    assert portal.webhook_code not in text
