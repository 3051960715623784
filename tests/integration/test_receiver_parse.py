"""parse_event: the documented payloads, every input form, and errors that name the key."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import MultiDict

from bitrix_docgen_async.core.encoding import encode_query
from bitrix_docgen_async.receiver import (
    DocumentEvent,
    DocumentEventType,
    InvalidEventError,
    UnknownEventError,
    parse_event,
)
from tests.corpus import load, raw

# the access and application tokens of the corpus' deliveries (tests/fixtures/events)
TOKENS = ("w7e4r1t8y5u2i9o6p3a0s7d4f1g8h5j2", "c0ffee5e1f2a3b4c5d6e7f8091a2b3c4")


def fixture(name: str) -> dict[str, Any]:
    """A delivery of the corpus, decoded as PHP would decode the form."""
    loaded: dict[str, Any] = load(name)
    return loaded


def delivery(kind: str) -> str:
    return f"events/ONCRMDOCUMENTGENERATORDOCUMENT{kind.upper()}.form"


def docgen(kind: str) -> dict[str, Any]:
    return fixture(delivery(kind))


@pytest.mark.parametrize(
    ("kind", "event_type", "handler_id", "ts"),
    [
        ("Add", DocumentEventType.ADD, 311, 1778573645),
        ("Update", DocumentEventType.UPDATE, 312, 1778575402),
        ("Delete", DocumentEventType.DELETE, 313, 1778579003),
    ],
)
def test_the_delivered_forms(
    kind: str, event_type: DocumentEventType, handler_id: int, ts: int
) -> None:
    event = parse_event(raw(delivery(kind)))  # the body exactly as the portal posts it
    by_user = kind != "Delete"  # the DELETE came from an automation rule: no user tokens
    assert event == DocumentEvent(
        event_type=event_type,
        document_id=214,
        entity_type_id=2,
        entity_id=4502,
        handler_id=handler_id,
        timestamp=datetime.fromtimestamp(ts, tz=UTC),
        domain="tundra.bitrix24.eu",
        member_id="5b0e8c1d27f4a9368e1c0b7d2a94f615",
        client_endpoint="https://tundra.bitrix24.eu/rest/",
        server_endpoint="https://oauth.bitrix.info/rest/",
        scope="crm, documentgenerator" if by_user else "",
        status="L" if by_user else "",
        expires_in=3600 if by_user else None,
        application_token="c0ffee5e1f2a3b4c5d6e7f8091a2b3c4",
        access_token="w7e4r1t8y5u2i9o6p3a0s7d4f1g8h5j2" if by_user else None,
        refresh_token=None,
    )
    assert event.timestamp.tzinfo is not None
    # the same event from text, re-encoded, from the decoded shape, and from request.post()'s
    # flat form
    payload = docgen(kind)
    query = encode_query(payload)
    assert parse_event(raw(delivery(kind)).decode()) == event
    assert parse_event(query) == event
    assert parse_event(payload) == event
    assert parse_event(MultiDict(parse_qsl(query))) == event
    assert all(token not in repr(event) for token in TOKENS)


def test_event_names_in_any_case_and_no_tokens_when_no_user() -> None:
    payload = docgen("Add")
    payload["event"] = "onCrmDocumentGeneratorDocumentAdd"
    for key in ("access_token", "expires_in", "scope", "status"):
        del payload["auth"][key]
    del payload["event_handler_id"]
    event = parse_event(encode_query(payload))
    assert event.event_type is DocumentEventType.ADD
    assert event.access_token is None and event.refresh_token is None
    assert event.expires_in is None and event.handler_id is None and event.scope == ""


@pytest.mark.parametrize(
    "name", ["events/other/ONCRMDEALADD.form", "events/other/ONAPPINSTALL.form"]
)
def test_other_events_raise_unknown_event(name: str) -> None:
    with pytest.raises(UnknownEventError) as caught:
        parse_event(raw(name))
    assert isinstance(caught.value, ValueError) and caught.value.field == "event"
    assert caught.value.event_name in ("ONCRMDEALADD", "ONAPPINSTALL")


def _drop(path: tuple[str, ...]) -> Any:
    def change(payload: dict[str, Any]) -> None:
        table = payload
        for key in path[:-1]:
            table = table[key]
        del table[path[-1]]

    return change


def _set(path: tuple[str, ...], value: Any) -> Any:
    def change(payload: dict[str, Any]) -> None:
        table = payload
        for key in path[:-1]:
            table = table[key]
        table[path[-1]] = value

    return change


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        (_drop(("event",)), "event", "missing"),
        (_set(("event",), {"a": "b"}), "event", "not a string"),
        (_drop(("data",)), "data", "missing"),
        (_set(("data",), "x"), "data", "not an array"),
        (_set(("data",), {"OTHER": "1"}), "data[FIELDS]", "missing"),
        (_drop(("data", "FIELDS", "ID")), "data[FIELDS][ID]", "missing"),
        (_set(("data", "FIELDS", "ID"), "12a"), "data[FIELDS][ID]", "not a decimal integer"),
        (_set(("data", "FIELDS", "ID"), "-3"), "data[FIELDS][ID]", "not a decimal integer"),
        (_set(("data", "FIELDS", "ID"), "0"), "data[FIELDS][ID]", "not a positive integer"),
        (_set(("data", "FIELDS", "ID"), "9" * 30), "data[FIELDS][ID]", "not a decimal integer"),
        (_set(("data", "FIELDS", "ID"), "\u0661\u0662"), "data[FIELDS][ID]",
         "not a decimal integer"),
        (_set(("data", "FIELDS", "ENTITY_TYPE_ID"), ""), "data[FIELDS][ENTITY_TYPE_ID]",
         "missing"),
        (_set(("data", "FIELDS", "ENTITY_ID"), ["1"]), "data[FIELDS][ENTITY_ID]",
         "not a decimal integer"),
        (_set(("event_handler_id",), "x"), "event_handler_id", "not a decimal integer"),
        (_drop(("ts",)), "ts", "missing"),
        (_set(("ts",), "1749042094.5"), "ts", "not a unix time"),
        (_set(("ts",), "999999999999"), "ts", "not a unix time"),
        (_drop(("auth",)), "auth", "missing"),
        (_drop(("auth", "application_token")), "auth[application_token]", "missing"),
        (_drop(("auth", "domain")), "auth[domain]", "missing"),
        (_set(("auth", "member_id"), {"0": "x"}), "auth[member_id]", "not a string"),
        (_set(("auth", "expires_in"), "soon"), "auth[expires_in]", "not a decimal integer"),
    ],
)  # fmt: skip
def test_invalid_forms_name_the_key(change: Any, field: str, problem: str) -> None:
    payload = docgen("Add")
    change(payload)
    with pytest.raises(InvalidEventError) as caught:
        parse_event(encode_query(payload))
    assert (caught.value.field, caught.value.problem) == (field, problem)
    assert isinstance(caught.value, ValueError)
    assert str(caught.value) == f"{field}: {problem}"
    assert all(token not in str(caught.value) for token in TOKENS)


@pytest.mark.parametrize("form", [None, 5, ["event"], {"data[FIELDS][ID]": 5}])
def test_inputs_of_the_wrong_type(form: Any) -> None:
    with pytest.raises(InvalidEventError):
        parse_event(form)


def test_php_quirks_of_the_form() -> None:
    payload = docgen("Update")
    query = encode_query(payload)
    # as PHP: the last of repeated keys wins, what follows a closing bracket is ignored,
    # a "]" without "[" is part of the name
    query = query.replace("data%5BFIELDS%5D%5BID%5D=214", "data[FIELDS][ID]=1&data[FIELDS][ID]=77")
    event = parse_event(query + "&ts]x=1&auth[domain]x=other.example")
    assert event.document_id == 77 and event.domain == "other.example"
    assert event.timestamp == datetime.fromtimestamp(1778575402, tz=UTC)


def test_a_mapping_may_hold_ints_but_not_out_of_range_times() -> None:
    payload = docgen("Delete")
    payload["data"]["FIELDS"]["ID"] = 5
    assert parse_event(payload).document_id == 5
    payload["ts"] = 10**17
    with pytest.raises(InvalidEventError, match="ts: out of range"):
        parse_event(payload)
    payload["ts"] = True
    with pytest.raises(InvalidEventError, match="ts: not a decimal integer"):
        parse_event(payload)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.binary(max_size=600), st.text(max_size=300)))
def test_arbitrary_bodies_give_an_event_or_a_value_error(body: bytes | str) -> None:
    try:
        event = parse_event(body)
    except InvalidEventError:
        return
    assert isinstance(event, DocumentEvent)


_digits = st.integers(min_value=1, max_value=10**15)


@settings(max_examples=200, deadline=None)
@given(
    event_type=st.sampled_from(list(DocumentEventType)),
    ids=st.tuples(_digits, _digits, _digits, _digits),
    ts=st.integers(min_value=0, max_value=4_102_444_800),
    text=st.text(min_size=1, max_size=40).filter(lambda t: "\0" not in t),
)
def test_round_trip_through_http_build_query(
    event_type: DocumentEventType, ids: tuple[int, int, int, int], ts: int, text: str
) -> None:
    document_id, entity_type_id, entity_id, handler_id = ids
    payload = {
        "event": event_type.value,
        "event_handler_id": str(handler_id),
        "data": {
            "FIELDS": {
                "ID": str(document_id),
                "ENTITY_TYPE_ID": str(entity_type_id),
                "ENTITY_ID": str(entity_id),
            }
        },
        "ts": str(ts),
        "auth": {"domain": text, "member_id": text, "application_token": text},
    }
    event = parse_event(encode_query(payload))
    assert (event.event_type, event.document_id, event.entity_type_id, event.entity_id) == (
        event_type,
        document_id,
        entity_type_id,
        entity_id,
    )
    assert event.handler_id == handler_id and int(event.timestamp.timestamp()) == ts
    assert event.domain == event.member_id == event.application_token == text
