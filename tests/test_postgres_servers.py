"""Scale-out: three `memstore serve` processes over one PostgreSQL database."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.servers import ServerProcess

pytestmark = pytest.mark.postgres


@pytest.fixture
def three_servers(pg_url, tmp_path):
    servers = []
    try:
        for i in range(3):
            servers.append(ServerProcess(tmp_path / f"s{i}", database_url=pg_url).start())
        yield servers
    finally:
        for s in servers:
            s.stop()


def test_a_write_through_one_server_is_read_through_another(three_servers):
    one, two, three = three_servers
    key = one.key("scale-out").key
    headers = {"Authorization": f"Bearer {key}"}
    made = httpx.post(
        one.url + "/v1/memory/remember",
        json={"content": "The EU region runs on Postgres 16", "session": "infra"},
        headers=headers,
        timeout=60,
    ).json()
    got = httpx.get(f"{two.url}/v1/memory/{made['id']}", headers=headers, timeout=60)
    assert got.status_code == 200 and got.json()["content"] == made["content"]
    found = httpx.get(
        three.url + "/v1/memory/recall",
        params={"q": "which database does the EU region use", "session": "infra"},
        headers=headers,
        timeout=60,
    ).json()["memories"]
    assert found[0]["id"] == made["id"]
    assert httpx.delete(f"{three.url}/v1/memory/{made['id']}", headers=headers).status_code == 200
    assert httpx.get(f"{one.url}/v1/memory/{made['id']}", headers=headers).status_code == 404


def test_the_quota_holds_across_all_servers(three_servers):
    key = three_servers[0].key("scale-quota", plan="free").key
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(headers=headers, timeout=60) as c:
        c.post(
            three_servers[0].url + "/v1/memory/remember/batch",
            json={"memories": [{"content": f"seed {i}"} for i in range(100)]},
        )
        for _ in range(8):
            c.post(
                three_servers[1].url + "/v1/memory/remember/batch",
                json={"memories": [{"content": "seed 0"}] * 100},
            )
    # 900 used; 30 clients spread over the three servers try 150 more recalls.

    def client(i: int) -> list[int]:
        url = three_servers[i % 3].url
        with httpx.Client(headers=headers, timeout=60) as c:
            return [
                c.get(url + "/v1/memory/recall", params={"q": "seed"}).status_code for _ in range(5)
            ]

    with ThreadPoolExecutor(30) as pool:
        codes = [code for batch in pool.map(client, range(30)) for code in batch]
    assert codes.count(200) == 100 and codes.count(429) == 50
    usage = httpx.get(three_servers[2].url + "/v1/usage", headers=headers).json()
    assert usage["ops_used"] == 1000
