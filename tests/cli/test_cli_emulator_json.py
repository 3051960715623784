"""``bitrix-docgen emulator --json``: credentials for tests in other languages (issue 10 §3).

The emulator runs in one process; a second, separate process (a plain ``python -c`` using only
the standard library, as a test in another language would use its own HTTP client) reads the
JSON line, completes an OAuth refresh and calls the portal with the webhook and with the new
access token.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from bitrix_docgen_async.cli import main

ROOT = Path(__file__).resolve().parents[2]
PIPE = asyncio.subprocess.PIPE

#: The other process: the JSON line on stdin, its findings as one JSON line on stdout.
CHILD = r"""
import json, sys, urllib.error, urllib.parse, urllib.request

info = json.loads(sys.stdin.readline())

def answer(request):
    try:
        with urllib.request.urlopen(request, timeout=20) as reply:
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as failed:
        return failed.code, json.load(failed)

JSON = {"Content-Type": "application/json"}

def post(url, body):
    return answer(urllib.request.Request(url, data=json.dumps(body).encode(), headers=JSON))

def token(**grant):
    query = {"client_id": info["client_id"], "client_secret": info["client_secret"], **grant}
    return answer(info["oauth_url"] + "?" + urllib.parse.urlencode(query))

out = {}
out["webhook"] = post(info["webhook_url"] + "crm.documentgenerator.document.list",
                      {"filter": {"entityTypeId": 2}, "order": {"id": "asc"}})
out["refresh"] = token(grant_type="refresh_token", refresh_token=info["refresh_token"])
out["reused"] = token(grant_type="refresh_token", refresh_token=info["refresh_token"])
out["code"] = token(grant_type="authorization_code", code=info["authorization_code"])
fresh = out["refresh"][1]
out["oauth_call"] = post(fresh["client_endpoint"] + "crm.documentgenerator.document.get",
                         {"id": info["seed"]["document_ids"][0], "auth": fresh["access_token"]})
out["stale_call"] = post(info["client_endpoint"] + "crm.documentgenerator.numerator.list",
                         {"auth": "not-a-token"})
print(json.dumps(out))
"""


async def start(*argv: str) -> tuple[asyncio.subprocess.Process, str]:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bitrix_docgen_async.cli", "emulator", *argv,
        stdout=PIPE, stderr=PIPE, cwd=ROOT,
    )  # fmt: skip
    assert child.stdout is not None
    line = await asyncio.wait_for(child.stdout.readline(), 30)
    return child, line.decode()


async def stop(child: asyncio.subprocess.Process) -> tuple[str, str]:
    child.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(child.communicate(), 30)
    assert child.returncode == 0, err.decode()
    return out.decode(), err.decode()


async def other_process(info_line: str) -> dict[str, Any]:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, stdin=PIPE, stdout=PIPE, stderr=PIPE
    )
    out, err = await asyncio.wait_for(child.communicate(info_line.encode()), 60)
    assert child.returncode == 0, err.decode()
    result: dict[str, Any] = json.loads(out)
    return result


async def test_json_line_serves_an_oauth_refresh_and_calls_from_another_process() -> None:
    emulator, line = await start("--json", "--fast", "--documents", "20")
    try:
        info = json.loads(line)
        assert (
            info["webhook_url"].startswith("http://127.0.0.1:")
            and "/rest/1/" in info["webhook_url"]
        )
        assert info["client_endpoint"] == info["base_url"] + "/rest/"
        assert info["oauth_url"] == info["base_url"] + "/oauth/token/"
        for key in ("client_id", "client_secret", "access_token", "refresh_token"):
            assert isinstance(info[key], str) and info[key], key
        assert info["authorization_code"] and info["application_token"] and info["member_id"]
        assert info["limits"]["scale"] == 100 and info["limits"]["burst"] == 50
        assert len(info["seed"]["document_ids"]) == 20
        assert info["seed"]["entity_ids"] == list(range(1, 21))
        found = await other_process(line)
    finally:
        out, err = await stop(emulator)
    assert out == ""  # the JSON line was the only output
    assert "fake Bitrix24 portal" in err

    status, body = found["webhook"]
    assert status == 200 and body["total"] == 20
    numbers = [row["number"] for row in body["result"]["documents"]]
    assert numbers == [f"DEMO-{n}" for n in range(1, 21)]  # numbered from the start
    status, token = found["refresh"]
    assert status == 200
    assert {token["access_token"], token["refresh_token"]}.isdisjoint(
        {info["access_token"], info["refresh_token"]}
    )
    assert token["client_endpoint"] == info["client_endpoint"]
    assert found["reused"] == [
        400,
        {"error": "invalid_grant", "error_description": "Invalid refresh token"},
    ]
    assert found["code"][0] == 200 and found["code"][1]["access_token"]
    status, body = found["oauth_call"]
    assert status == 200
    assert body["result"]["document"]["id"] == str(info["seed"]["document_ids"][0])
    assert found["stale_call"][0] == 401


async def test_limit_and_pdf_flags_shape_the_portal() -> None:
    emulator, line = await start(
        "--json", "--seed", "demo", "--burst", "3", "--rate", "0.01", "--pdf-delay", "0",
        "--budget", "100", "--window", "200", "--pdf-failure-rate", "0",
    )  # fmt: skip
    try:
        info = json.loads(line)
        assert info["limits"] == {
            "scale": 1.0, "burst": 3, "rate": 0.01, "budget": 100.0, "window": 200.0,
            "pdf_delay": 0.0, "pdf_jitter": 0.0, "pdf_failure_rate": 0.0, "billing": "batch",
        }  # fmt: skip
        assert len(info["seed"]["document_ids"]) == 5
        url = info["webhook_url"] + "crm.documentgenerator.document.get"
        body = json.dumps({"id": info["seed"]["document_ids"][0]})
        script = (
            "import sys, urllib.request, urllib.error\n"
            "for _ in range(4):\n"
            f"    r = urllib.request.Request({url!r}, data={body!r}.encode(),"
            " headers={'Content-Type': 'application/json'})\n"
            "    try:\n"
            "        with urllib.request.urlopen(r, timeout=20) as a:\n"
            "            print(a.status, b'pdfUrl' in a.read())\n"
            "    except urllib.error.HTTPError as e: print(e.code, False)\n"
        )
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, stdout=PIPE, stderr=PIPE
        )
        out, err = await asyncio.wait_for(child.communicate(), 60)
        assert child.returncode == 0, err.decode()
    finally:
        await stop(emulator)
    # three requests fit the bucket, the PDF is there at once, the fourth is refused
    assert out.decode().split("\n")[:4] == ["200 True", "200 True", "200 True", "503 False"]


async def test_a_fault_flag_fails_requests() -> None:
    emulator, line = await start("--json", "--fault", "error_500=1")
    try:
        info = json.loads(line)
        script = (
            "import urllib.request, urllib.error\n"
            "try:\n"
            f"    urllib.request.urlopen(urllib.request.Request({info['webhook_url'] + 'batch'!r},"
            " data=b'{}', headers={'Content-Type': 'application/json'}), timeout=20)\n"
            "except urllib.error.HTTPError as e: print(e.code)\n"
        )
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, stdout=PIPE, stderr=PIPE
        )
        out, err = await asyncio.wait_for(child.communicate(), 60)
        assert child.returncode == 0, err.decode()
    finally:
        await stop(emulator)
    assert out.decode().strip() == "500"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--fault", "boom=0.1"], "expected KIND=RATE"),
        (["--fault", "slow=2"], "share from 0 to 1"),
        (["--fault", "slow=0.7", "--fault", "html_502=0.7"], "add up to"),
        (["--rate", "0"], "expected a number > 0"),
        (["--documents", "0"], "whole number >= 1"),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["emulator", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert message in err and len(err.strip().splitlines()) == 1
