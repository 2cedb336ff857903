"""`memstore serve --metrics`: a Prometheus scrape of a real server counts what it did,
sums over workers, and never carries an account, session, key or content in a label."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from memstore.engine import month_bounds
from memstore.metrics import STAGES
from memstore.stores import open_store
from tests.servers import ServerProcess

Samples = dict[tuple[str, frozenset], float]


def scrape(server: ServerProcess) -> Samples:
    r = httpx.get(server.url + "/metrics", timeout=30)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def metered(tmp_path_factory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("metered") / "data", args=["--metrics"])
    yield server.start()
    server.stop()


def test_metrics_are_off_unless_enabled(server):
    r = httpx.get(server.url + "/metrics", timeout=30)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


def test_a_scrape_counts_a_known_sequence_of_requests(metered):
    key = metered.key("counted-" + uuid.uuid4().hex[:6], plan="free").key
    before = scrape(metered)
    with httpx.Client(base_url=metered.url, headers=auth(key), timeout=60) as client:
        for i in range(3):
            r = client.post("/v1/memory/remember", json={"content": f"fact {i}", "session": "s"})
            assert r.status_code == 201
        assert (
            client.post(
                "/v1/memory/remember", json={"content": "fact 0", "session": "s"}
            ).status_code
            == 200
        )
        for q in ("fact", "another fact"):
            assert (
                client.get("/v1/memory/recall", params={"q": q, "session": "s"}).status_code == 200
            )
        assert (
            client.post("/v1/memory/recall", json={"query": "fact", "session": "s"}).status_code
            == 200
        )
        assert client.get("/v1/memory/mem_000000000000000000000000").status_code == 404
        assert client.get("/v1/usage", headers=auth("am_live_wrong")).status_code == 401
        assert client.get("/no/such/route").status_code == 404
        big = b"x" * (2 * 1024 * 1024)  # refused before routing, still named by its route
        assert client.post("/v1/memory/remember", content=big).status_code == 413
    after = scrape(metered)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    expected = {
        ("/v1/memory/remember", "POST", "201"): 3,
        ("/v1/memory/remember", "POST", "200"): 1,
        ("/v1/memory/recall", "GET", "200"): 2,
        ("/v1/memory/recall", "POST", "200"): 1,
        ("/v1/memory/{memory_id}", "GET", "404"): 1,
        ("/v1/usage", "GET", "401"): 1,
        ("unmatched", "GET", "404"): 1,
        ("/v1/memory/remember", "POST", "413"): 1,
    }
    for (route, method, status), count in expected.items():
        labels = {"route": route, "method": method, "status": status}
        assert delta("memstore_http_requests_total", **labels) == count, labels
        assert delta("memstore_http_request_duration_seconds_count", **labels) == count, labels
        assert delta("memstore_http_request_duration_seconds_bucket", le="+Inf", **labels) == count
    for stage in STAGES:
        assert delta("memstore_recall_stage_duration_seconds_count", stage=stage) == 3, stage
    assert delta("memstore_operations_total", op="remember", plan="free") == 4
    assert delta("memstore_operations_total", op="recall", plan="free") == 3
    assert delta("memstore_embedding_wait_seconds_count") >= 5  # 3 new memories, 2 new queries
    assert delta("memstore_memories") == 3
    assert delta("memstore_sessions") == 1
    assert value(after, "memstore_accounts", plan="free") >= 1
    assert value(after, "memstore_database_bytes") > 0
    assert value(after, "memstore_purge_runs_total") >= 1
    assert value(after, "memstore_embedding_waiting") == 0


def test_quota_refusals_are_counted_by_plan(metered):
    issued = metered.key("quota-" + uuid.uuid4().hex[:6], plan="free")
    store = open_store(data_dir=str(metered.data_dir))
    try:  # use up all but one of the month's 1,000 operations
        assert store.add_usage(issued.account_id, month_bounds(time.time())[0], 999, None) == 999
    finally:
        store.close()
    before = scrape(metered)
    batch = {"memories": [{"content": "one"}, {"content": "two"}]}
    r = httpx.post(
        metered.url + "/v1/memory/remember/batch", json=batch, headers=auth(issued.key), timeout=60
    )
    assert r.status_code == 429
    after = scrape(metered)
    refused = value(after, "memstore_quota_refusals_total", plan="free") - value(
        before, "memstore_quota_refusals_total", plan="free"
    )
    assert refused == 1
    labels = {"route": "/v1/memory/remember/batch", "method": "POST", "status": "429"}
    assert value(after, "memstore_http_requests_total", **labels) == 1


def test_no_label_or_value_carries_user_data(metered):
    secret = "Xylophone" + uuid.uuid4().hex[:8]
    issued = metered.key("acct" + secret)
    with httpx.Client(base_url=metered.url, headers=auth(issued.key), timeout=60) as client:
        r = client.post(
            "/v1/memory/remember",
            json={
                "content": f"content {secret}",
                "session": f"session{secret}",
                "metadata": {"k": secret},
            },
        )
        memory_id = r.json()["id"]
        client.get(
            "/v1/memory/recall", params={"q": f"query {secret}", "session": f"session{secret}"}
        )
        client.post("/v1/memory/recall", json={"query": secret, "filters": {"k": secret}})
        client.get(f"/v1/memory/{memory_id}")
        client.get(f"/v1/memory/{secret}")
        client.get(f"/{secret}/{secret}", params={"session": secret})
        client.delete("/v1/memory", params={"session": f"session{secret}"})
        client.get("/v1/usage", headers=auth(f"am_live_{secret}"))
    text = httpx.get(metered.url + "/metrics", timeout=30).text
    forbidden = [secret, issued.key, issued.key[8:20], issued.account_id, issued.key_id, memory_id]
    for word in forbidden:
        assert word not in text
    samples = scrape(metered)
    for _, labels in samples:
        for _, label_value in labels:
            assert not any(word in label_value for word in forbidden)
    routes = {v for _, labels in samples for k, v in labels if k == "route"}
    assert routes <= {
        "/v1/memory/remember",
        "/v1/memory/remember/batch",
        "/v1/memory/recall",
        "/v1/memory/{memory_id}",
        "/v1/memory",
        "/v1/usage",
        "/metrics",
        "/readyz",
        "unmatched",
    }


def served_by(server: ServerProcess, request_ids: set[str]) -> set[int]:
    """The worker pids whose JSON access log lines name one of ``request_ids``."""
    entries = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    return {e["pid"] for e in entries if e.get("request_id") in request_ids}


def test_counters_add_up_across_workers(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMSTORE_METRICS", "true")  # the same as --metrics
    server = ServerProcess(tmp_path / "data", workers=2, args=["--log-format", "json"]).start()
    try:
        sent: set[str] = set()
        while len(sent) < 300:
            for _ in range(20):  # a new connection each time, so either worker may take it
                r = httpx.get(server.url + "/healthz", timeout=30)
                assert r.status_code == 200
                sent.add(r.headers["x-request-id"])
            if len(served_by(server, sent)) == 2:
                break
        assert len(served_by(server, sent)) == 2, "both workers answered"
        labels = {"route": "/healthz", "method": "GET", "status": "200"}
        counts = {value(scrape(server), "memstore_http_requests_total", **labels) for _ in range(6)}
        assert counts == {len(sent)}
    finally:
        server.stop()
