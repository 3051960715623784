"""check_values, from_env, call(into=), tracing hooks against the fake portal (issue 16)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bitrix_docgen_async import (
    DocgenClient,
    EnvConfigError,
    PollSchedule,
    RateLimit,
    RequestRecord,
    ResponseError,
    ResponseRecord,
    UnknownFieldsError,
)
from bitrix_docgen_async.cli import main
from bitrix_docgen_async.env import OAUTH_ENV, read_env
from bitrix_docgen_async.models import Numerator
from bitrix_docgen_async.testing import FakePortal
from tests.helpers import FAST_RETRY

FAST = RateLimit(burst=50, per_second=200.0)
ADD = "crm.documentgenerator.document.add"
GETFIELDS = "crm.documentgenerator.template.getfields"


# -- check_values -------------------------------------------------------------------------------


async def test_a_misspelled_value_raises_before_any_add(portal: FakePortal) -> None:
    template = portal.seed_template(placeholders=("DocumentNumber", "Comment"))
    async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST) as client:
        before = portal.stats.requests
        with pytest.raises(UnknownFieldsError) as caught:
            await client.documents.add(template, 2, 10, values={"Coment": "x"}, check_values=True)
        assert caught.value.unknown == ("Coment",)
        assert "Comment" in caught.value.suggestions["Coment"]
        assert "did you mean 'Comment'" in str(caught.value)
        assert portal.stats.by_method[ADD] == 0
        assert portal.stats.requests - before == 1  # the one template.getfields
        assert portal.documents == {}
        # The fields are cached per template: a good add costs one more request, no getfields.
        document = await client.documents.add(
            template, 2, 10, values={"Comment": "x"}, check_values=True
        )
        assert portal.stats.by_method[GETFIELDS] == 1
        assert portal.stats.by_method[ADD] == 1
        assert document.id in portal.documents


async def test_unchecked_values_reach_the_portal(portal: FakePortal) -> None:
    template = portal.seed_template()
    async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST) as client:
        await client.documents.add(template, 2, 10, values={"Coment": "x"})
    assert portal.stats.by_method[GETFIELDS] == 0
    assert portal.stats.by_method[ADD] == 1


async def test_generate_many_checks_a_mapping_before_the_run(portal: FakePortal) -> None:
    template = portal.seed_template()
    async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST) as client:
        results = client.documents.generate_many(
            template_id=template,
            entity_type_id=2,
            entity_ids=range(1, 51),
            values={"DocumentNumbr": "1", "Comment": "x"},
            wait_pdf=False,
            check_values=True,
        )
        with pytest.raises(UnknownFieldsError, match="DocumentNumber"):
            async for _ in results:
                pass
    assert portal.stats.by_method[ADD] == 0
    assert portal.stats.by_method[GETFIELDS] == 1


async def test_generate_many_checks_what_a_function_returns(portal: FakePortal) -> None:
    template = portal.seed_template()
    async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST) as client:
        errors: dict[int, BaseException | None] = {}
        async for result in client.documents.generate_many(
            template_id=template,
            entity_type_id=2,
            entity_ids=range(1, 11),
            values=lambda deal: {"Comment": "x"} if deal % 2 else {"Coment": "x"},
            wait_pdf=False,
            check_values=True,
        ):
            errors[result.entity_id] = result.error
    assert all(errors[i] is None for i in range(1, 11, 2))
    assert all(isinstance(errors[i], UnknownFieldsError) for i in range(2, 11, 2))
    assert portal.stats.by_method[ADD] == 5
    assert portal.stats.by_method[GETFIELDS] == 1  # cached across the run's entities


async def test_the_cli_checks_values_by_default(
    portal: FakePortal, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    template = portal.seed_template()
    monkeypatch.setenv("BITRIX_WEBHOOK_URL", portal.webhook_url)
    argv = ["generate", "--template", str(template), "--entity-type", "deal", "--ids", "1-3"]
    code = await main_async([*argv, "--values", json.dumps({"Coment": "x"})])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Coment" in err and "Comment" in err
    assert portal.stats.by_method[ADD] == 0
    code = await main_async([*argv, "--values", json.dumps({"Coment": "x"}), "--no-check-values"])
    assert code == 0
    assert portal.stats.by_method[ADD] == 3


async def main_async(argv: list[str]) -> int:
    return await asyncio.to_thread(main, argv)


# -- from_env -----------------------------------------------------------------------------------

SECRETS = {
    "BITRIX_CLIENT_ENDPOINT": "https://portal.example.com/rest/",
    "BITRIX_ACCESS_TOKEN": "access-7f3a9c",
    "BITRIX_REFRESH_TOKEN": "refresh-5b2e1d",
    "BITRIX_CLIENT_ID": "local.abc",
    "BITRIX_CLIENT_SECRET": "secret-9d8c7b",
}


def test_from_env_prefers_the_webhook(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("BITRIX_WEBHOOK_URL", "https://portal.example.com/rest/1/hookcode42/")
    client = DocgenClient.from_env(rate_limit=None)
    assert type(client.auth).__name__ == "WebhookAuth"
    assert "hookcode42" not in repr(client)


def test_from_env_builds_an_oauth_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BITRIX_WEBHOOK_URL", raising=False)
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    client = DocgenClient.from_env()
    assert type(client.auth).__name__ == "OAuthAuth"
    assert client.auth.token == "access-7f3a9c"
    text = repr(client) + repr(read_env())
    for secret in ("access-7f3a9c", "refresh-5b2e1d", "secret-9d8c7b"):  # client_id is public
        assert secret not in text


def test_from_env_names_the_missing_variables_never_the_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BITRIX_WEBHOOK_URL", raising=False)
    for name in OAUTH_ENV.values():
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(EnvConfigError, match="BITRIX_WEBHOOK_URL"):
        DocgenClient.from_env()
    monkeypatch.setenv("BITRIX_ACCESS_TOKEN", "access-7f3a9c")
    monkeypatch.setenv("BITRIX_CLIENT_SECRET", "secret-9d8c7b")
    with pytest.raises(EnvConfigError) as caught:
        DocgenClient.from_env()
    message = str(caught.value)
    assert "BITRIX_REFRESH_TOKEN" in message and "BITRIX_CLIENT_ID" in message
    assert "BITRIX_ACCESS_TOKEN" not in message  # set: not missing
    assert "access-7f3a9c" not in message and "secret-9d8c7b" not in message


def test_from_env_rejects_unknown_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BITRIX_WEBHOOK_URL", "https://portal.example.com/rest/1/hookcode42/")
    with pytest.raises(TypeError, match=r"from_env.*download_concurrency"):
        DocgenClient.from_env(download_concurency=2)  # type: ignore[call-arg]


async def test_the_cli_reads_the_oauth_variables(
    portal: FakePortal, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("BITRIX_WEBHOOK_URL", raising=False)
    oauth = portal.oauth
    env = {
        "BITRIX_CLIENT_ENDPOINT": oauth.client_endpoint,
        "BITRIX_ACCESS_TOKEN": oauth.access_token,
        "BITRIX_REFRESH_TOKEN": oauth.refresh_token,
        "BITRIX_CLIENT_ID": oauth.client_id,
        "BITRIX_CLIENT_SECRET": oauth.client_secret,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    portal.seed_numerator("Invoices")
    code = await main_async(["numerators", "list"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Invoices" in out
    assert oauth.access_token not in out + err


# -- call(into=) --------------------------------------------------------------------------------


async def test_call_into_a_model(portal: FakePortal) -> None:
    numerator_id = portal.seed_numerator("Invoices", "INV-{NUMBER}")
    async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST) as client:
        numerator = await client.call(
            "crm.documentgenerator.numerator.get",
            {"id": numerator_id},
            into=Numerator,
            key="numerator",
        )
        assert isinstance(numerator, Numerator)
        assert numerator.id == numerator_id and numerator.template == "INV-{NUMBER}"
        raw = await client.call("crm.documentgenerator.numerator.get", {"id": numerator_id})
        assert isinstance(raw, dict)
        with pytest.raises(ResponseError, match="'numerators'"):
            await client.call(
                "crm.documentgenerator.numerator.get",
                {"id": numerator_id},
                into=Numerator,
                key="numerators",
            )


async def test_an_explicit_batch_result_into_a_model(portal: FakePortal) -> None:
    numerator_id = portal.seed_numerator("Acts", "ACT-{NUMBER}")
    get = "crm.documentgenerator.numerator.get"
    async with DocgenClient.from_webhook(portal.webhook_url, rate_limit=FAST) as client:
        async with client.batch() as batch:
            one = batch.call(get, {"id": numerator_id})
            missing = batch.call(get, {"id": numerator_id})
        numerator = one.result(into=Numerator, key="numerator")
        assert isinstance(numerator, Numerator) and numerator.template == "ACT-{NUMBER}"
        assert isinstance(one.result(), dict)  # without into: the raw result, as before
        with pytest.raises(ResponseError, match="'numerators'"):
            missing.result(into=Numerator, key="numerators")


# -- tracing hooks ------------------------------------------------------------------------------


@pytest.mark.portal(rate_limit=FAST, pdf_delay=0.0)
async def test_one_record_per_http_request_and_no_secret(
    portal: FakePortal, tmp_path: Path
) -> None:
    template = portal.seed_template()
    requests: list[RequestRecord] = []
    responses: list[ResponseRecord] = []

    async def on_response(record: ResponseRecord) -> None:  # a coroutine hook works too
        responses.append(record)

    async with DocgenClient.from_webhook(
        portal.webhook_url,
        rate_limit=FAST,
        retry=FAST_RETRY,
        pdf_schedule=PollSchedule(min_conversion=0.0, interval=0.01),
        on_request=requests.append,
        on_response=on_response,
    ) as client:
        documents = await asyncio.gather(
            *(client.documents.add(template, 2, i, values={"Comment": "x"}) for i in range(1, 8))
        )
        ready = await client.documents.wait_for_pdf(documents[:2], timeout=30)
        await client.documents.download(ready[0], tmp_path)
        async with client.documents.open(ready[1], "docx") as stream:
            assert [chunk async for chunk in stream]
        await client.call("crm.documentgenerator.numerator.list")
        stats = client.stats
    machine_urls = [
        str(portal.documents[d.id][key])
        for d in ready
        for key in ("pdfUrlMachine", "downloadUrlMachine")
    ]
    assert len(requests) == len(responses) == stats.http_requests
    assert stats.http_requests == portal.stats.requests  # machine URLs are /rest/ requests too
    for request, response in zip(requests, responses, strict=True):
        assert (request.method, request.commands) == (response.method, response.commands)
        assert response.status == 200 and response.duration >= 0 and response.error is None
        if response.method == "batch":
            assert response.batch_size >= 1
        else:
            assert response.commands == (response.method,)
    methods = [c for r in responses for c in r.commands]
    assert methods.count(ADD) == 7
    assert "crm.documentgenerator.numerator.list" in methods
    assert "crm.documentgenerator.document.getPdf" in methods
    assert "crm.documentgenerator.document.download" in methods
    dump = repr(requests) + repr(responses)
    code = portal.webhook_url.rstrip("/").rsplit("/", 1)[1]
    assert code and code not in dump
    assert "/rest/" not in dump and "Comment" not in dump and "token" not in dump
    for url in machine_urls:
        assert url and url.split("token=")[1][:12] not in dump


async def test_a_hook_that_raises_never_fails_a_call(portal: FakePortal) -> None:
    def broken(record: object) -> None:
        raise RuntimeError("exporter down")

    async with DocgenClient.from_webhook(
        portal.webhook_url, rate_limit=FAST, on_request=broken, on_response=broken
    ) as client:
        page = await client.documents.list()
    assert page.items == ()


async def test_oauth_records_carry_no_token(portal: FakePortal) -> None:
    records: list[ResponseRecord] = []
    oauth = portal.oauth
    async with DocgenClient.from_oauth(
        client_endpoint=oauth.client_endpoint,
        access_token=oauth.access_token,
        refresh_token=oauth.refresh_token,
        client_id=oauth.client_id,
        client_secret=oauth.client_secret,
        rate_limit=FAST,
        on_response=records.append,
    ) as client:
        await client.numerators.list()
    assert len(records) == 1
    assert oauth.access_token not in repr(records)
