"""The command line's value parsers and its usage errors (one line on stderr, exit code 2)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

from bitrix_docgen_async.cli import main
from bitrix_docgen_async.cli.errors import redact
from bitrix_docgen_async.cli.ranges import IdRanges, entity_type, json_values, parse_ids

SECRET = "s3cr3tc0de"
HOOK = f"https://portal.example.com/rest/1/{SECRET}/"


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("7", [7]),
        ("1-5", [1, 2, 3, 4, 5]),
        ("1-5,7,9", [1, 2, 3, 4, 5, 7, 9]),
        ("9,7,1-3", [1, 2, 3, 7, 9]),
        (" 3 - 4 , 1 ", [1, 3, 4]),
        ("1-500,7,9", list(range(1, 501))),
        ("5-5,4-6,6", [4, 5, 6]),
    ],
)
def test_ids_are_merged_ascending_and_unique(text: str, ids: list[int]) -> None:
    parsed = parse_ids(text)
    assert list(parsed) == ids
    assert len(parsed) == len(ids)


def test_a_huge_range_costs_nothing() -> None:
    parsed = parse_ids("1-1000000000,5")
    assert len(parsed) == 1_000_000_000
    assert parsed.spans == ((1, 1_000_000_000),)
    assert repr(IdRanges([(3, 3), (1, 2)])) == "IdRanges('1-3')"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "an empty item"),
        ("1,,2", "an empty item"),
        ("a-b", "'a-b' is not an id or a range"),
        ("1-", "'1-' is not an id or a range"),
        ("-3", "'-3' is not an id or a range"),
        ("0", "ids start at 1"),
        ("5-1", "'5-1' runs backwards"),
        ("1.5", "'1.5' is not an id"),
    ],
)
def test_bad_ids(text: str, says: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=says):
        parse_ids(text)


@pytest.mark.parametrize(
    ("text", "type_id"),
    [("deal", 2), ("DEAL", 2), ("Lead", 1), ("smart_invoice", 31), ("Smart-Invoice", 31),
     ("quote", 7), ("2", 2), ("177", 177)],
)  # fmt: skip
def test_entity_types_by_name_or_number(text: str, type_id: int) -> None:
    assert entity_type(text) == type_id


@pytest.mark.parametrize(
    ("text", "says"), [("dael", "unknown entity type 'dael'"), ("0", "must be > 0"), ("6", "6")]
)
def test_bad_entity_types(text: str, says: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=says):
        entity_type(text)


def test_values_inline_or_from_a_file(tmp_path: Path) -> None:
    assert json_values('{"Comment": "x", "Sum": 5}') == {"Comment": "x", "Sum": 5}
    file = tmp_path / "v.json"
    file.write_text('{"Comment": "ü"}', encoding="utf-8")
    assert json_values(f"@{file}") == {"Comment": "ü"}
    with pytest.raises(argparse.ArgumentTypeError, match="invalid JSON"):
        json_values("{Comment: x}")
    with pytest.raises(argparse.ArgumentTypeError, match="expected a JSON object"):
        json_values("[1, 2]")
    with pytest.raises(argparse.ArgumentTypeError, match="cannot read"):
        json_values(f"@{tmp_path / 'missing.json'}")


def test_redact_hides_webhook_codes_and_tokens() -> None:
    text = f"unrecognized arguments: {HOOK}crm.x?auth=abc&token=def.ghi\nnext line"
    cleaned = redact(text)
    assert SECRET not in cleaned and "abc" not in cleaned and "def.ghi" not in cleaned
    assert "/rest/1/***/" in cleaned and "\n" not in cleaned


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and SECRET not in err
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["generate", "--template", "1", "--entity-type", "deal", "--ids", "5-1"], "backwards"),
        (["generate", "--template", "1", "--entity-type", "dael", "--ids", "1"], "unknown entity"),
        (["generate", "--template", "x", "--entity-type", "deal", "--ids", "1"], "--template"),
        (["generate", "--template", "1", "--entity-type", "deal"], "--ids"),
        (
            ["generate", "--template", "1", "--entity-type", "deal", "--ids", "1", "--values", "{"],
            "argument --values: invalid JSON",
        ),
        (["download", "--ids", "1"], "--out"),
        (["download", "--ids", "1", "--out", ".", "--kind", "xls"], "invalid choice: 'xls'"),
        (["templates"], "ACTION"),
        (["demo", "-n", "0"], "expected a whole number >= 1"),
        (["emulator", "--port", "70000"], "expected a port"),
        (["numerators", "list", "--webhok", HOOK], "unrecognized arguments"),
    ],
)
def test_usage_errors_are_one_line_with_exit_code_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    line = one_line_error(capsys, argv)
    assert line.startswith("bitrix-docgen"), line
    assert ": error: " in line and says in line, line


def test_missing_webhook(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BITRIX_WEBHOOK_URL", raising=False)
    line = one_line_error(capsys, ["numerators", "list"])
    assert "no webhook: pass --webhook URL or set BITRIX_WEBHOOK_URL" in line


@pytest.mark.parametrize(
    "url",
    [
        f"http://portal.example.com/rest/1/{SECRET}/",  # plain http off loopback
        f"https://portal.example.com/rest/x/{SECRET}/",
        f"https://portal.example.com/{SECRET}/",
    ],
)
def test_a_malformed_webhook_is_not_echoed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("BITRIX_WEBHOOK_URL", url)
    line = one_line_error(capsys, ["templates", "list"])
    assert "webhook URL must" in line


def test_help_and_version_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "emulator" in capsys.readouterr().out
    assert main(["generate", "--help"]) == 0
    assert "--journal" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("bitrix-docgen ")


def test_without_rich_one_line_names_the_extra(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "rich", None)
    line = one_line_error(capsys, ["demo", "--fast", "-n", "1", "--out", str(tmp_path)])
    assert "pip install 'bitrix_docgen_async[cli]'" in line
    assert not list(tmp_path.iterdir())


def test_the_library_does_not_import_rich() -> None:
    import subprocess

    code = (
        "import sys, bitrix_docgen_async, bitrix_docgen_async.testing, bitrix_docgen_async.cli;"
        "print('rich' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "False"
