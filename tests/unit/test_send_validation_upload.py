"""Which Gmail endpoint a send uses: JSON `raw` for small messages, the media upload for large ones (R15).

The Gmail client is the real one (google-api-python-client, built from the shipped
discovery document); only its HTTP transport is a recorder that answers like Gmail.
"""

from __future__ import annotations

import json
from typing import Any

import httplib2

from shared.gmail.service import discovery_document
from shared.send.gmail_send import UPLOAD_THRESHOLD, execute_send

ROOT = "https://gmail.example.test/"


class RecordingHttp:
    """Answers the resumable upload handshake and messages.send like Gmail, recording every request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []

    def request(self, uri: str, method: str = "GET", body: Any = None, headers: Any = None,
                redirections: int = 5, connection_type: Any = None) -> tuple[httplib2.Response, bytes]:
        if hasattr(body, "read"):  # the upload streams its bytes
            body = body.read()
        data = body if isinstance(body, bytes) else (body or "").encode() if isinstance(body, str) else b""
        self.requests.append((method, uri, dict(headers or {}), data))
        if "uploadType=resumable" in uri:
            return httplib2.Response({"status": "200", "location": ROOT + "upload/session/1"}), b""
        return httplib2.Response({"status": "200"}), json.dumps({"id": "m1", "threadId": "t1"}).encode()


def send(http: RecordingHttp, mime: bytes, thread_id: str) -> Any:
    """The send path's call: the resource is built on one Http, the request executes on the one passed
    (the kept connection with the mailbox's token); here both are the recorder."""
    from googleapiclient.discovery import build_from_document

    messages = build_from_document(discovery_document(ROOT), http=httplib2.Http()).users().messages()
    return execute_send(messages, http, mime, thread_id)


def test_a_small_message_goes_as_json_raw_with_the_thread_id() -> None:
    http = RecordingHttp()
    assert send(http, b"Subject: x\r\n\r\nhello\r\n", "t9") == {"id": "m1", "threadId": "t1"}
    [(method, uri, _, body)] = http.requests
    assert (method, uri.split("?")[0]) == ("POST", ROOT + "gmail/v1/users/me/messages/send")
    sent = json.loads(body)
    assert sent["threadId"] == "t9" and sent["raw"]


def test_a_large_message_goes_through_the_resumable_media_upload() -> None:
    http = RecordingHttp()
    mime = b"Subject: big\r\n\r\n" + b"A" * UPLOAD_THRESHOLD
    assert send(http, mime, "t9")["id"] == "m1"
    (m1, uri1, headers1, meta), (m2, uri2, _, payload) = http.requests
    assert (m1, uri1.split("?")[0]) == ("POST", ROOT + "upload/gmail/v1/users/me/messages/send")
    assert "uploadType=resumable" in uri1 and json.loads(meta) == {"threadId": "t9"}
    assert (m2, uri2) == ("PUT", ROOT + "upload/session/1")
    assert {k.lower(): v for k, v in headers1.items()}["x-upload-content-type"] == "message/rfc822"
    assert payload == mime
