"""Refresh tokens encrypted at rest with AES-256-GCM.

Each version of the `token-encryption-key` secret is one key; the version
number is stored beside the ciphertext as the key id, so rotating the key
(adding a version) needs no migration: old tokens decrypt with their own
version, new ones are written with `latest`. The mailbox id is bound as
associated data so a ciphertext cannot be swapped onto another mailbox.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass

from shared.core.secrets import get_secret

TOKEN_KEY_SECRET = "token-encryption-key"


@dataclass(frozen=True)
class Sealed:
    ciphertext: str  # base64
    nonce: str  # base64
    key_version: str


def _key(version: str) -> tuple[bytes, str]:
    secret = get_secret(TOKEN_KEY_SECRET, version)
    key = base64.b64decode(secret.data.strip())
    if len(key) != 32:
        raise ValueError("token-encryption-key must be base64 of 32 bytes")
    return key, secret.version


def seal(plaintext: str, context: str) -> Sealed:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # lazy: cryptography (cold start)

    key, version = _key("latest")
    nonce = os.urandom(12)
    ct = AESGCM(key).encrypt(nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
    return Sealed(base64.b64encode(ct).decode(), base64.b64encode(nonce).decode(), version)


def open_sealed(sealed: Sealed, context: str) -> str:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # lazy: cryptography (cold start)

    key, _ = _key(sealed.key_version)
    pt = AESGCM(key).decrypt(base64.b64decode(sealed.nonce), base64.b64decode(sealed.ciphertext),
                             context.encode("utf-8"))
    return pt.decode("utf-8")
