"""Typed client options and the package root's names (issue 16)."""

from __future__ import annotations

import pickle

import pytest

import bitrix_docgen_async
from bitrix_docgen_async import DocgenClient, RateLimit
from bitrix_docgen_async.client import DocgenClient as DirectClient
from bitrix_docgen_async.options import OPTION_NAMES, ClientOptions, check_option_names

WEBHOOK = "https://portal.example.com/rest/1/s3cretcode/"


def test_the_options_are_every_keyword_of_the_client() -> None:
    import inspect

    keywords = [
        name
        for name, parameter in inspect.signature(DirectClient.__init__).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    assert sorted(keywords) == sorted(OPTION_NAMES)
    assert ClientOptions.__total__ is False


def test_a_misspelled_option_is_refused_with_the_closest_name() -> None:
    options = {"rate_limt": RateLimit.standard()}
    with pytest.raises(TypeError, match=r"'rate_limt'.*did you mean 'rate_limit'"):
        DocgenClient.from_webhook(WEBHOOK, **options)  # type: ignore[arg-type]


def test_an_unknown_option_far_from_any_has_no_suggestion() -> None:
    with pytest.raises(TypeError) as caught:
        check_option_names(["zzzz"])
    assert "zzzz" in str(caught.value) and "did you mean" not in str(caught.value)


def test_from_oauth_refuses_unknown_options_too() -> None:
    options = {"lingr": 0.0}
    with pytest.raises(TypeError, match="'linger'"):
        DocgenClient.from_oauth(
            client_endpoint="https://portal.example.com/rest/",
            access_token="a" * 32,
            refresh_token="r" * 32,
            client_id="local.1",
            client_secret="s",
            **options,  # type: ignore[arg-type]
        )


def test_known_options_are_accepted() -> None:
    client = DocgenClient.from_webhook(WEBHOOK, rate_limit=None, linger=0.0)
    assert "s3cretcode" not in repr(client)


def test_the_root_exports_what_the_readme_uses() -> None:
    from bitrix_docgen_async import GenerationResult, PollSchedule, Progress  # noqa: F401

    public = set(bitrix_docgen_async.__all__)
    for name in ("PollSchedule", "Progress", "GenerationResult", "LimiterUnavailableError"):
        assert name in public
    for internal in ("Limiter", "MemoryBackend", "CommandResult"):
        assert internal not in public
        assert getattr(bitrix_docgen_async, internal).__name__ == internal  # still importable
    for name in public - {"__version__"}:
        assert getattr(bitrix_docgen_async, name) is not None
    with pytest.raises(AttributeError):
        bitrix_docgen_async.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018


def test_the_root_import_needs_no_redis() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['redis'] = None; import bitrix_docgen_async as b; "
        "print(b.LimiterUnavailableError.__module__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "bitrix_docgen_async.errors"


def test_public_models_document_every_attribute() -> None:
    import attrs

    from bitrix_docgen_async import models
    from bitrix_docgen_async.models import Document

    missing = []
    for name in models.__all__:
        cls = getattr(models, name)
        if not (isinstance(cls, type) and attrs.has(cls)):
            continue
        doc = cls.__doc__ or ""
        for field in attrs.fields(cls):
            if not field.name.startswith("_") and f"{field.name}:" not in doc:
                missing.append(f"{name}.{field.name}")
    assert missing == []
    assert Document.pdf_ready.__doc__ and Document.pdf_failed.__doc__


def test_the_env_error_pickles() -> None:
    from bitrix_docgen_async import EnvConfigError, UnknownFieldsError

    error = EnvConfigError("no credentials")
    assert str(pickle.loads(pickle.dumps(error)))  # noqa: S301 == "no credentials"
    unknown = UnknownFieldsError(5, ["Coment"], {"Coment": ["Comment"]})
    again = pickle.loads(pickle.dumps(unknown))  # noqa: S301
    assert again.unknown == ("Coment",) and again.suggestions == {"Coment": ("Comment",)}
    assert isinstance(again, ValueError)
