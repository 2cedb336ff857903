"""Load on loopback through bench/load.py: no errors under 50 concurrent clients, and the
free plan's 1,000 operations hold however many clients race for them."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from bench.load import run_load
from tests.reliability.conftest import auth

pytestmark = pytest.mark.reliability


def test_50_clients_mixing_remember_and_recall_get_no_errors(server):
    key = server.key(f"load-{uuid.uuid4().hex[:6]}").key
    report = asyncio.run(run_load(server.url, key, clients=50, duration=10, max_requests=5_000))
    print("load:", report.summary())
    assert report.errors == 0, report.summary()
    assert report.requests >= 50 and report.ops_ok > 0


@pytest.mark.slow
def test_50_clients_for_60_seconds_get_no_errors(server):
    key = server.key(f"load-{uuid.uuid4().hex[:6]}").key
    report = asyncio.run(run_load(server.url, key, clients=50, duration=60, max_requests=100_000))
    print("load:", report.summary())
    assert report.errors == 0, report.summary()


def test_50_clients_on_a_free_key_never_get_past_1000_ops(server):
    key = server.key(f"free-{uuid.uuid4().hex[:6]}", plan="free").key
    with httpx.Client(base_url=server.url, headers=auth(key), timeout=60) as http:
        for _ in range(5):  # 500 ops up front; duplicates count but skip the embedding
            batch = {"memories": [{"content": "warm up"}] * 100}
            assert http.post("/v1/memory/remember/batch", json=batch).status_code == 201
    # A tiny vocabulary: texts repeat, so the race is about the quota, not embedding time.
    report = asyncio.run(
        run_load(
            server.url,
            key,
            clients=50,
            duration=120,
            max_requests=700,
            words=("quota", "race"),
            unique=False,
        )
    )
    print("quota race:", report.summary())
    with httpx.Client(base_url=server.url, headers=auth(key)) as http:
        used = http.get("/v1/usage").json()["ops_used"]
    assert report.errors == 0, report.summary()
    assert report.statuses[429] > 0
    assert used == 500 + report.ops_ok <= 1000
    assert used >= 995  # the cap was reached, give or take a refused batch of 5


def test_load_spreads_clients_over_several_servers_and_counts_what_they_embed(server):
    """bench/load.py --servers N: client n talks to server n mod N; every remembered text is
    unique, so the memories stored are the texts the servers embedded for remembers."""
    from tests.servers import ServerProcess

    second = ServerProcess(server.data_dir).start()  # the same store, another process
    try:
        key = server.key(f"spread-{uuid.uuid4().hex[:6]}").key
        urls = [server.url, second.url]
        report = asyncio.run(run_load(urls, key, clients=6, duration=3, max_requests=60))
    finally:
        second.stop()
    assert report.errors == 0, report.summary()
    assert set(report.by_server) == set(urls) and min(report.by_server.values()) > 0
    with httpx.Client(base_url=server.url, headers=auth(key)) as http:
        stored = sum(s["count"] for s in http.get("/v1/sessions").json()["sessions"])
    assert stored == report.passages_ok > 0
    assert report.summary()["embeddings_per_request"] > 0
