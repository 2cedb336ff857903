"""Checks on user input, shared by every face: a bad value raises ValidationError here."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from memstore.errors import ValidationError
from memstore.models import (
    ALL_SESSIONS,
    MAX_CONTENT_BYTES,
    MAX_FILTER_KEYS,
    MAX_INTEGER,
    MAX_METADATA_BYTES,
    MAX_METADATA_KEYS,
    MAX_SESSION_CHARS,
    MAX_SESSIONS,
    MAX_TTL_SECONDS,
)

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_KEY = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
# Bidirectional embeddings, overrides, isolates and marks: they make a session name display
# as another one (a look-alike), so session names may not contain them.
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
SessionsArg = str | Iterable[str | None] | None


def unicode_text(value: str, field: str) -> str:
    """``value`` if it is valid Unicode: a lone UTF-16 surrogate (which JSON's ``\\ud800``
    escape can carry) cannot be stored or sent back as UTF-8, so it is refused everywhere."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"{field} must be valid Unicode (no lone surrogates)") from None
    return value


def integer(value: int, field: str) -> int:
    """``value`` if it fits a signed 64-bit integer (what both stores can hold and compare)."""
    if not -MAX_INTEGER - 1 <= value <= MAX_INTEGER:
        raise ValidationError(f"{field} must be an integer between -2^63 and 2^63-1")
    return value


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
    return unicode_text(value, field)


def session(value: str | None) -> str:
    """One session name; None is the shared session (stored as '').

    Names are normalised to NFC (so look-alike spellings of one name are one session); control
    characters, bidirectional overrides and names with nothing visible are refused.
    """
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError("session must be a string")
    value = unicodedata.normalize("NFC", unicode_text(value, "session"))
    if value == ALL_SESSIONS:
        raise ValidationError(f"{ALL_SESSIONS!r} means all sessions and cannot name one")
    if not value or len(value) > MAX_SESSION_CHARS or _CONTROL.search(value):
        raise ValidationError(
            f"session must be 1-{MAX_SESSION_CHARS} characters without control characters"
        )
    if _BIDI.search(value):
        raise ValidationError("session must not contain bidirectional control characters")
    if all(c.isspace() or unicodedata.category(c) in ("Cf", "Zs", "Mn") for c in value):
        raise ValidationError("session must contain at least one visible character")
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
    if len(values) > MAX_SESSIONS:
        raise ValidationError(f"at most {MAX_SESSIONS} sessions per request")
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
        if isinstance(item, int) and not isinstance(item, bool):
            integer(item, f"metadata[{key!r}]")
        if isinstance(item, str):
            unicode_text(item, f"metadata[{key!r}]")
            if "\x00" in item:
                raise ValidationError(f"metadata[{key!r}] must not contain NUL characters")
    size = sum(len(k) + len(str(v)) for k, v in value.items())
    if size > MAX_METADATA_BYTES:
        raise ValidationError(f"metadata is too large (limit {MAX_METADATA_BYTES} bytes)")
    return dict(value)


def filters(value: Any) -> dict[str, Any] | None:
    if value is None or value == {}:
        return None
    if isinstance(value, dict) and len(value) > MAX_FILTER_KEYS:
        raise ValidationError(f"filters may have at most {MAX_FILTER_KEYS} keys")
    try:
        return metadata(value)
    except ValidationError as exc:
        raise ValidationError(exc.message.replace("metadata", "filters")) from None


def ttl(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError("ttl must be a number of seconds")
    if isinstance(value, float) and not math.isfinite(value):
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
    if not isinstance(value, str) or not value or len(value) > 64 or not value.isascii():
        raise ValidationError("id must be a memory id such as 'mem_...'")
    return value


MAX_SUPERSEDES = 100
MAX_EPOCH = 253402300799.0  # 9999-12-31T23:59:59Z
ON_SIMILAR = ("keep", "supersede", "skip")


def as_of(value: Any) -> float | None:
    """A point in time as epoch seconds: a datetime, epoch seconds (a number, or its text),
    or ISO 8601 text (without a zone: UTC)."""
    if value is None:
        return None
    from datetime import UTC, datetime

    moment: float | None = None
    if isinstance(value, datetime):
        moment = (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        moment = float(value)
    elif isinstance(value, str) and len(value) <= 64:
        try:
            moment = float(value)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError:
                pass
            else:
                moment = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    if moment is None or not math.isfinite(moment) or not 0 <= moment <= MAX_EPOCH:
        raise ValidationError(
            "as_of must be an ISO 8601 time such as 2026-01-31T12:00:00Z or epoch seconds"
            " between 0 and 253402300799"
        )
    return moment


def supersedes(value: Any) -> list[str]:
    """Memory ids to supersede (duplicates dropped, order kept)."""
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ValidationError("supersedes must be a list of memory ids")
    if len(value) > MAX_SUPERSEDES:
        raise ValidationError(f"supersedes takes at most {MAX_SUPERSEDES} ids")
    return list(dict.fromkeys(memory_id(v) for v in value))


def on_similar(value: Any) -> str:
    if value is None:
        return "keep"
    if value not in ON_SIMILAR:
        raise ValidationError("on_similar must be 'keep', 'supersede' or 'skip'")
    return str(value)
