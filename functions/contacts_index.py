"""`contacts_index`: a CRM write to a contact → the sync's contact index up to date (R11b, R13).

Trigger: Firestore document writes on `accounts/{accountId}/contacts/{contactId}`
(CloudEvent `google.cloud.firestore.document.v1.written`; locally the devstack
feeder sends the same event from the emulator's listen stream). Only the
event's document path is read: the index is fixed from the contact as it is
now (shared/crm/contact_index.py), so the payload's encoding (protobuf or
JSON) does not matter and a late, repeated or reordered event does no harm.

Returning acknowledges; raising (Firestore unavailable) makes the trigger
retry. An event for any other document is acknowledged and logged.
"""

from __future__ import annotations

import re
from typing import Any

from shared.core import log

_CONTACT = re.compile(r"^accounts/([^/]+)/contacts/([^/]+)$")


def contact_of(cloud_event: Any) -> tuple[str, str] | None:
    """(accountId, contactId) of the event's document, from its `document` or `subject` attribute."""
    def attr(name: str) -> str:
        try:
            value = cloud_event[name]
        except (KeyError, TypeError):
            value = None
        return value if isinstance(value, str) else ""

    path = attr("document") or attr("subject").removeprefix("documents/")
    m = _CONTACT.match(path)
    return (m.group(1), m.group(2)) if m else None


def handle(cloud_event: Any) -> None:
    target = contact_of(cloud_event)
    if target is None:
        log.warning("contacts_index event for another document acknowledged")
        return
    from shared.crm.contact_index import reconcile

    reconcile(*target)
