"""Checks on user input, shared by every face: a bad value raises ValidationError here."""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Iterable
from typing import Any

from memstore.errors import ValidationError
from memstore.models import (
    ALL_SESSIONS,
    MAX_CONTENT_BYTES,
    MAX_METADATA_BYTES,
    MAX_METADATA_KEYS,
    MAX_SESSION_CHARS,
    MAX_TTL_SECONDS,
)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_KEY = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
SessionsArg = str | Iterable[str | None] | None


def content(value: Any, field: str = "content") -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string")
    if not value.strip():
        raise ValidationError(f"{field} must not be empty")
    if "\x00" in value:
        raise ValidationError(f"{field} must not contain NUL characters")
    size = len(value.encode("utf-8", errors="surrogatepass"))
    if size > MAX_CONTENT_BYTES:
        raise ValidationError(f"{field} is {size} bytes; the limit is {MAX_CONTENT_BYTES} bytes")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"{field} must be valid Unicode (no lone surrogates)") from None
    return value


def session(value: str | None) -> str:
    """One session name for writing; None is the shared session (stored as '')."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError("session must be a string")
    if value == ALL_SESSIONS:
        raise ValidationError(f"{ALL_SESSIONS!r} means all sessions and cannot name one")
    if not value or len(value) > MAX_SESSION_CHARS or _CONTROL.search(value):
        raise ValidationError(
            f"session must be 1-{MAX_SESSION_CHARS} characters without control characters"
        )
    return value


def sessions(value: SessionsArg) -> list[str] | None:
    """Sessions to read: None -> the shared one, '*' -> all (returned as None), or a list."""
    if value is None:
        return [""]
    if isinstance(value, str):
        return None if value == ALL_SESSIONS else [session(value)]
    values = list(value)
    if ALL_SESSIONS in values:
        return None
    if not values:
        raise ValidationError("session list must not be empty")
    if len(values) > 100:
        raise ValidationError("at most 100 sessions per request")
    return list(dict.fromkeys(session(v) for v in values))


def metadata(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError("metadata must be a JSON object")
    if len(value) > MAX_METADATA_KEYS:
        raise ValidationError(f"metadata may have at most {MAX_METADATA_KEYS} keys")
    for key, item in value.items():
        if not isinstance(key, str) or not _KEY.match(key):
            raise ValidationError(
                f"metadata key {key!r} must be 1-64 characters of letters, digits, _ . : -"
            )
        if isinstance(item, float) and not math.isfinite(item):
            raise ValidationError(f"metadata[{key!r}] must be a finite number")
        if item is not None and not isinstance(item, str | int | float | bool):
            raise ValidationError(
                f"metadata[{key!r}] must be a string, number, boolean or null (metadata is flat)"
            )
        if isinstance(item, str) and "\x00" in item:
            raise ValidationError(f"metadata[{key!r}] must not contain NUL characters")
    size = sum(len(k) + len(str(v)) for k, v in value.items())
    if size > MAX_METADATA_BYTES:
        raise ValidationError(f"metadata is too large (limit {MAX_METADATA_BYTES} bytes)")
    return dict(value)


def filters(value: Any) -> dict[str, Any] | None:
    if value is None or value == {}:
        return None
    try:
        return metadata(value)
    except ValidationError as exc:
        raise ValidationError(exc.message.replace("metadata", "filters")) from None


def ttl(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError("ttl must be a number of seconds")
    if value <= 0 or value > MAX_TTL_SECONDS:
        raise ValidationError(f"ttl must be between 1 and {MAX_TTL_SECONDS} seconds")
    return int(math.ceil(value))


def limit(value: Any, maximum: int, field: str = "limit") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{field} must be an integer")
    if not 1 <= value <= maximum:
        raise ValidationError(f"{field} must be between 1 and {maximum}")
    return value


def min_score(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValidationError("min_score must be a number between 0 and 1")
    return float(value)


def memory_id(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 64:
        raise ValidationError("id must be a memory id such as 'mem_...'")
    return value


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"s{seq}".encode()).decode().rstrip("=")


def decode_cursor(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        if not raw.startswith("s"):
            raise ValueError
        return int(raw[1:])
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("cursor is not one this server returned") from None
