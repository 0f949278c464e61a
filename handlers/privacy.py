"""Personal information at rest: ID numbers and phones are encrypted, shown masked (PIPL)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from common.masking import mask_phone

_VERSION = "v1"
__all__ = ["FieldCipher", "mask_id_number", "mask_phone", "open_json", "seal_json"]


class FieldCipher:
    """AES-256-GCM with a key derived from the configured secret; a keyed digest for lookups."""

    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"volunteer-bot/enc/" + secret.encode()).digest()
        self._mac_key = hashlib.sha256(b"volunteer-bot/mac/" + secret.encode()).digest()
        self._aead = AESGCM(self._key)

    def encrypt(self, plaintext: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), None)
        return f"{_VERSION}:" + base64.urlsafe_b64encode(nonce + sealed).decode()

    def decrypt(self, token: str) -> str:
        version, _, body = token.partition(":")
        if version != _VERSION:
            raise ValueError("unknown cipher version")
        raw = base64.urlsafe_b64decode(body)
        return self._aead.decrypt(raw[:12], raw[12:], None).decode()

    def digest(self, value: str) -> str:
        return hmac.new(self._mac_key, value.encode(), hashlib.sha256).hexdigest()


def seal_json(cipher: FieldCipher, value: Any) -> str:
    """A JSON value as one ciphertext (stored replies hold names, addresses, masked IDs …)."""
    return cipher.encrypt(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def open_json(cipher: FieldCipher, sealed: str | Any) -> Any:
    """The value ``seal_json`` sealed; a value stored before sealing (not a string) is returned as it is."""
    return json.loads(cipher.decrypt(sealed)) if isinstance(sealed, str) else sealed


def mask_id_number(id_number: str) -> str:
    """1101**********123X: region prefix and last four stay, birth date never shows."""
    return id_number[:4] + "*" * (len(id_number) - 8) + id_number[-4:]

