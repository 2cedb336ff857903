"""The caller of a /v1 request: its key checked and its work done in ONE worker-thread hop.

A key check reads the database, so it cannot run on the event loop; the per-account limits
(server/limits.py) need the account before the work starts, on the loop. Checking the key
in a thread, coming back to the loop for the limits, then going to a thread again for the
work cost two hops per request. Here the limits are taken for the account the key *claims*:
the account an earlier request with the same key was verified to belong to (a key never
changes account). The key itself is still checked against the database on every request,
in the same thread hop as the work and before it, so a revoked key fails at once on every
worker and server. A key seen for the first time is checked first, as before.

A claimed key that fails its check gives its rate token back and answers 401, as it would
have without the claim; a 429 for a claimed key is only sent once the key checks out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request, Security
from fastapi.security import HTTPBearer
from starlette.concurrency import run_in_threadpool

from memstore.accounts import Accounts
from memstore.engine import MemoryEngine
from memstore.errors import AuthenticationError, RateLimitError
from memstore.server.limits import AccountLimits
from memstore.server.middleware import ON_DONE

T = TypeVar("T")
MAX_CLAIMS = 10_000  # keys remembered per process; the oldest is dropped past this

# Declares HTTP Bearer in the OpenAPI document (the Authorize button of /docs); the header
# itself is checked by Accounts.verify(), which gives the precise 401 messages.
bearer = HTTPBearer(
    auto_error=False, bearerFormat="am_live_...", description="An API key: am_live_..."
)


class KeyClaims:
    """Which account each key was last verified to belong to (by the key's SHA-256)."""

    def __init__(self, size: int = MAX_CLAIMS) -> None:
        self.size = size
        self._accounts: dict[str, str] = {}

    @staticmethod
    def digest(authorization: str | None) -> str:
        return hashlib.sha256((authorization or "").encode("utf-8", "replace")).hexdigest()

    def get(self, digest: str) -> str | None:
        return self._accounts.get(digest)

    def put(self, digest: str, account_id: str) -> None:
        if digest not in self._accounts and len(self._accounts) >= self.size:
            del self._accounts[next(iter(self._accounts))]
        self._accounts[digest] = account_id

    def drop(self, digest: str) -> None:
        self._accounts.pop(digest, None)


class Caller:
    """The request's account as its key claims it, within that account's limits."""

    def __init__(
        self, request: Request, engine: MemoryEngine, claims: KeyClaims, limits: AccountLimits
    ) -> None:
        self.authorization = request.headers.get("authorization")
        self.digest = claims.digest(self.authorization)
        self.engine = engine  # the routes' engine too: one dependency fewer to solve
        self.accounts: Accounts = engine.accounts
        self.claims, self.limits = claims, limits
        self.state = request.scope.setdefault("state", {})
        self.account: str | None = None  # set once the key is verified in this request
        self.claimed = claims.get(self.digest)
        self.taken: str | None = None  # the account a rate token was taken from

    def _verify(self) -> str:
        """The key's account, read from the database (in a worker thread)."""
        if self.account is None:
            account = self.accounts.verify(self.authorization)
            self.account = self.state["account"] = account
        return self.account

    async def verified(self) -> str:
        """The account, its key checked (a worker-thread hop unless already checked)."""
        if self.account is not None:
            return self.account
        try:
            account = await run_in_threadpool(self._verify)
        except AuthenticationError:
            self._refused()
            raise
        self.claims.put(self.digest, account)
        return account

    async def run(self, work: Callable[[str], T]) -> T:
        """``work(account)`` in one worker thread, right after the key check."""
        try:
            return await run_in_threadpool(lambda: work(self._verify()))
        except AuthenticationError:
            if self.account is None:  # the key, not the work, was refused
                self._refused()
            raise

    def _refused(self) -> None:
        if self.claimed is not None:
            self.claims.drop(self.digest)
            self.claimed = None
        if self.taken is not None:
            self.limits.give_back(self.taken)
            self.taken = None


async def caller(request: Request, _: Annotated[object, Security(bearer)]) -> Caller:
    """The caller, within its account's request rate and concurrent requests.

    A plain coroutine, not a ``yield`` dependency (FastAPI's exit stack for one costs ~60 us
    a request): the concurrency slot is released by the RequestContext middleware once the
    request is over (``on_done``), whatever happened in between."""
    app = request.app
    who = Caller(request, app.state.engine, app.state.key_claims, app.state.limits)
    account = who.claimed
    if account is None:
        account = await who.verified()
    else:
        who.state["account"] = account
    try:
        who.limits.take(account)
        who.taken = account
        slot = await who.limits.acquire(account)
    except RateLimitError:
        if who.account is None:  # a 401 for a bad key comes before any 429
            await who.verified()
        raise
    if slot is not None:
        on_done(request, slot.release)
    return who


def on_done(request: Request, release: Callable[[], object]) -> None:
    """Call ``release`` when the request is over (server/middleware.py: RequestContext)."""
    request.scope.setdefault("state", {}).setdefault(ON_DONE, []).append(release)


AuthCaller = Annotated[Caller, Depends(caller)]
