"""A small client for the simulator's admin API (`/sim/...`) and its headless OAuth consent.

Stdlib only (urllib), so the demo, the tests and a CRM developer's scripts can
use it without extra dependencies. Every method is one HTTP call; a non-2xx
answer raises `SimClientError` with the status and the body the simulator gave.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class SimClientError(RuntimeError):
    def __init__(self, method: str, url: str, status: int, body: bytes) -> None:
        super().__init__(f"{method} {url} -> {status}: {body[:500].decode('utf-8', 'replace')}")
        self.status = status
        self.body = body


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Hands the 302 itself back: the consent answer's Location is the result, not something to fetch."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


class SimClient:
    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._no_redirect = urllib.request.build_opener(_NoRedirect)

    # -- transport ---------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str | None = None,
        query: dict[str, Any] | None = None,
    ) -> tuple[int, bytes]:
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        req = urllib.request.Request(url, data=body, method=method)
        if content_type:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            raise SimClientError(method, url, err.code, err.read()) from None

    def _json(self, method: str, path: str, payload: Any = None, query: dict[str, Any] | None = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        _, body = self._request(method, path, data, "application/json" if data is not None else None, query)
        return json.loads(body) if body.strip() else None

    @staticmethod
    def _mbox(address: str) -> str:
        return "/sim/mailboxes/" + urllib.parse.quote(address, safe="@")

    # -- mailboxes ---------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return dict(self._json("GET", "/sim/health"))

    def create_mailbox(self, address: str) -> dict[str, Any]:
        return dict(self._json("POST", "/sim/mailboxes", {"address": address}))

    def mailbox(self, address: str) -> dict[str, Any]:
        return dict(self._json("GET", self._mbox(address)))

    def deliver(self, address: str, raw: bytes, internal_date_ms: int | None = None,
                label_ids: list[str] | None = None) -> dict[str, Any]:
        """Mail from outside arriving in the mailbox's INBOX; `label_ids`: what Gmail's classifier set
        (e.g. ["CATEGORY_PROMOTIONS"], ["SPAM"])."""
        query: dict[str, Any] = {}
        if internal_date_ms is not None:
            query["internalDate"] = internal_date_ms
        if label_ids:
            query["labelIds"] = ",".join(label_ids)
        _, body = self._request("POST", self._mbox(address) + "/deliver", raw, "message/rfc822", query or None)
        return dict(json.loads(body))

    def set_send_as(self, address: str, aliases: list[str | dict[str, Any]]) -> dict[str, Any]:
        """Replace the mailbox's send-as aliases (Gmail's "Send mail as"); a plain address is an accepted one."""
        return dict(self._json("PUT", self._mbox(address) + "/sendAs", {"sendAs": aliases}))

    def send_as_user(self, address: str, raw: bytes) -> dict[str, Any]:
        """The rep sending from Gmail's own UI (not through the API)."""
        _, body = self._request("POST", self._mbox(address) + "/send", raw, "message/rfc822")
        return dict(json.loads(body))

    def messages(self, address: str, label: str | None = None) -> list[dict[str, Any]]:
        out = self._json("GET", self._mbox(address) + "/messages", query={"label": label} if label else None)
        return list(out.get("messages", []))

    def raw_message(self, address: str, id: str) -> bytes:
        _, body = self._request("GET", self._mbox(address) + "/messages/" + urllib.parse.quote(id) + "/raw")
        return body

    def mailboxes(self) -> list[str]:
        return list(self._json("GET", "/sim/mailboxes")["mailboxes"])

    def modify(
        self, address: str, id: str, add: list[str] | None = None, remove: list[str] | None = None
    ) -> dict[str, Any]:
        """Label changes made in Gmail's UI (e.g. the rep archives or reads a message)."""
        path = self._mbox(address) + "/messages/" + urllib.parse.quote(id) + "/modify"
        return dict(self._json("POST", path, {"addLabelIds": add or [], "removeLabelIds": remove or []}))

    def rep_action(self, address: str, id: str, action: str) -> dict[str, Any]:
        """The rep in Gmail's UI: "read", "unread", "star", "unstar", "trash" or "untrash" one message.

        Answers the message's `{id, threadId, labelIds, historyId}` after the change.
        """
        path = self._mbox(address) + "/messages/" + urllib.parse.quote(id) + "/" + urllib.parse.quote(action)
        return dict(self._json("POST", path))

    def thread_action(self, address: str, thread_id: str, action: str) -> dict[str, Any]:
        """The rep acting on a whole conversation (same actions): one history record for all its messages.

        Answers `{id, messages: [{id, threadId, labelIds}], historyId}`.
        """
        path = self._mbox(address) + "/threads/" + urllib.parse.quote(thread_id) + "/" + urllib.parse.quote(action)
        return dict(self._json("POST", path))

    def read(self, address: str, id: str) -> dict[str, Any]:
        return self.rep_action(address, id, "read")

    def unread(self, address: str, id: str) -> dict[str, Any]:
        return self.rep_action(address, id, "unread")

    def star(self, address: str, id: str) -> dict[str, Any]:
        return self.rep_action(address, id, "star")

    def unstar(self, address: str, id: str) -> dict[str, Any]:
        return self.rep_action(address, id, "unstar")

    def trash(self, address: str, id: str) -> dict[str, Any]:
        return self.rep_action(address, id, "trash")

    def untrash(self, address: str, id: str) -> dict[str, Any]:
        return self.rep_action(address, id, "untrash")

    def expire_watch(self, address: str) -> dict[str, Any]:
        """The mailbox's watch reaches its expiration now (409 without a watch)."""
        return dict(self._json("POST", self._mbox(address) + "/watch/expire"))

    def delete_message(self, address: str, id: str) -> None:
        """The rep deleting a message permanently in Gmail's UI."""
        self._request("DELETE", self._mbox(address) + "/messages/" + urllib.parse.quote(id))

    def revoke(self, address: str) -> int:
        """Every token of the mailbox dies (a password change); returns how many were live."""
        return int(self._json("POST", self._mbox(address) + "/revoke")["revoked"])

    # -- faults, settings, stats ---------------------------------------------------------

    def set_faults(self, spec: dict[str, Any]) -> dict[str, Any]:
        out = self._json("PUT", "/sim/faults", spec)
        return dict(out) if isinstance(out, dict) else {}

    def faults(self) -> dict[str, Any]:
        return dict(self._json("GET", "/sim/faults"))

    def settings(self, **kw: Any) -> dict[str, Any]:
        """PUT /sim/settings with the given keys (camelCase or snake_case: access_token_ttl_seconds=5);
        without arguments, GET the current settings."""
        if not kw:
            return dict(self._json("GET", "/sim/settings"))
        return dict(self._json("PUT", "/sim/settings", {_camel(k): v for k, v in kw.items()}))

    def reset(self) -> None:
        self._json("POST", "/sim/reset")

    def stats(self) -> dict[str, Any]:
        return dict(self._json("GET", "/sim/stats"))

    def add_secret_version(self, name: str, value: str) -> dict[str, Any]:
        """A new version of a Secret Manager secret (key rotation); it becomes `latest`."""
        return dict(self._json("POST", "/sim/secrets/" + urllib.parse.quote(name, safe=""), {"value": value}))

    def set_secret_version_enabled(self, project: str, name: str, version: int, enabled: bool) -> dict[str, Any]:
        """Google's versions:disable / versions:enable (ending a rotation, revoking a leaked key)."""
        path = (f"/v1/projects/{urllib.parse.quote(project, safe='')}/secrets/{urllib.parse.quote(name, safe='')}"
                f"/versions/{version}:{'enable' if enabled else 'disable'}")
        return dict(self._json("POST", path))

    # -- OAuth ---------------------------------------------------------------------------

    def consent(self, authorization_url: str, user: str, scopes: str = "all") -> str:
        """Approve an authorization URL without a browser; returns the redirect to the app's callback.

        `scopes` is "all", "none" (the user clicks Deny: the redirect carries
        error=access_denied) or the space-separated scopes the user leaves ticked.
        """
        sep = "&" if urllib.parse.urlsplit(authorization_url).query else "?"
        url = authorization_url + sep + urllib.parse.urlencode({"sim_user": user, "sim_scopes": scopes})
        try:
            with self._no_redirect.open(url, timeout=self.timeout) as resp:
                raise SimClientError("GET", url, resp.status, resp.read())
        except urllib.error.HTTPError as err:
            location = err.headers.get("Location")
            if err.code in (301, 302, 303, 307) and location:
                return str(location)
            raise SimClientError("GET", url, err.code, err.read()) from None
