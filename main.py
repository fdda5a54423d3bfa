"""Entry points of every gmail-crm-sync Cloud Function.

Each function is deployed on its own from this one source tree with
`--entry-point=<name>` (see ARCHITECTURE.md, "Deploy source"). The wrappers
import their function module on first call, so a deployed function loads only
its own code and client libraries: `oauth` never imports the sync engine.
"""

from __future__ import annotations

from typing import Any

import functions_framework


@functions_framework.http
def oauth(request: Any) -> Any:
    from functions.oauth import handle

    return handle(request)


@functions_framework.http
def oauth_browser(request: Any) -> Any:
    from functions.oauth_browser import handle

    return handle(request)


@functions_framework.http
def send_email(request: Any) -> Any:
    from shared.core.coldstart import first_request

    with first_request("send_email"):  # its cold start, with the garbage collector paused
        from functions.send_email import handle

        return handle(request)


@functions_framework.http
def auto_bcc(request: Any) -> Any:
    from functions.auto_bcc import handle

    return handle(request)


@functions_framework.http
def attachments(request: Any) -> Any:
    from functions.attachments import handle

    return handle(request)


@functions_framework.http
def messages(request: Any) -> Any:
    from functions.messages import handle

    return handle(request)


@functions_framework.cloud_event
def gmail_push(cloud_event: Any) -> None:
    from functions.gmail_push import handle

    handle(cloud_event)


@functions_framework.cloud_event
def quota_reset(cloud_event: Any) -> None:
    from functions.quota_reset import handle

    handle(cloud_event)


@functions_framework.cloud_event
def contacts_index(cloud_event: Any) -> None:
    from functions.contacts_index import handle

    handle(cloud_event)
