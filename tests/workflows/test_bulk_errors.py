"""generate_many reports every entity's failure as one of the library's own errors.

``GenerationResult.error`` is typed ``BitrixError | None``: a refused id or value, a file that
cannot be written and a bug each have their own class, keep the standard class they replace as
a base (``ValueError``, ``OSError``) and carry the original as ``__cause__``; each one pickles,
as a job queue would carry it.
"""

from __future__ import annotations

import errno
import logging
import pickle
from pathlib import Path
from typing import Any

import pytest

from bitrix_docgen_async import (
    BitrixError,
    DocgenClient,
    GenerationResult,
    InternalError,
    InvalidEntityError,
    StorageError,
)
from bitrix_docgen_async.models import Document
from bitrix_docgen_async.testing import FakePortal
from tests.helpers import generate

ADD = "crm.documentgenerator.document.add"


def by_entity(results: list[GenerationResult]) -> dict[int, BitrixError | None]:
    return {r.entity_id: r.error for r in results}


def round_trip(error: BitrixError) -> BitrixError:
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert type(copy) is type(error) and str(copy) == str(error)
    return copy  # type: ignore[no-any-return]


async def test_bad_and_repeated_ids_are_invalid_entities(
    client: DocgenClient, portal: FakePortal
) -> None:
    template = portal.seed_template()
    results = await generate(client, template, [1, 0, 1], wait_pdf=False)
    errors = [r.error for r in results if r.error is not None]
    assert len(errors) == 2 and all(type(e) is InvalidEntityError for e in errors)
    assert all(isinstance(e, ValueError) for e in errors)  # ``except ValueError`` still works
    assert sorted(str(e) for e in errors) == ["not a positive int id", "repeated in the input"]
    round_trip(errors[0])
    assert portal.stats.by_method[ADD] == 1


async def test_values_refused_before_sending_are_invalid_entities(
    client: DocgenClient, portal: FakePortal
) -> None:
    template = portal.seed_template()

    def values(entity_id: int) -> Any:
        return {"Comment": "ok"} if entity_id == 1 else ["not", "a", "mapping"]

    errors = by_entity(await generate(client, template, [1, 2], values=values, wait_pdf=False))
    assert errors[1] is None
    error = errors[2]
    assert isinstance(error, InvalidEntityError) and isinstance(error, ValueError)
    assert isinstance(error.__cause__, TypeError | ValueError)
    assert str(error).startswith(type(error.__cause__).__name__ + ": ")
    assert portal.stats.by_method[ADD] == 1  # the refused entity sent nothing


async def test_a_file_that_cannot_be_written_is_a_storage_error(
    client: DocgenClient, portal: FakePortal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = portal.seed_template()
    denied = PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "document-1.pdf"))

    async def download(document: Document, folder: Any, *args: Any, **kwargs: Any) -> Path:
        raise denied

    monkeypatch.setattr(client.documents, "download", download)
    [result] = await generate(client, template, [7], download_dir=tmp_path)
    error = result.error
    assert isinstance(error, StorageError) and isinstance(error, OSError)
    assert (error.errno, error.strerror, error.filename) == (
        errno.EACCES,
        "Permission denied",
        str(tmp_path / "document-1.pdf"),
    )
    assert error.__cause__ is denied and result.document_id is not None
    copy = round_trip(error)
    assert isinstance(copy, OSError) and copy.errno == errno.EACCES


def test_an_oserror_without_errno_keeps_its_text() -> None:
    wrapped = StorageError.wrapping(OSError("the disk is gone"))
    assert str(wrapped) == "the disk is gone" and wrapped.errno is None
    round_trip(wrapped)


async def test_anything_else_is_an_internal_error_naming_only_its_class(
    client: DocgenClient, portal: FakePortal, caplog: pytest.LogCaptureFixture
) -> None:
    template = portal.seed_template()
    secret = "token-abc123"

    def values(entity_id: int) -> dict[str, str]:
        if entity_id == 2:
            raise RuntimeError(f"broken with {secret}")
        return {}

    with caplog.at_level(logging.ERROR, logger="bitrix_docgen_async"):
        errors = by_entity(
            await generate(client, template, [1, 2, 3], values=values, wait_pdf=False)
        )
    assert errors[1] is None and errors[3] is None  # the run goes on
    error = errors[2]
    assert type(error) is InternalError and isinstance(error.__cause__, RuntimeError)
    assert secret not in str(error) and "RuntimeError" in str(error)
    assert any("entity 2" in r.getMessage() for r in caplog.records)  # logged, with traceback
    round_trip(error)
