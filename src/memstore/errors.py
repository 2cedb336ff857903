"""One exception hierarchy for the engine, the server and the SDK.

Each error class has one error ``code`` and one HTTP ``status``; the server turns an
exception into ``{"error": {"code", "message", "request_id"}}`` and the SDK turns that
body back into the same class, through the single table ``ERRORS_BY_CODE``.
"""

from __future__ import annotations

from typing import Any


class MemstoreError(Exception):
    """Base class of every error memstore raises."""

    code: str = "internal_error"
    status: int = 500

    def __init__(
        self,
        message: str,
        *,
        request_id: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id
        self.headers = headers or {}
        if status is not None:
            self.status = status


class BadRequestError(MemstoreError):
    """The request could not be read (malformed JSON, not UTF-8...)."""

    code = "bad_request"
    status = 400


class ValidationError(MemstoreError):
    """A value is out of range or of the wrong type."""

    code = "invalid_request"
    status = 422


class AuthenticationError(MemstoreError):
    """No API key, an unknown one, or a revoked one."""

    code = "unauthorized"
    status = 401


class PermissionDeniedError(MemstoreError):
    """The key is valid but may not do this (key management needs an admin key)."""

    code = "forbidden"
    status = 403


class NotFoundError(MemstoreError):
    """No such memory in this account (a foreign id looks exactly like a missing one)."""

    code = "not_found"
    status = 404


class ConflictError(MemstoreError):
    """The request conflicts with the current state."""

    code = "conflict"
    status = 409


class PayloadTooLargeError(MemstoreError):
    """The request body is over the size limit."""

    code = "payload_too_large"
    status = 413


class QuotaExceededError(MemstoreError):
    """The account used its monthly operations; ``retry_after`` says when they reset."""

    code = "quota_exceeded"
    status = 429

    def __init__(
        self,
        message: str,
        *,
        retry_after: int | None = None,
        request_id: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, request_id=request_id, status=status, headers=headers)
        self.retry_after = retry_after


class RequestTimeoutError(MemstoreError):
    """The client did not send its request body in time."""

    code = "request_timeout"
    status = 408


class RateLimitError(MemstoreError):
    """Too many requests right now; ``retry_after`` says how many seconds to pause."""

    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after: int | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class EmbedderMismatchError(MemstoreError):
    """The store was built with another embedding model; its vectors would be garbage."""

    code = "embedder_mismatch"
    status = 503


class ServiceUnavailableError(MemstoreError):
    """The server cannot serve now (starting, stopping, database unreachable)."""

    code = "unavailable"
    status = 503


class APIConnectionError(MemstoreError):
    """The SDK could not reach the server."""

    code = "connection_error"
    status = 503


ERRORS_BY_CODE: dict[str, type[MemstoreError]] = {
    cls.code: cls
    for cls in (
        BadRequestError,
        ValidationError,
        AuthenticationError,
        PermissionDeniedError,
        NotFoundError,
        ConflictError,
        PayloadTooLargeError,
        RequestTimeoutError,
        QuotaExceededError,
        RateLimitError,
        EmbedderMismatchError,
        ServiceUnavailableError,
        APIConnectionError,
        MemstoreError,
    )
}


def error_from_response(
    status: int, body: object, headers: dict[str, str] | None = None
) -> MemstoreError:
    """Rebuild the typed error from a server's error body (used by the SDK)."""
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return MemstoreError(f"HTTP {status}: {body!r}"[:500], status=status)
    cls = ERRORS_BY_CODE.get(str(err.get("code")), MemstoreError)
    message = str(err.get("message") or f"HTTP {status}")
    request_id = err.get("request_id")
    if cls is QuotaExceededError or cls is RateLimitError:
        retry = (headers or {}).get("retry-after")
        return cls(
            message,
            retry_after=int(retry) if retry and retry.isdigit() else None,
            request_id=request_id,
            status=status,
        )
    return cls(message, request_id=request_id, status=status)
