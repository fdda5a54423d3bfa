"""The judge of live answers (tests/fuzz/contract.py) fails what breaks openapi.yaml (no stack needed)."""

from __future__ import annotations

import json
from typing import Any

import requests

from tests.fuzz.contract import Contract

OAUTH = "http://127.0.0.1:1111"
SEND = "http://127.0.0.1:2222"
CONTRACT = Contract({"oauth": OAUTH, "send_email": SEND})


def answer(method: str, url: str, status: int, body: Any, headers: dict[str, str] | None = None,
           content_type: str = "application/json") -> requests.Response:
    from urllib3 import HTTPHeaderDict, HTTPResponse

    all_headers = {"Content-Type": content_type, **(headers or {})}
    resp = requests.Response()
    resp.status_code = status
    resp._content = json.dumps(body).encode() if content_type == "application/json" else str(body).encode()
    resp.headers.update(all_headers)
    resp.raw = HTTPResponse(body=b"", headers=HTTPHeaderDict(all_headers), status=status, version=11)
    resp.request = requests.Request(method, url, json={"accountId": "acme", "userId": "alice"}).prepare()
    resp.url = url
    return resp


def test_a_documented_answer_passes() -> None:
    ok = answer("GET", f"{OAUTH}/status?accountId=acme&userId=alice", 200,
                {"status": "disconnected", "address": None, "autoBccAddress": None, "connectedAt": None,
                 "lastSyncAt": None, "lastError": None})
    assert CONTRACT.check_response(ok) == []


def test_an_undocumented_status_breaks_the_document() -> None:
    assert CONTRACT.check_response(answer("POST", f"{OAUTH}/connect", 418, {"error": "x", "message": "y"}))


def test_a_body_of_the_wrong_shape_breaks_the_document() -> None:
    assert CONTRACT.check_response(answer("POST", f"{OAUTH}/connect", 200, {"url": "http://x"}))
    assert CONTRACT.check_response(answer("POST", f"{SEND}/", 400, {"error": "teapot", "message": "m"}))


def test_a_401_without_www_authenticate_breaks_the_document() -> None:
    body = {"error": "unauthorized", "message": "missing or invalid API key"}
    assert CONTRACT.check_response(answer("POST", f"{SEND}/", 401, body, {"WWW-Authenticate": "Bearer"})) == []
    assert CONTRACT.check_response(answer("POST", f"{SEND}/", 401, body))


def test_an_undocumented_content_type_breaks_the_document() -> None:
    assert CONTRACT.check_response(answer("POST", f"{OAUTH}/disconnect", 200, "<html>", content_type="text/html"))


def test_a_5xx_from_a_route_the_document_does_not_have_is_still_a_problem() -> None:
    assert CONTRACT.check_response(answer("PUT", f"{OAUTH}/connect", 500, {"error": "internal", "message": "x"}))
    assert CONTRACT.check_response(answer("PUT", f"{OAUTH}/connect", 405, {"error": "method_not_allowed",
                                                                          "message": "x"})) == []


def test_answers_of_other_servers_are_not_judged() -> None:
    assert not CONTRACT.is_function_url("http://127.0.0.1:3333/sim/health")
    assert CONTRACT.is_function_url(f"{SEND}/")
