"""A /v1 request checks its key and does its work in one worker-thread hop, with the same
401 and 429 answers as before (server/caller.py)."""

from __future__ import annotations

import anyio
import anyio.to_thread
import httpx
import pytest

from memstore.accounts import Accounts
from memstore.server.app import create_app
from memstore.server.settings import Settings


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def run(app, requests):  # type: ignore[no-untyped-def]
    """Send ``requests`` (method, path, headers) in order; the statuses and thread hops."""

    async def scenario() -> list[tuple[int, int]]:
        hops = 0
        real = anyio.to_thread.run_sync

        async def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
            nonlocal hops
            hops += 1
            return await real(*args, **kwargs)

        out = []
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for method, path, headers in requests:
                hops = 0
                anyio.to_thread.run_sync = counted
                try:
                    status = (await client.request(method, path, headers=headers)).status_code
                finally:
                    anyio.to_thread.run_sync = real
                out.append((status, hops))
        return out

    return anyio.run(scenario)


@pytest.fixture
def app(engine):  # type: ignore[no-untyped-def]
    return create_app(Settings(rate_limit_per_minute=5), engine=engine)


def test_a_known_key_is_checked_in_the_same_thread_hop_as_the_work(app, engine):
    key = Accounts(engine.store).create_key("hops").key
    got = run(app, [("GET", "/v1/sessions", auth(key))] * 3)
    assert [status for status, _ in got] == [200, 200, 200]
    assert got[0][1] == 2  # first sight of the key: checked, then the work
    assert [hops for _, hops in got[1:]] == [1, 1]


def test_a_revoked_key_is_refused_at_once_and_spends_no_rate(app, engine):
    accounts = Accounts(engine.store)
    key = accounts.create_key("revoked").key
    other = accounts.create_key("revoked").key  # the same account
    assert [s for s, _ in run(app, [("GET", "/v1/sessions", auth(key))] * 2)] == [200, 200]
    assert accounts.revoke_key(key[:14])
    refused = run(app, [("GET", "/v1/sessions", auth(key))] * 6)
    assert [s for s, _ in refused] == [401] * 6  # never 429: no rate token was kept
    answers = run(app, [("GET", "/v1/sessions", auth(other))] * 4)
    assert [s for s, _ in answers] == [200, 200, 200, 429]  # 5 a minute: 2 used above


def test_a_bad_key_gets_401_even_when_the_account_is_rate_limited(app, engine):
    accounts = Accounts(engine.store)
    key = accounts.create_key("limited").key
    statuses = [s for s, _ in run(app, [("GET", "/v1/sessions", auth(key))] * 6)]
    assert statuses == [200] * 5 + [429]
    assert accounts.revoke_key(key[:14])
    assert [s for s, _ in run(app, [("GET", "/v1/sessions", auth(key))])] == [401]


def test_an_accounts_slot_is_given_back_however_its_request_ends(engine):
    """With one concurrent request per account, every request below would wait for a slot
    (and get a 429) if an earlier one kept it: refused bodies, a route's own 422, 404s."""
    app = create_app(
        Settings(max_concurrent_per_account=1, concurrency_wait_seconds=0.2), engine=engine
    )
    key = Accounts(engine.store).create_key("one-slot").key
    requests = [
        ("DELETE", "/v1/memory", auth(key)),  # refused by the route before its work: 422
        ("GET", "/v1/memory/recall", auth(key)),  # no q: FastAPI's 422
        ("GET", "/v1/memory/mem_missing", auth(key)),  # the work raises: 404
        ("GET", "/v1/sessions", auth(key)),
    ]
    statuses = [s for s, _ in run(app, requests * 2)]
    assert statuses == [422, 422, 404, 200] * 2
