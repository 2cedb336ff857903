"""Per-account request limits, so one tenant cannot starve the others (issue 14, item 2).

Two limits, both per account and per server process, both answered with 429
``rate_limited`` and ``Retry-After``:

- a request rate: a token bucket holding one minute of requests (``rate_limit_per_minute``);
- concurrency: at most ``max_concurrent_per_account`` requests of one account run at once.
  Others wait (as coroutines, holding no worker thread) up to ``concurrency_wait_seconds``.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field

from memstore.errors import RateLimitError


@dataclass
class _Bucket:
    tokens: float
    updated: float = field(default_factory=time.monotonic)


class AccountLimits:
    """The limits of every account seen by this process."""

    def __init__(self, per_minute: int, concurrent: int, wait_seconds: float) -> None:
        self.per_minute = per_minute
        self.concurrent = concurrent
        self.wait_seconds = wait_seconds
        self._buckets: dict[str, _Bucket] = {}
        self._slots: dict[str, asyncio.Semaphore] = {}

    def take(self, account_id: str) -> None:
        """Spend one request of the account's rate; RateLimitError if none is left."""
        if self.per_minute <= 0:
            return
        now = time.monotonic()
        bucket = self._buckets.setdefault(account_id, _Bucket(float(self.per_minute), now))
        rate = self.per_minute / 60.0
        bucket.tokens = min(float(self.per_minute), bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens < 1:
            wait = max(1, math.ceil((1 - bucket.tokens) / rate))
            raise RateLimitError(
                f"this account may send {self.per_minute} requests per minute; retry in {wait} s",
                retry_after=wait,
            )
        bucket.tokens -= 1

    def give_back(self, account_id: str) -> None:
        """Return the token ``take`` spent on a request that was refused before it ran."""
        bucket = self._buckets.get(account_id)
        if bucket is not None:
            bucket.tokens = min(float(self.per_minute), bucket.tokens + 1)

    async def acquire(self, account_id: str) -> asyncio.Semaphore | None:
        """A slot among the account's concurrent requests (release it when done)."""
        if self.concurrent <= 0:
            return None
        slots = self._slots.setdefault(account_id, asyncio.Semaphore(self.concurrent))
        if not slots.locked():  # a free slot and no one waiting: taken without a timer
            await slots.acquire()
            return slots
        try:
            async with asyncio.timeout(self.wait_seconds):
                await slots.acquire()
        except TimeoutError:
            raise RateLimitError(
                f"this account already has {self.concurrent} requests running; retry shortly",
                retry_after=1,
            ) from None
        return slots
