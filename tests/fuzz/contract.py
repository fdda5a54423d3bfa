"""The project's OpenAPI document (openapi.yaml) as something tests can check live answers against.

The document names each route `/<function>/<route>` (the Cloud Functions URL
layout); on the local stack every function has its own base URL. `Contract`
maps between the two and validates an answer with schemathesis' own
conformance checks (status code documented, content type documented,
required headers present, body matching the schema), so the fuzzer and the
end-to-end tests judge answers the same way.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

REPO = Path(__file__).resolve().parents[2]
DOCUMENT = REPO / "openapi.yaml"
# http://fuzz.invalid/<function>/<route>: what schemathesis builds; RoutingSession sends it to the stack
DOC_BASE = "http://fuzz.invalid"


@functools.cache
def load_schema() -> Any:
    import schemathesis

    _register_rfc822()
    return schemathesis.openapi.from_path(str(DOCUMENT))


def _register_rfc822() -> None:
    """auto_bcc's body is the raw message: sent as bytes, the way an inbound-mail service posts it."""
    import schemathesis

    schemathesis.serializer.alias("message/rfc822", "application/octet-stream")


def conformance_checks() -> list[Any]:
    """What "breaks the document" means: the four checks of an answer against its operation."""
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    return [status_code_conformance, content_type_conformance, response_headers_conformance,
            response_schema_conformance]


def operations() -> list[Any]:
    return [result.ok() for result in load_schema().get_all_operations()]


def http_functions() -> tuple[str, ...]:
    """The HTTP functions main.py deploys (`@functions_framework.http`), read from its source."""
    import ast

    tree = ast.parse((REPO / "main.py").read_text(encoding="utf-8"))
    return tuple(node.name for node in tree.body if isinstance(node, ast.FunctionDef) and any(
        ast.unparse(d) == "functions_framework.http" for d in node.decorator_list))


def contract_for(stack: Any) -> Contract:
    """The document bound to the HTTP functions a Stack serves."""
    served = set(stack.settings.functions)
    return Contract({name: stack.function_url(name) for name in http_functions() if name in served})


def function_of(doc_path: str) -> str:
    return doc_path.lstrip("/").split("/", 1)[0]


@dataclass(frozen=True)
class Contract:
    """The document bound to one running stack's function URLs."""

    function_urls: Mapping[str, str]

    def served(self, operation: Any) -> bool:
        return function_of(operation.path) in self.function_urls

    def local_url(self, doc_url: str) -> str:
        """`http://fuzz.invalid/oauth/connect?x` → `<oauth function>/connect?x`."""
        parts = urlsplit(doc_url)
        function, _, rest = parts.path.lstrip("/").partition("/")
        base = urlsplit(self.function_urls[function])
        return urlunsplit((base.scheme, base.netloc, "/" + rest, parts.query, ""))

    def operation_for(self, method: str, url: str) -> Any | None:
        """The documented operation a request to a local function URL is, or None (not a function / undocumented)."""
        parts = urlsplit(url)
        for function, base in self.function_urls.items():
            b = urlsplit(base)
            if (parts.scheme, parts.netloc) != (b.scheme, b.netloc):
                continue
            route = parts.path.rstrip("/")
            doc_path = f"/{function}{route}"
            for op in operations():
                if op.path == doc_path and op.method.upper() == method.upper():
                    return op
            return None
        return None

    def is_function_url(self, url: str) -> bool:
        parts = urlsplit(url)
        return any((parts.scheme, parts.netloc) == (urlsplit(b).scheme, urlsplit(b).netloc)
                   for b in self.function_urls.values())

    def problems(self, case: Any, response: requests.Response) -> list[str]:
        """Every way `response` breaks the document for `case`'s operation ([] when it conforms)."""
        from schemathesis.core.failures import FailureGroup

        try:
            case.validate_response(response, checks=conformance_checks())
        except FailureGroup as group:
            return [f"{type(f).__name__}: {f.title}" for f in group.exceptions]
        except AssertionError as exc:  # a single failure
            return [str(exc).splitlines()[0] if str(exc) else type(exc).__name__]
        return []

    def check_response(self, response: requests.Response) -> list[str]:
        """Problems of an answer some test got from a function (the request is taken from the response)."""
        request = response.request
        op = self.operation_for(request.method or "GET", request.url or "")
        if op is None:
            return [] if response.status_code < 500 else [f"{response.status_code} from an undocumented route"]
        query = {k: v for k, v in _query(request.url or "").items()}
        case = op.Case(query=query, body=_body_of(request), media_type=_media_type(request))
        return self.problems(case, response)


def _query(url: str) -> dict[str, str]:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def _media_type(request: requests.PreparedRequest) -> str | None:
    ctype = request.headers.get("Content-Type")
    return ctype.split(";")[0].strip().lower() if ctype else None


def _body_of(request: requests.PreparedRequest) -> Any:
    from schemathesis.core import NOT_SET

    body = request.body
    if body is None:
        return NOT_SET
    return body if isinstance(body, bytes) else str(body).encode("utf-8", "surrogatepass")


class RoutingSession(requests.Session):
    """A requests session that sends the document's URLs to the local stack's function URLs."""

    def __init__(self, contract: Contract) -> None:
        super().__init__()
        self.contract = contract

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        target = url.decode() if isinstance(url, bytes) else url
        if target.startswith(DOC_BASE):
            target = self.contract.local_url(target)
        return super().request(method, target, *args, **kwargs)
