"""memstore: persistent, shared memory for AI agents."""

from memstore.client import AsyncMemstore, Memstore
from memstore.errors import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    EmbedderMismatchError,
    MemstoreError,
    NotFoundError,
    PayloadTooLargeError,
    QuotaExceededError,
    RateLimitError,
    ServiceUnavailableError,
    ValidationError,
)
from memstore.models import ALL_SESSIONS, Memory, MemoryPage, RecalledMemory, RememberResult

__version__ = "0.1.0"
__all__ = [
    "ALL_SESSIONS",
    "APIConnectionError",
    "AsyncMemstore",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "EmbedderMismatchError",
    "Memory",
    "MemoryPage",
    "Memstore",
    "MemstoreError",
    "NotFoundError",
    "PayloadTooLargeError",
    "QuotaExceededError",
    "RateLimitError",
    "RecalledMemory",
    "RememberResult",
    "ServiceUnavailableError",
    "ValidationError",
]
