"""Fidelity: every Gmail response the simulator gives validates against the discovery document.

The document is the one shipped inside google-api-python-client (the same the
project builds its client from). Its schemas become JSON Schemas with
`additionalProperties: false`, so a field Google does not have fails as surely
as a missing type. A tour drives every method the simulator serves through the
real client over a recording HTTP layer; each recorded answer is then checked
against its method's response schema (errors against Google's error shape).
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Iterator
from email.message import EmailMessage
from functools import cache
from typing import Any

import httplib2
import jsonschema
import pytest
import requests
from googleapiclient.discovery_cache import get_static_doc
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaIoBaseUpload

from simulator.app import BackgroundServer
from simulator.gmail_api import ROUTES
from tests.simulator.conftest import MODIFY, READ, SEND, deliver, mint_token, rfc822, sim_config

DOC: dict[str, Any] = json.loads(get_static_doc("gmail", "v1") or "{}")
REP = "rep@example.com"
ALICE = "alice@customer.example"

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "errors", "status"],
            "additionalProperties": False,
            "properties": {
                "code": {"type": "integer"},
                "message": {"type": "string"},
                "status": {"type": "string", "pattern": "^[A-Z_]+$"},
                "errors": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["message", "domain", "reason"],
                        "properties": {"message": {"type": "string"}, "domain": {"type": "string"},
                                       "reason": {"type": "string"}},
                    },
                },
            },
        }
    },
}


def _convert(schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return {"$ref": f"#/definitions/{schema['$ref']}"}
    t = schema.get("type")
    out: dict[str, Any] = {}
    if t == "object":
        out = {"type": "object", "properties": {k: _convert(v) for k, v in schema.get("properties", {}).items()}}
        extra = schema.get("additionalProperties")
        out["additionalProperties"] = _convert(extra) if extra else False
    elif t == "array":
        out = {"type": "array", "items": _convert(schema.get("items", {}))}
    elif t == "string":
        out = {"type": "string"}
        fmt = schema.get("format")
        if fmt in ("int64", "uint64"):
            out["pattern"] = r"^-?\d+$"
        elif fmt == "byte":
            out["pattern"] = r"^[A-Za-z0-9_\-]*={0,2}$"
    elif t in ("integer", "number", "boolean"):
        out = {"type": t}
    if "enum" in schema:
        out["enum"] = schema["enum"]
    return out


@cache
def validator(ref: str) -> jsonschema.Draft7Validator:
    """A validator for the discovery schema `ref` (built once: checking a schema is the slow part)."""
    schema = {**_convert({"$ref": ref}), "definitions": {n: _convert(s) for n, s in DOC["schemas"].items()}}
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


ERRORS = jsonschema.Draft7Validator(ERROR_SCHEMA)


def _methods() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}

    def walk(node: dict[str, Any]) -> None:
        for m in node.get("methods", {}).values():
            out[m["id"]] = m
        for child in node.get("resources", {}).values():
            walk(child)

    walk(DOC)
    return out


METHODS = _methods()


def _path_regex(flat: str) -> re.Pattern[str]:
    return re.compile("^/(?:upload/)?" + re.sub(r"\{[^}]+\}", "[^/]+", flat) + "$")


def method_for(http_method: str, path: str) -> str | None:
    """The discovery method a request was for; the most literal path wins (messages/send over messages/{id})."""
    hits = [
        mid for mid, m in METHODS.items()
        if m["httpMethod"] == http_method and _path_regex(m["flatPath"]).match(path)
    ]
    hits.sort(key=lambda mid: METHODS[mid]["flatPath"].count("{"))
    return hits[0] if hits else None


class RecordingHttp(httplib2.Http):
    """httplib2 that keeps every (method, path, status, body) it saw."""

    def __init__(self) -> None:
        super().__init__(timeout=30)
        self.redirect_codes = self.redirect_codes - {308}
        self.seen: list[tuple[str, str, int, bytes]] = []

    def request(self, uri: str, method: str = "GET", *args: Any, **kwargs: Any) -> Any:
        resp, content = super().request(uri, method, *args, **kwargs)
        path = re.sub(r"^https?://[^/]+", "", uri).split("?")[0]
        self.seen.append((method, path, resp.status, content))
        return resp, content


def _service(base: str, token: str, http: RecordingHttp) -> Any:
    import google_auth_httplib2
    from google.oauth2.credentials import Credentials
    from googleapiclient.discovery import build_from_document

    from shared.gmail.service import discovery_document

    authed = google_auth_httplib2.AuthorizedHttp(Credentials(token=token), http=http)
    return build_from_document(discovery_document(base + "/"), http=authed)


def _tour(server: BackgroundServer) -> tuple[RecordingHttp, list[dict[str, Any]]]:
    """Every method the simulator serves, with the shapes that vary (formats, empty lists, errors)."""
    http = RecordingHttp()
    base = server.url
    requests.post(f"{base}/sim/mailboxes", json={"address": ALICE}, timeout=5)
    g = _service(base, mint_token(server, REP, (READ, SEND, MODIFY, "https://mail.google.com/")), http)
    users, msgs = g.users(), g.users().messages()
    batch_results: list[dict[str, Any]] = []

    start = users.getProfile(userId="me").execute()["historyId"]
    users.history().list(userId="me", startHistoryId=start).execute()
    msgs.list(userId="me").execute()
    m = EmailMessage()
    m["From"], m["To"], m["Subject"], m["Message-ID"] = ALICE, REP, "Tour", "<tour-1@customer.example>"
    m.set_content("Plain text with an apostrophe: it's here.")
    m.add_alternative("<p>HTML</p>", subtype="html")
    m.add_attachment(b"data" * 10, maintype="application", subtype="pdf", filename="a.pdf")
    got = deliver(base, REP, m.as_bytes())
    for fmt in ("full", "metadata", "minimal", "raw"):
        msgs.get(userId="me", id=got["id"], format=fmt).execute()
    msgs.get(userId="me", id=got["id"], format="metadata", metadataHeaders=["Subject"]).execute()
    full = msgs.get(userId="me", id=got["id"]).execute()
    att = full["payload"]["parts"][1]["body"]["attachmentId"]
    msgs.attachments().get(userId="me", messageId=got["id"], id=att).execute()
    reply = rfc822(REP, ALICE, "Re: Tour", In_Reply_To="<tour-1@customer.example>")
    raw = base64.urlsafe_b64encode(reply).decode()
    msgs.send(userId="me", body={"raw": raw, "threadId": got["threadId"]}).execute()
    media = MediaIoBaseUpload(io.BytesIO(rfc822(REP, ALICE, "Upload")), mimetype="message/rfc822")
    msgs.send(userId="me", body={}, media_body=media).execute()
    for fmt in ("full", "metadata", "minimal"):
        g.users().threads().get(userId="me", id=got["threadId"], format=fmt).execute()
    g.users().threads().list(userId="me").execute()
    msgs.list(userId="me", q="in:sent", maxResults=1).execute()
    g.users().labels().list(userId="me").execute()
    g.users().labels().get(userId="me", id="INBOX").execute()
    msgs.modify(userId="me", id=got["id"], body={"removeLabelIds": ["UNREAD"]}).execute()
    msgs.trash(userId="me", id=got["id"]).execute()
    msgs.untrash(userId="me", id=got["id"]).execute()
    users.history().list(userId="me", startHistoryId=start).execute()
    users.history().list(userId="me", startHistoryId=start, maxResults=1).execute()
    users.watch(userId="me", body={"topicName": f"projects/{server.ctx.config.project_id}/topics/t"}).execute()
    users.stop(userId="me").execute()

    batch = g.new_batch_http_request(callback=lambda _id, resp, _exc: batch_results.append(resp))
    batch.add(msgs.get(userId="me", id=got["id"], format="minimal"))
    batch.add(users.getProfile(userId="me"))
    batch.execute()

    for call in (
        lambda: msgs.get(userId="me", id="ffffffffffffffff").execute(),
        lambda: users.history().list(userId="me", startHistoryId="x").execute(),
        lambda: users.getProfile(userId="other@example.com").execute(),
        lambda: msgs.list(userId="me", q="larger:1M").execute(),
    ):
        with pytest.raises(HttpError):
            call()
    for code in (429, 500, 503):
        requests.put(f"{base}/sim/faults", json={"methods": {"*": {"errorRate": 1, "codes": [code]}}}, timeout=5)
        with pytest.raises(HttpError):
            users.getProfile(userId="me").execute()
    requests.put(f"{base}/sim/faults", json={}, timeout=5)
    msgs.modify(userId="me", id=got["id"], body={"addLabelIds": ["STARRED"]}).execute()
    msgs.delete(userId="me", id=got["id"]).execute()
    # every kind of record (messagesAdded, labelsAdded, labelsRemoved, messagesDeleted) against History
    users.history().list(userId="me", startHistoryId=start).execute()
    users.history().list(userId="me", startHistoryId=start, historyTypes=["messageDeleted"]).execute()
    with pytest.raises(HttpError):
        msgs.attachments().get(userId="me", messageId=got["id"], id=att).execute()
    resp, _ = http.request(f"{base}/gmail/v1/users/me/profile", headers={"Authorization": "Bearer ya29.unknown"})
    assert resp.status == 401
    return http, [r for r in batch_results if r is not None]


@pytest.fixture(scope="module")
def tour() -> Iterator[tuple[RecordingHttp, list[dict[str, Any]]]]:
    with BackgroundServer(sim_config(rateLimitUnitsPerSecond=1_000_000)) as server:
        yield _tour(server)


TOURED = sorted({r.method_id for r in ROUTES})


@pytest.mark.parametrize("method_id", TOURED)
def test_every_answer_matches_the_discovery_response_schema(
    tour: tuple[RecordingHttp, list[dict[str, Any]]], method_id: str
) -> None:
    http, _ = tour
    answers = [(status, body) for m, p, status, body in http.seen if method_for(m, p) == method_id]
    assert answers, f"the tour never called {method_id}"
    ref = METHODS[method_id].get("response", {}).get("$ref")
    for status, body in answers:
        if status >= 400:
            ERRORS.validate(json.loads(body))
        elif ref:
            validator(ref).validate(json.loads(body))
        else:
            assert status == 204 and body == b""


def test_batch_part_answers_match_their_schemas(tour: tuple[RecordingHttp, list[dict[str, Any]]]) -> None:
    _, results = tour
    message, profile = results
    validator("Message").validate(message)
    validator("Profile").validate(profile)


def test_error_answers_were_seen_for_each_kind(tour: tuple[RecordingHttp, list[dict[str, Any]]]) -> None:
    http, _ = tour
    assert {400, 403, 404, 429, 500, 503} <= {status for _, _, status, _ in http.seen}


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.method_id)
def test_every_route_is_a_discovery_method_with_the_same_verb_and_path(route: Any) -> None:
    m = METHODS[route.method_id]
    assert m["httpMethod"] == route.http_method
    sample = "/" + re.sub(r"\{[^}]+\}", "x1", m["flatPath"])
    assert route.pattern.match(sample), (route.pattern.pattern, sample)


def test_the_schema_check_rejects_a_field_google_does_not_have() -> None:
    with pytest.raises(jsonschema.ValidationError):
        validator("Profile").validate({"emailAddress": "a@b", "bogus": 1})
    with pytest.raises(jsonschema.ValidationError):
        validator("Profile").validate({"historyId": 12})  # uint64 is a string
