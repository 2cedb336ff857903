"""The server log names requests by route and id, never by their user data: no query text,
session name, content or key, in either format, unless --log-user-data asks for it."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest

from tests.servers import ServerProcess

ACCESS_FIELDS = {
    "time",
    "level",
    "request_id",
    "method",
    "route",
    "status",
    "duration_ms",
    "account",
}


def talk(server: ServerProcess, secret: str) -> tuple[list[str], list[str]]:
    """Requests carrying ``secret`` in a query, a session, content, metadata and a path;
    returns (the request ids, the strings that must not be logged)."""
    issued = server.key("logs-" + uuid.uuid4().hex[:6])
    auth = {"Authorization": f"Bearer {issued.key}"}
    session = f"session{secret}"
    ids = []
    with httpx.Client(base_url=server.url, headers=auth, timeout=60) as client:
        responses = [
            client.post(
                "/v1/memory/remember",
                json={
                    "content": f"content {secret}",
                    "session": session,
                    "metadata": {"k": secret},
                },
            ),
            client.get("/v1/memory/recall", params={"q": f"query {secret}", "session": session}),
            client.post("/v1/memory/recall", json={"query": f"query {secret}", "session": session}),
            client.get("/v1/memory", params={"session": session}),
            client.delete("/v1/memory", params={"session": session}),
            client.get(f"/v1/memory/{secret}"),
            client.get(f"/nowhere/{secret}", params={"q": secret}),
        ]
        for r in responses:
            assert r.status_code < 500
            ids.append(r.headers["x-request-id"])
    time.sleep(0.2)  # let the log lines reach the file
    return ids, [secret, issued.key, issued.key[8:20]]


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_the_log_names_requests_without_their_user_data(tmp_path, log_format):
    server = ServerProcess(tmp_path / "data", args=["--log-format", log_format]).start()
    try:
        secret = "Quokka" + uuid.uuid4().hex[:8]
        request_ids, forbidden = talk(server, secret)
        log = server.log()
    finally:
        server.stop()
    for request_id in request_ids:
        assert request_id in log
    for word in forbidden:
        assert word not in log
    assert "?q=" not in log and "session=" not in log  # uvicorn's own access log is off
    if log_format == "json":
        lines = [line for line in log.splitlines() if line.startswith("{")]
        entries = [json.loads(line) for line in lines]
        access = [e for e in entries if e.get("request_id") in request_ids]
        assert len(access) == len(request_ids)
        for entry in access:
            assert entry.keys() >= ACCESS_FIELDS
        by_route = {(e["method"], e["route"], e["status"]) for e in access}
        assert ("GET", "/v1/memory/recall", 200) in by_route
        assert ("GET", "/v1/memory/{memory_id}", 404) in by_route
        assert ("GET", "unmatched", 404) in by_route
        assert all(e["account"].startswith("acc_") for e in access if e["route"] != "unmatched")
        # Every line of the log, uvicorn's too, is one JSON object (after the first-run notice
        # of the new key, printed before logging starts).
        after_notice = log[log.index("\n{") + 1 :]
        assert all(line.startswith("{") for line in after_notice.splitlines() if line)
    else:
        line = next(line for line in log.splitlines() if request_ids[1] in line)
        assert "GET /v1/memory/recall 200" in line and "account=acc_" in line


def test_log_user_data_is_an_explicit_debug_option(tmp_path):
    server = ServerProcess(
        tmp_path / "data", args=["--log-format", "json", "--log-user-data"]
    ).start()
    try:
        secret = "Wombat" + uuid.uuid4().hex[:8]
        request_ids, forbidden = talk(server, secret)
        log = server.log()
    finally:
        server.stop()
    entries = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    recall = next(e for e in entries if e.get("request_id") == request_ids[1])
    assert secret in recall["target"] and recall["target"].startswith("/v1/memory/recall?q=")
    assert forbidden[1] not in log  # keys are never logged, even then
