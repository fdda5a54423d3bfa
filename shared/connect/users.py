"""The CRM user a connect operation acts on: it exists, or the operation is refused before anything else."""

from __future__ import annotations

from shared.connect.errors import UserNotFound
from shared.core.models import User
from shared.crm.paths import user_ref


def require_user(account_id: str, user_id: str) -> User:
    """The CRM user, or UserNotFound (also for another tenant's ids: the pair simply does not exist)."""
    snap = user_ref(account_id, user_id).get()
    if not snap.exists:
        raise UserNotFound("no such user in this account")
    return User.from_doc(snap.to_dict())
