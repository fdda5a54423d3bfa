"""What the console's buttons do: drive the simulator, call the functions, write CRM documents.

Every control goes through a public interface of the stack, as a CRM
developer's own code would: the simulator's admin API (`/sim/…`, through
`simulator.client.SimClient`), the functions' HTTP routes with the stack's CRM
key, and the CRM's documents in Firestore (accounts, users, contacts — the
CRM writes those, SPEC §6). Nothing here reaches into the sync's own state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests

from devstack.console import mail, store
from shared.crm import paths
from simulator.client import SimClient, SimClientError

# Gmail's label changes for the rep's clicks in Gmail (users.messages.modify semantics).
LABEL_CHANGES: dict[str, tuple[list[str], list[str]]] = {
    "read": ([], ["UNREAD"]),
    "unread": (["UNREAD"], []),
    "star": (["STARRED"], []),
    "unstar": ([], ["STARRED"]),
    "trash": (["TRASH"], []),
    "untrash": ([], ["TRASH"]),
}


class ActionError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class StackEndpoints:
    """The parts of endpoints.json the console uses."""

    project_id: str
    firestore: str
    pubsub: str
    google: str
    functions: dict[str, str]
    crm_api_key: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StackEndpoints:
        return cls(project_id=data["projectId"], firestore=data["firestore"], pubsub=data["pubsub"],
                   google=data["google"], functions=dict(data.get("functions") or {}), crm_api_key=data["crmApiKey"])


class Actions:
    def __init__(self, endpoints: StackEndpoints, db: Any, timeout: float = 30.0) -> None:
        self.endpoints = endpoints
        self.db = db
        self.sim = SimClient(endpoints.google, timeout=timeout)
        self.timeout = timeout

    # -- the simulator ------------------------------------------------------------------

    def _sim(self, call: Any, *args: Any) -> Any:
        try:
            return call(*args)
        except SimClientError as exc:
            try:
                body = json.loads(exc.body)
                code, message = body.get("error", "simulator_error"), body.get("message", "")
            except ValueError:
                code, message = "simulator_error", exc.body[:300].decode("utf-8", "replace")
            raise ActionError(exc.status if 400 <= exc.status < 500 else 502, str(code), str(message)) from None

    def deliver(self, frm: str, name: str, to: str, subject: str, text: str,
                upload: mail.Upload | None = None) -> str:
        """Mail from a contact (or anyone outside) arriving in a simulated mailbox."""
        frm, to = _address(frm, "from"), _address(to, "to")
        out = self._sim(self.sim.deliver, to, mail.from_contact(frm, name.strip(), to, subject, text, upload))
        return f"delivered to {to} (Gmail id {out['id']})"

    def _logged(self, account_id: str, conversation_id: str, message_id: str) -> store.MessageView:
        msg = store.message(self.db, account_id, conversation_id, message_id)
        if msg is None:
            raise ActionError(404, "not_found", "no such message")
        if not msg.mailbox or not msg.get("gmailMessageId"):
            raise ActionError(409, "no_gmail_copy", "this message has no copy in a connected Gmail mailbox")
        return msg

    def reply(self, account_id: str, conversation_id: str, message_id: str, text: str) -> str:
        msg = self._logged(account_id, conversation_id, message_id)
        assert msg.mailbox is not None
        out = self._sim(self.sim.send_as_user, msg.mailbox, mail.reply(msg.mailbox, msg.data, text))
        return f"{msg.mailbox} replied from Gmail (Gmail id {out['id']}, thread {out['threadId']})"

    def forward(self, account_id: str, conversation_id: str, message_id: str, to: str, text: str) -> str:
        msg = self._logged(account_id, conversation_id, message_id)
        assert msg.mailbox is not None
        raw = mail.forward(msg.mailbox, msg.data, _address(to, "to"), text)
        out = self._sim(self.sim.send_as_user, msg.mailbox, raw)
        return f"{msg.mailbox} forwarded from Gmail to {to} (Gmail id {out['id']})"

    def relabel(self, account_id: str, conversation_id: str, message_id: str, change: str) -> str:
        """The rep reading, starring or trashing the message in Gmail."""
        if change not in LABEL_CHANGES:
            raise ActionError(400, "invalid_change", f"change must be one of {', '.join(LABEL_CHANGES)}")
        msg = self._logged(account_id, conversation_id, message_id)
        add, remove = LABEL_CHANGES[change]
        out = self._sim(self.sim.modify, msg.mailbox, msg.get("gmailMessageId"), add, remove)
        return f"Gmail: {change} (labels now {', '.join(out['labelIds']) or 'none'})"

    def delete_in_gmail(self, account_id: str, conversation_id: str, message_id: str) -> str:
        msg = self._logged(account_id, conversation_id, message_id)
        self._sim(self.sim.delete_message, msg.mailbox, msg.get("gmailMessageId"))
        return f"deleted for ever in {msg.mailbox}'s Gmail"

    def revoke(self, address: str) -> str:
        n = self._sim(self.sim.revoke, _address(address, "address"))
        return f"revoked {n} token(s) of {address} (a password change)"

    def expire_watch(self, address: str) -> str:
        url = self.endpoints.google + "/sim/mailboxes/" + quote(_address(address, "address"), safe="@")
        try:
            resp = requests.post(url + "/watch/expire", timeout=self.timeout)
        except requests.RequestException as exc:
            raise ActionError(502, "simulator_unreachable", type(exc).__name__) from None
        self._answer(resp)
        return f"the watch of {address} expired: no notifications until it is renewed"

    def set_faults(self, spec_text: str) -> str:
        try:
            spec = json.loads(spec_text or "{}")
        except ValueError as exc:
            raise ActionError(400, "malformed_json", f"the fault set is not JSON: {exc}") from None
        if not isinstance(spec, dict):
            raise ActionError(400, "malformed_json", "the fault set is a JSON object")
        self._sim(self.sim.set_faults, spec)
        return "faults set" if spec else "faults cleared"

    # -- the functions ------------------------------------------------------------------

    def _function(self, name: str) -> str:
        url = self.endpoints.functions.get(name)
        if not url:
            raise ActionError(404, "no_function", f"the stack has no {name} function")
        return url

    def _call(self, method: str, url: str, **kw: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.endpoints.crm_api_key}"}
        try:
            return requests.request(method, url, headers=headers, timeout=self.timeout, **kw)
        except requests.RequestException as exc:
            raise ActionError(502, "function_unreachable", f"{url}: {type(exc).__name__}") from None

    @staticmethod
    def _answer(resp: requests.Response) -> dict[str, Any]:
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if resp.status_code >= 400:
            raise ActionError(resp.status_code if resp.status_code < 500 else 502, str(body.get("error", "failed")),
                              str(body.get("message", resp.text[:300])))
        return body if isinstance(body, dict) else {}

    def connect_url(self, account_id: str, user_id: str, return_url: str) -> str:
        """The authorization URL the CRM hands the rep's browser (oauth POST /connect)."""
        resp = self._call("POST", self._function("oauth") + "/connect",
                          json={"accountId": account_id, "userId": user_id, "returnUrl": return_url})
        return str(self._answer(resp)["authorizationUrl"])

    def disconnect(self, account_id: str, user_id: str) -> str:
        resp = self._call("POST", self._function("oauth") + "/disconnect",
                          json={"accountId": account_id, "userId": user_id})
        self._answer(resp)
        return f"{user_id} disconnected"

    def attachment(self, params: dict[str, str]) -> requests.Response:
        """The attachments function's answer for one attachment (R20), bytes and headers as it gave them."""
        query = {k: params.get(k, "") for k in ("accountId", "conversationId", "messageId", "attachmentId")}
        return self._call("GET", self._function("attachments"), params=query, stream=True)

    # -- CRM documents ------------------------------------------------------------------

    def add_user(self, account_id: str, user_id: str, email: str, name: str) -> str:
        account_id, user_id = _id(account_id, "accountId"), _id(user_id, "userId")
        ref = self.db.document(paths.user_path(account_id, user_id))
        self.db.document(f"{paths.ACCOUNTS}/{account_id}").set({"name": account_id}, merge=True)
        ref.set({"email": _address(email, "email"), "name": name or user_id}, merge=True)
        return f"user {account_id}/{user_id} saved"

    def add_contact(self, account_id: str, contact_id: str, email: str, name: str) -> str:
        account_id, contact_id = _id(account_id, "accountId"), _id(contact_id, "contactId")
        self.db.document(f"{paths.ACCOUNTS}/{account_id}").set({"name": account_id}, merge=True)
        ref = self.db.document(paths.contact_path(account_id, contact_id))
        fields: dict[str, Any] = {"email": _address(email, "email"), "name": name or contact_id}
        if not ref.get().exists:
            fields["createdAt"] = datetime.now(UTC)
        ref.set(fields, merge=True)
        return f"contact {account_id}/{contact_id} saved"


def _address(value: str, name: str) -> str:
    value = (value or "").strip()
    if "@" not in value or any(c in value for c in "\r\n ,<>"):
        raise ActionError(400, "invalid_address", f"{name} must be one email address")
    return value


def _id(value: str, name: str) -> str:
    value = (value or "").strip()
    if not value or "/" in value or len(value) > 200 or value.startswith("__"):
        raise ActionError(400, "invalid_id", f"{name} must be a non-empty Firestore document id without '/'")
    return value
