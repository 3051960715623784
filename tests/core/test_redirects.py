"""The redirect policy (issue 11 §5): secrets never travel over plain http."""

from __future__ import annotations

import pytest

from bitrix_docgen_async.auth import OAuthAuth, WebhookAuth
from bitrix_docgen_async.core.redirects import check_move, follow_redirect, is_loopback, origin_of
from bitrix_docgen_async.errors import RedirectError

CODE = "k3j4h5g6f7d8s9a0"
OLD = f"https://old.bitrix24.com/rest/1/{CODE}/crm.documentgenerator.document.add"


@pytest.mark.parametrize(
    ("url", "location", "expected"),
    [
        # A moved portal (protocol.md §1.1): same path on the new https host.
        (
            OLD,
            f"https://new.bitrix24.com/rest/1/{CODE}/x",
            f"https://new.bitrix24.com/rest/1/{CODE}/x",
        ),
        # Relative and scheme-relative locations resolve against the URL that answered.
        (OLD, "/rest/1/other/x", "https://old.bitrix24.com/rest/1/other/x"),
        (OLD, "//new.bitrix24.com/rest/x", "https://new.bitrix24.com/rest/x"),
        (OLD, " https://new.bitrix24.com/a ", "https://new.bitrix24.com/a"),
        # Upgrading to https is always fine, loopback or not.
        (
            "http://127.0.0.1:8000/rest/x",
            "https://portal.example/rest/x",
            "https://portal.example/rest/x",
        ),
        # A local test portal moving to another local port stays on plain http.
        (
            "http://127.0.0.1:8000/rest/x",
            "http://127.0.0.1:9000/rest/x",
            "http://127.0.0.1:9000/rest/x",
        ),
        ("http://localhost:8000/rest/x", "http://[::1]:9000/rest/x", "http://[::1]:9000/rest/x"),
        ("http://127.0.0.1:8000/rest/x", "/rest/y", "http://127.0.0.1:8000/rest/y"),
    ],
)
def test_followed(url: str, location: str, expected: str) -> None:
    assert follow_redirect(url, location) == expected


@pytest.mark.parametrize(
    ("url", "location", "reason"),
    [
        # The observation: an https portal sending the same POST to plain http elsewhere.
        (OLD, f"http://other-host.example/rest/1/{CODE}/x", "plain http"),
        # A downgrade on the same host is as bad.
        (OLD, "http://old.bitrix24.com/rest/x", "plain http"),
        # From https loopback to http loopback: still a downgrade.
        ("https://127.0.0.1:8443/rest/x", "http://127.0.0.1:9000/rest/x", "plain http"),
        # The loopback exception is for loopback to loopback only.
        ("http://127.0.0.1:8000/rest/x", "http://portal.example/rest/x", "plain http"),
        ("http://127.0.0.1:8000/rest/x", "http://10.0.0.1/rest/x", "plain http"),
        (OLD, "ftp://files.example/x", "not an absolute http(s) URL"),
        (OLD, "javascript:alert(1)", "not an absolute http(s) URL"),
        (OLD, "https://user:pw@new.bitrix24.com/x", "credentials"),
        (OLD, "https://new.bitrix24.com:notaport/x", "not a valid URL"),
        (OLD, "http://[::1/x", "not a valid URL"),
    ],
)
def test_refused(url: str, location: str, reason: str) -> None:
    with pytest.raises(RedirectError) as caught:
        follow_redirect(url, location)
    error = caught.value
    assert reason in error.reason
    assert error.origin == origin_of(url)
    text = str(error) + repr(error)
    # Origins only: never a path (the webhook code) nor credentials.
    assert CODE not in text and "/rest" not in text and "pw" not in text
    assert error.retryable is False


def test_a_refusal_names_both_origins() -> None:
    with pytest.raises(RedirectError) as caught:
        follow_redirect(OLD, f"http://other-host.example:8080/rest/1/{CODE}/?auth=tok")
    assert caught.value.target == "http://other-host.example:8080"
    assert str(caught.value).startswith(
        "refused a redirect from https://old.bitrix24.com to http://other-host.example:8080: "
    )


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LOCALHOST", True),
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("10.0.0.1", False),
        ("localhost.example.com", False),
        ("", False),
        (None, False),
    ],
)
def test_is_loopback(host: str | None, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_origin_of_drops_credentials_path_and_query() -> None:
    assert origin_of(f"https://u:p@portal.example:444/rest/1/{CODE}/?a=1#f") == (
        "https://portal.example:444"
    )


def test_check_move_takes_origins_too() -> None:
    check_move("https://a.example", "https://b.example")
    check_move("http://127.0.0.1:1", "http://127.0.0.1:2")
    with pytest.raises(RedirectError):
        check_move("https://a.example", "http://b.example")


def test_an_auth_never_rebases_to_plain_http() -> None:
    webhook = WebhookAuth(f"https://old.bitrix24.com/rest/1/{CODE}/")
    with pytest.raises(RedirectError):
        webhook.rebase("http://other-host.example")
    assert webhook.origin == "https://old.bitrix24.com"
    webhook.rebase("https://new.bitrix24.com")
    assert webhook.url_for("m") == f"https://new.bitrix24.com/rest/1/{CODE}/m"

    oauth = OAuthAuth(
        client_endpoint="https://old.bitrix24.com/rest/",
        access_token="access-token-1",
        refresh_token="refresh-token-1",
        client_id="app.1",
        client_secret="client-secret-1",
    )
    with pytest.raises(RedirectError):
        oauth.rebase("http://old.bitrix24.com")
    assert oauth.origin == "https://old.bitrix24.com"

    local = WebhookAuth(f"http://127.0.0.1:8000/rest/1/{CODE}/")
    local.rebase("http://127.0.0.1:9000")
    assert local.origin == "http://127.0.0.1:9000"
