"""Listing cursors: opaque, tamper-evident and bound to one account.

A cursor carries the position of the last memory of a page (the store's insert sequence).
That number is database-wide, so it is encrypted (XOR with an HMAC-SHA256 keystream over a
random nonce) and authenticated (HMAC-SHA256 over account, nonce and ciphertext) with a
secret kept in the store, created once per install. Another account's cursor, an edited
one or one from another install is refused like any malformed cursor.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets

from memstore.errors import ValidationError

VERSION = b"\x01"
NONCE_BYTES = 8
TAG_BYTES = 16
SIZE = len(VERSION) + NONCE_BYTES + 8 + TAG_BYTES
_TEXT = re.compile(f"^[A-Za-z0-9_-]{{{-(-SIZE * 4 // 3)}}}$")
_BAD = "cursor is not one this server returned for this account"


def _xor(data: bytes, stream: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, stream, strict=True))


class Cursors:
    """Encode and decode listing cursors with one install secret."""

    def __init__(self, secret: bytes) -> None:
        self._key = secret

    def _keystream(self, account_id: str, nonce: bytes) -> bytes:
        msg = b"stream\x00" + account_id.encode() + b"\x00" + nonce
        return hmac.new(self._key, msg, hashlib.sha256).digest()[:8]

    def _tag(self, account_id: str, body: bytes) -> bytes:
        msg = b"tag\x00" + account_id.encode() + b"\x00" + body
        return hmac.new(self._key, msg, hashlib.sha256).digest()[:TAG_BYTES]

    def encode(self, account_id: str, seq: int) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        plain = seq.to_bytes(8, "big", signed=False)
        cipher = _xor(plain, self._keystream(account_id, nonce))
        body = VERSION + nonce + cipher
        return base64.urlsafe_b64encode(body + self._tag(account_id, body)).decode().rstrip("=")

    def decode(self, account_id: str, value: str | None) -> int | None:
        """The position a cursor stands for; ValidationError unless this server made it for
        this account."""
        if value is None or value == "":
            return None
        if not isinstance(value, str) or not _TEXT.match(value):
            raise ValidationError(_BAD)
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError):
            raise ValidationError(_BAD) from None
        body, tag = raw[:-TAG_BYTES], raw[-TAG_BYTES:]
        if len(raw) != SIZE or body[:1] != VERSION:
            raise ValidationError(_BAD)
        if not hmac.compare_digest(tag, self._tag(account_id, body)):
            raise ValidationError(_BAD)
        nonce, cipher = body[1 : 1 + NONCE_BYTES], body[1 + NONCE_BYTES :]
        plain = _xor(cipher, self._keystream(account_id, nonce))
        return int.from_bytes(plain, "big", signed=False)
