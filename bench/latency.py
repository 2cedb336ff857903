"""Recall latency, remember throughput and memory growth: memstore next to its peers.

One run measures, at 1k, 10k, 100k (... up to --n) memories in one account and one session:

- memstore through the SDK's local mode and over HTTP to a real ``memstore serve`` process:
  recall p50/p95/p99 with distinct, never-seen queries (so the query is really embedded),
  the same queries again (query-vector cache warm), remember single and batched, server RSS;
- the same vectors, texts and queries through CrewAI 1.15's default memory storage
  (``crewai.memory.storage.lancedb_storage.LanceDBStorage``, as ``Memory()`` configures it)
  and through chromadb's ``PersistentClient`` (cosine HNSW), with recall@10 of each against
  exact search.

Corpus: every LoCoMo turn (--data) is embedded for real with e5; beyond those, memory ``i``
repeats text ``i mod B`` tagged with ``[i // B]`` and gets that text's vector plus isotropic
Gaussian noise (--jitter, relative norm; cos(original, derived) ~ 1/sqrt(1 + jitter^2)),
renormalised. Queries are real LoCoMo questions embedded by the real embedder at query time.
Remember throughput is measured on real texts embedded during the measurement.

    .venv/bin/python bench/latency.py --n 100000            # README figures
    .venv/bin/python bench/latency.py --n 10000 --json      # quick; JSON on the last line
    .venv/bin/python bench/latency.py --postgres            # also over a throwaway pgserver

The host's speed drifts by more than the margins measured here (the embedding alone moved by
15% between two sizes of one run), so what is compared is measured side by side: each cold
pass alternates, query by query, the query's embedding alone with memstore's cold recall of
the same query, and the peers search that embedding's vector right then (a peer's cold
recall = that embedding + its search); the cached local and HTTP recalls alternate likewise,
with the local engine and the server open over the same store.

Each size also gets memstore's ratio to the fastest peer whose recall@10 is >= 0.95 (p50 and
p99, local and HTTP) and to the query embedding alone; --json carries them per size in
"growth" and, for the largest size, at the top level.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from memstore import Memstore  # noqa: E402
from memstore.accounts import DEFAULT_ACCOUNT, Accounts  # noqa: E402
from memstore.embedding import load_embedder  # noqa: E402
from memstore.models import content_hash, new_memory_id  # noqa: E402
from memstore.server.auth import issue_key  # noqa: E402
from memstore.stores.base import MemoryRow  # noqa: E402
from memstore.stores.sqlite import SQLiteStore  # noqa: E402

DEFAULT_DATA = "/work/shared/data/locomo-dev.json"
SESSION = "bench"
LEVELS = (1_000, 10_000, 100_000, 1_000_000)
K = 10


# -- data
def load_texts(data: str | None, want_queries: int) -> tuple[list[str], list[str], str]:
    """(memory texts, distinct query texts, description) from LoCoMo, else generated."""
    if data and Path(data).exists():
        samples = json.loads(Path(data).read_text())
        turns = [
            t["text"]
            for s in samples
            for key, value in s["conversation"].items()
            if key.startswith("session_") and isinstance(value, list)
            for t in value
        ]
        questions = [
            q["question"] for s in samples for q in s["qa"] if q.get("category") in (1, 2, 3, 4)
        ]
        texts = list(dict.fromkeys(turns))
        queries = list(dict.fromkeys(questions))[:want_queries]
        return texts, queries, f"LoCoMo turns ({data})"
    rng = np.random.default_rng(7)
    who = ["Ana", "Ben", "Chen", "Dara", "Eli", "Femi", "Gus", "Hana"]
    did = ["finished", "reviewed", "started", "paused", "shipped", "documented", "tested"]
    what = [
        "the API client",
        "the billing report",
        "the onboarding flow",
        "the search index",
        "the pricing page",
        "the mobile app",
        "the data export",
        "the audit log",
    ]
    why = [
        "for the Q3 launch",
        "after the outage",
        "for a customer in Berlin",
        "because tests were flaky",
        "to cut latency",
        "before the board meeting",
    ]
    texts = list(
        dict.fromkeys(
            f"{rng.choice(who)} {rng.choice(did)} {rng.choice(what)} {rng.choice(why)}."
            for _ in range(6000)
        )
    )
    queries = list(
        dict.fromkeys(
            f"What did {rng.choice(who)} do with {rng.choice(what)}?"
            for _ in range(4 * want_queries)
        )
    )[:want_queries]
    return texts, queries, "generated sentences"


def embed_corpus(embedder: Any, texts: list[str], cache_dir: Path) -> tuple[np.ndarray, float]:
    """Real e5 passage vectors for ``texts`` (cached on disk by content), and texts/s."""
    digest = hashlib.sha256("\n".join([embedder.name, *texts]).encode()).hexdigest()[:16]
    path = cache_dir / f"corpus-{digest}.npy"
    if path.exists():
        return np.load(path), float("nan")
    start = time.perf_counter()
    vectors = np.concatenate(
        [embedder.embed_documents(texts[i : i + 64]) for i in range(0, len(texts), 64)]
    )
    rate = len(texts) / (time.perf_counter() - start)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors, rate


class Corpus:
    """Memory ``i``: base text/vector ``i mod B``, derived (tagged text, jittered vector) past B."""

    def __init__(self, texts: list[str], vectors: np.ndarray, jitter: float, seed: int = 1):
        self.texts, self.base, self.jitter, self.seed = texts, vectors, jitter, seed

    def chunk(self, start: int, stop: int) -> tuple[list[str], np.ndarray]:
        b = len(self.texts)
        idx = np.arange(start, stop)
        vectors = self.base[idx % b].copy()
        derived = idx >= b
        if derived.any():
            vectors[derived] += self._noise(start, stop)[derived]
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        texts = [self.texts[i % b] if i < b else f"{self.texts[i % b]} [{i // b}]" for i in idx]
        return texts, vectors.astype(np.float32)

    def _noise(self, start: int, stop: int) -> np.ndarray:
        """Noise rows [start, stop), the same whatever the chunking (seeded per 1,000 rows)."""
        dim, blocks = self.base.shape[1], []
        for block in range(start // 1000, (stop - 1) // 1000 + 1):
            rng = np.random.default_rng((self.seed, block))
            blocks.append(rng.standard_normal((1000, dim), np.float32))
        noise = np.concatenate(blocks)[start % 1000 : start % 1000 + stop - start]
        return noise * (self.jitter / np.sqrt(dim))

    def chunks(
        self, start: int, stop: int, size: int
    ) -> Iterator[tuple[int, list[str], np.ndarray]]:
        for lo in range(start, stop, size):
            hi = min(stop, lo + size)
            yield (lo, *self.chunk(lo, hi))


# -- measurement helpers


def corpus_options(ap: argparse.ArgumentParser) -> None:
    """``--data`` and ``--cache-dir``, the options of every bench over this corpus."""
    ap.add_argument("--data", default=DEFAULT_DATA, help="LoCoMo json (else generated text)")
    ap.add_argument(
        "--cache-dir",
        default=str(Path.home() / ".cache" / "memstore-bench"),
        help="where the corpus' vectors are kept between runs",
    )


def bench_corpus(
    data: str | None, want_queries: int, cache_dir: str | Path
) -> tuple[Any, Corpus, list[str]]:
    """The shared opening of the benches over this corpus: the embedder, ``data``'s texts
    with their real vectors (derived ones at jitter 0.35) and ``want_queries`` queries."""
    embedder = load_embedder()
    texts, queries, _ = load_texts(data, want_queries)
    vectors, _ = embed_corpus(embedder, texts, Path(cache_dir))
    return embedder, Corpus(texts, vectors, 0.35), queries


def pct(samples_ms: list[float]) -> dict[str, float]:
    a = np.asarray(samples_ms)
    return {
        "p50": float(np.percentile(a, 50)),
        "p95": float(np.percentile(a, 95)),
        "p99": float(np.percentile(a, 99)),
        "mean": float(a.mean()),
    }


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return (time.perf_counter() - start) * 1000, out


def recall_at_k(found: list[list[int]], exact: np.ndarray) -> float:
    hits = [len(set(f[:K]) & set(e.tolist())) for f, e in zip(found, exact, strict=True)]
    return float(np.mean(hits) / K)


def exact_top_k(matrix: np.ndarray, qvecs: np.ndarray) -> np.ndarray:
    out = []
    for lo in range(0, len(qvecs), 64):
        scores = qvecs[lo : lo + 64] @ matrix.T
        top = np.argpartition(-scores, K - 1, axis=1)[:, :K]
        out.append(top)
    return np.concatenate(out)


def rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# -- memstore
def fill_memstore(data_dir: Path, corpus: Corpus, start: int, stop: int) -> list[str]:
    """Insert memories [start, stop) with precomputed vectors straight into the store."""
    store = SQLiteStore(data_dir / "memstore.db", synchronous="OFF")
    ids: list[str] = []
    try:
        account_id = Accounts(store).ensure(DEFAULT_ACCOUNT).id  # the one Memstore.local uses
        now = time.time()
        for _, texts, vectors in corpus.chunks(start, stop, 2000):
            rows = [
                MemoryRow(
                    id=new_memory_id(),
                    account_id=account_id,
                    session=SESSION,
                    content=t,
                    content_hash=content_hash(t),
                    created_at=now,
                    updated_at=now,
                )
                for t in texts
            ]
            for row, _ in store.insert(rows, vectors):
                ids.append(row.id)
    finally:
        store.close()
    return ids


def recall_pass(call: Callable[[str], Any], queries: list[str]) -> list[float]:
    return [timed(lambda q=q: call(q))[0] for q in queries]


def side_by_side(
    i: int, first: Callable[[], Any], second: Callable[[], Any]
) -> tuple[tuple[float, Any], tuple[float, Any]]:
    """``first()`` and ``second()``, each timed as (ms, result); the order alternates with
    ``i`` (odd: ``second`` runs first), so that neither always runs on a warmer cache."""
    if i % 2:
        later = timed(second)
        return timed(first), later
    earlier = timed(first)
    return earlier, timed(second)


def cold_pass(
    embedder: Any, recall: Callable[[str], Any], queries: list[str], peers: list[Any]
) -> tuple[list[float], list[float], dict[str, tuple[list[float], list[list[str]]]]]:
    """One pass over never-seen queries, interleaved so that the host's drift cancels in the
    ratios: per query, the query's embedding alone and memstore's cold recall of it
    (``side_by_side``), then each peer's search of that embedding's vector. Returns the
    embedding times, the recall times, and per peer (search times, ids found)."""
    embed_ms: list[float] = []
    recall_ms: list[float] = []
    searches: dict[str, tuple[list[float], list[list[str]]]] = {p.name: ([], []) for p in peers}
    for i, q in enumerate(queries):
        (e_ms, vector), (r_ms, _) = side_by_side(
            i, lambda q=q: embedder.embed_query(q), lambda q=q: recall(q)
        )
        embed_ms.append(e_ms)
        recall_ms.append(r_ms)
        for peer in peers:
            s_ms, ids = timed(lambda v=vector, peer=peer: peer.search(v))
            searches[peer.name][0].append(s_ms)
            searches[peer.name][1].append(ids)
    return embed_ms, recall_ms, searches


def alternating_pass(
    first: Callable[[str], Any], second: Callable[[str], Any], queries: list[str]
) -> tuple[list[float], list[float]]:
    """Both calls on every query (``side_by_side``); (first's times, second's times)."""
    a: list[float] = []
    b: list[float] = []
    for i, q in enumerate(queries):
        (a_ms, _), (b_ms, _) = side_by_side(i, lambda q=q: first(q), lambda q=q: second(q))
        a.append(a_ms)
        b.append(b_ms)
    return a, b


def remember_rates(
    ms: Memstore, embedder: Any, texts: list[str], session: str, singles: int
) -> dict[str, Any]:
    """Single remembers of the first ``singles`` texts, each beside the embedding of the same
    text alone (``side_by_side``: the embedder keeps no cache), then batched-100 remembers
    of all: rates per second, and the single remember's p50 over that embedding's."""
    remember_ms: list[float] = []
    embed_ms: list[float] = []
    embed = embedder.embed_documents
    for i, t in enumerate(texts[:singles]):
        (e_ms, _), (r_ms, _) = side_by_side(
            i, lambda t=t: embed([t]), lambda t=t: ms.remember(t, session=session + "-single")
        )
        remember_ms.append(r_ms)
        embed_ms.append(e_ms)
    start = time.perf_counter()
    for i in range(0, len(texts), 100):
        batch_items = [{"content": t, "session": session + "-batch"} for t in texts[i : i + 100]]
        ms.remember_many(batch_items)
    return {
        "single_per_s": 1000 * len(remember_ms) / sum(remember_ms),
        "batch_per_s": len(texts) / (time.perf_counter() - start),
        "single_p50_ms": float(np.percentile(remember_ms, 50)),
        "single_over_embed_p50_ms": float(np.percentile(np.subtract(remember_ms, embed_ms), 50)),
        "passage_embed_p50_ms": float(np.percentile(embed_ms, 50)),
    }


class Server:
    """A real ``memstore serve`` subprocess on a free loopback port."""

    def __init__(self, data_dir: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        exe = Path(sys.executable).parent / "memstore"
        self.log = open(data_dir.parent / f"server-{self.port}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                str(exe),
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(data_dir),
                "--log-level",
                "warning",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 600.0) -> None:
        import httpx

        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"memstore serve exited early; see {self.log.name}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("memstore serve did not become ready")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# -- peers
class LancePeer:
    """CrewAI 1.15's default memory storage, used directly with our vectors."""

    name = "crewai-lancedb"

    def __init__(self, path: Path, dim: int) -> None:
        from crewai.memory.storage.lancedb_storage import LanceDBStorage

        self.storage = LanceDBStorage(path=path, vector_dim=dim)

    def add(self, texts: list[str], vectors: np.ndarray, scope: str = "/") -> list[str]:
        from crewai.memory.types import MemoryRecord

        records = [
            MemoryRecord(content=t, scope=scope, embedding=v.tolist())
            for t, v in zip(texts, vectors, strict=True)
        ]
        self.storage.save(records)
        return [r.id for r in records]

    def remove(self, ids: list[str]) -> None:
        self.storage.delete(record_ids=ids)

    def settle(self) -> None:
        self.storage.optimize()  # what CrewAI does every 100 saves, done once before measuring

    def search(self, vector: np.ndarray) -> list[str]:
        return [r.id for r, _ in self.storage.search(vector.tolist(), limit=K)]


class ChromaPeer:
    """chromadb PersistentClient, cosine HNSW, precomputed embeddings."""

    name = "chromadb"

    def __init__(self, path: Path, dim: int) -> None:
        import chromadb

        self.client = chromadb.PersistentClient(path=str(path))
        self.col = self.client.get_or_create_collection(
            "bench", metadata={"hnsw:space": "cosine"}, embedding_function=None
        )
        self.max_batch = self.client.get_max_batch_size()

    def add(self, texts: list[str], vectors: np.ndarray, scope: str = "/") -> list[str]:
        ids = [uuid.uuid4().hex for _ in texts]
        for lo in range(0, len(texts), self.max_batch):
            hi = lo + self.max_batch
            self.col.add(
                ids=ids[lo:hi],
                embeddings=vectors[lo:hi],
                documents=texts[lo:hi],
                metadatas=[{"scope": scope}] * len(ids[lo:hi]),
            )
        return ids

    def remove(self, ids: list[str]) -> None:
        for lo in range(0, len(ids), self.max_batch):
            self.col.delete(ids=ids[lo : lo + self.max_batch])

    def settle(self) -> None:
        pass

    def search(self, vector: np.ndarray) -> list[str]:
        res = self.col.query(query_embeddings=[vector], n_results=K, include=["documents"])
        return res["ids"][0]


# -- one size
def measure_level(
    n: int,
    args: argparse.Namespace,
    embedder: Any,
    corpus: Corpus,
    queries: list[str],
    extra_texts: list[str],
    work: Path,
    peers: list[Any],
    filled: dict[str, int],
    peer_ids: dict[str, list[str]],
) -> dict[str, Any]:
    out: dict[str, Any] = {"n": n, "load_before": load_average()}
    data_dir = work / "memstore"
    data_dir.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    fill_memstore(data_dir, corpus, filled["memstore"], n)
    filled["memstore"] = n
    out["fill_s"] = time.perf_counter() - t0

    matrix = np.concatenate([v for _, _, v in corpus.chunks(0, n, 50_000)])
    qvecs = np.stack([embedder.embed_query(q) for q in queries])
    exact = exact_top_k(matrix, qvecs)
    del matrix

    # the peers are filled first, so that their searches join memstore's cold pass below
    for peer in peers:
        t0 = time.perf_counter()
        for _, ptexts, pvecs in corpus.chunks(filled[peer.name], n, 1000):
            peer_ids[peer.name] += peer.add(ptexts, pvecs)
        peer.settle()
        filled[peer.name] = n
        out[peer.name] = {"fill_s": time.perf_counter() - t0}
        peer.search(qvecs[0])

    # (a) SDK local mode
    ms = Memstore.local(data_dir, embedder=embedder)
    engine = ms.backend.engine
    account_id = ms.backend.account_id
    engine.recall(account_id, "warm up the index", session=SESSION)
    engine._queries.clear()  # the per-account query-vector LRU
    local = lambda q: ms.recall(q, session=SESSION, limit=K)  # noqa: E731
    paired_embed_ms, local_ms, searches = cold_pass(embedder, local, queries, peers)
    out["query_embed"] = pct(paired_embed_ms)
    out["local_recall"] = pct(local_ms)
    store = engine.store
    now = time.time()
    dense_ms, found = [], []
    for v in qvecs:
        ms_, hits = timed(lambda v=v: store.dense_search(account_id, [SESSION], v, K, now, None))
        dense_ms.append(ms_)
        found.append(hits)
    out["local_dense_search"] = pct(dense_ms)
    id_to_pos = {
        r[0]: i
        for i, r in enumerate(
            store._read("SELECT id FROM memories WHERE session = ? ORDER BY seq", (SESSION,))
        )
    }
    out["memstore_recall_at_10"] = recall_at_k(
        [[id_to_pos[m] for m, _ in hits] for hits in found], exact
    )

    # (b) HTTP to a real `memstore serve` over the same store, the local engine still open
    admin = SQLiteStore(data_dir / "memstore.db")
    key = issue_key(admin, DEFAULT_ACCOUNT).key
    admin.close()
    server = Server(data_dir)
    t0 = time.perf_counter()
    texts = extra_texts[: args.remember]
    try:
        server.wait_ready()
        remote = Memstore(api_key=key, base_url=server.url)
        remote.recall("warm up the index", session=SESSION)
        out["http_first_recall_s"] = time.perf_counter() - t0
        http = lambda q: remote.recall(q, session=SESSION, limit=K)  # noqa: E731
        embed_ms, http_ms, _ = cold_pass(embedder, http, queries, [])
        out["query_embed_http"] = pct(embed_ms)
        out["http_recall"] = pct(http_ms)
        # both query caches are warm now: local and HTTP alternate, query by query
        local_cached, http_cached = alternating_pass(local, http, queries)
        out["local_recall_cached"] = pct(local_cached)
        out["http_recall_cached"] = pct(http_cached)
        out["server_rss_mb"] = rss_mb(server.proc.pid)

        start = time.perf_counter()
        for i in range(0, len(texts), 100):
            embedder.embed_documents(texts[i : i + 100])
        out["passage_embed_per_s"] = len(texts) / (time.perf_counter() - start)
        for path, client in (("local", ms), ("http", remote)):
            rates = remember_rates(client, embedder, texts, f"remember-{path}-{n}", args.singles)
            out.update({f"{path}_remember_{key}": value for key, value in rates.items()})
        remote.close()
    finally:
        server.stop()
        ms.close()
        gc.collect()

    # peers: cold = the query's embedding in the pass above + the peer's search of its vector
    pos_of = {name: {pid: i for i, pid in enumerate(ids)} for name, ids in peer_ids.items()}
    for peer in peers:
        search_ms, found_ids = searches[peer.name]
        res = out[peer.name]
        res["recall"] = pct([e + s for e, s in zip(paired_embed_ms, search_ms, strict=True)])
        res["search"] = pct(search_ms)
        pos = pos_of[peer.name]
        res["recall_at_10"] = recall_at_k([[pos.get(i, -1) for i in f] for f in found_ids], exact)
        res.update(peer_remember(peer, embedder, texts, args.singles))
    out["load_after"] = load_average()
    return out


def peer_remember(peer: Any, embedder: Any, texts: list[str], singles: int) -> dict[str, float]:
    """The peer's remember: embed with the same embedder, then store (one call per memory,
    then batches of 100). The memories are removed again so later searches see the corpus."""
    added: list[str] = []
    start = time.perf_counter()
    for t in texts[:singles]:
        added += peer.add([t], embedder.embed_documents([t]), scope="/remember-single")
    single = singles / (time.perf_counter() - start)
    start = time.perf_counter()
    for i in range(0, len(texts), 100):
        chunk = texts[i : i + 100]
        added += peer.add(chunk, embedder.embed_documents(chunk), scope="/remember-batch")
    batch = len(texts) / (time.perf_counter() - start)
    peer.remove(added)
    return {"remember_single_per_s": single, "remember_batch_per_s": batch}


# -- report
RECALL_BAR = 0.95  # a peer counts as a rival only if its recall@10 reaches this


def ratios(lv: dict[str, Any], peer_names: list[str]) -> dict[str, Any]:
    """memstore's cold recall over the fastest peer with recall@10 >= RECALL_BAR (p50, p99)
    and over the query embedding alone, at one size."""
    out: dict[str, Any] = {
        "local_vs_embed_p50": lv["local_recall"]["p50"] / lv["query_embed"]["p50"],
        "http_vs_embed_p50": lv["http_recall"]["p50"]
        / lv.get("query_embed_http", lv["query_embed"])["p50"],
        "http_overhead_cached_p50_ms": lv["http_recall_cached"]["p50"]
        - lv["local_recall_cached"]["p50"],
    }
    rivals = [p for p in peer_names if p in lv and lv[p]["recall_at_10"] >= RECALL_BAR]
    if rivals:
        best = min(rivals, key=lambda p: lv[p]["recall"]["p50"])
        out["fastest_peer"] = best
        for path in ("local", "http"):
            for q in ("p50", "p99"):
                out[f"{path}_vs_fastest_peer_{q}"] = lv[f"{path}_recall"][q] / lv[best]["recall"][q]
    return out


def table(levels: list[dict[str, Any]], peer_names: list[str]) -> str:
    head = (
        f"{'memories':>9}  {'path':<26} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
        f"{'rec@10':>6} {'rem/s 1':>7} {'rem/s 100':>9} {'RSS MB':>7}"
    )
    lines = [head, "-" * len(head)]
    for lv in levels:
        n = lv["n"]

        def row(
            path: str,
            p: dict[str, float],
            r10: str = "",
            s1: str = "",
            sb: str = "",
            rss: str = "",
            n: int = n,
        ) -> None:
            lines.append(
                f"{n:>9,}  {path:<26} {p['p50']:>7.2f} {p['p95']:>7.2f} {p['p99']:>7.2f} "
                f"{r10:>6} {s1:>7} {sb:>9} {rss:>7}"
            )

        r10 = f"{lv['memstore_recall_at_10']:.3f}"
        row("query embed (cold)", lv["query_embed"])
        row(
            "memstore HTTP recall",
            lv["http_recall"],
            r10,
            f"{lv['http_remember_single_per_s']:.0f}",
            f"{lv['http_remember_batch_per_s']:.0f}",
            f"{lv['server_rss_mb']:.0f}",
        )
        row("memstore HTTP, cached q", lv["http_recall_cached"])
        row(
            "memstore local recall",
            lv["local_recall"],
            r10,
            f"{lv['local_remember_single_per_s']:.0f}",
            f"{lv['local_remember_batch_per_s']:.0f}",
        )
        row("memstore local, cached q", lv["local_recall_cached"])
        row("memstore dense search", lv["local_dense_search"], r10)
        for name in peer_names:
            p = lv[name]
            row(
                f"{name} recall",
                p["recall"],
                f"{p['recall_at_10']:.3f}",
                f"{p['remember_single_per_s']:.0f}",
                f"{p['remember_batch_per_s']:.0f}",
            )
            row(f"{name} search only", p["search"])
        for scope, p in lv.get("postgres", {}).items():
            r10, label = f"{p['recall_at_10']:.3f}", {"one": "1 session", "1pct": "1% session"}
            row(f"PG {label[scope]} recall", p["recall"], r10)
            row(f"PG {label[scope]}, cached q", p["recall_cached"])
            row(f"PG {label[scope]}, dense", p["search"], r10)
        r = ratios(lv, peer_names)
        rival = (
            f"vs fastest peer with rec@10 >= {RECALL_BAR} ({r['fastest_peer']}): local "
            f"{r['local_vs_fastest_peer_p50']:.2f}x p50 {r['local_vs_fastest_peer_p99']:.2f}x p99,"
            f" HTTP {r['http_vs_fastest_peer_p50']:.2f}x p50 {r['http_vs_fastest_peer_p99']:.2f}x"
            " p99; "
            if "fastest_peer" in r
            else ""
        )
        lines.append(
            f"{'':>9}  {rival}vs query embed: local {r['local_vs_embed_p50']:.2f}x, HTTP "
            f"{r['http_vs_embed_p50']:.2f}x p50; HTTP overhead (cached q) "
            f"{r['http_overhead_cached_p50_ms']:.2f} ms p50"
        )
        lines.append(
            f"{'':>9}  single remember over embedding its text alone (p50, side by side): "
            f"local {lv['local_remember_single_over_embed_p50_ms']:+.2f} ms, HTTP "
            f"{lv['http_remember_single_over_embed_p50_ms']:+.2f} ms (embedding "
            f"{lv['http_remember_passage_embed_p50_ms']:.1f} ms)"
        )
        lines.append(
            f"{'':>9}  e5 passage embedding alone: {lv['passage_embed_per_s']:.0f} texts/s "
            f"(batches of 100); load average {lv['load_before']} -> {lv['load_after']}"
        )
    return "\n".join(lines)


def summary(levels: list[dict[str, Any]], peer_names: list[str], meta: dict) -> dict[str, Any]:
    top = levels[-1]
    s: dict[str, Any] = {
        "n": top["n"],
        "http_recall_p50_ms": top["http_recall"]["p50"],
        "http_recall_p95_ms": top["http_recall"]["p95"],
        "http_recall_p99_ms": top["http_recall"]["p99"],
        "http_recall_cached_p50_ms": top["http_recall_cached"]["p50"],
        "local_recall_p50_ms": top["local_recall"]["p50"],
        "local_recall_p99_ms": top["local_recall"]["p99"],
        "local_recall_cached_p50_ms": top["local_recall_cached"]["p50"],
        "dense_search_p50_ms": top["local_dense_search"]["p50"],
        "query_embed_ms": top["query_embed"]["p50"],
        "remember_single_per_s": top["local_remember_single_per_s"],
        "remember_batch_per_s": top["local_remember_batch_per_s"],
        "http_remember_single_per_s": top["http_remember_single_per_s"],
        "http_remember_single_over_embed_p50_ms": top["http_remember_single_over_embed_p50_ms"],
        "local_remember_single_over_embed_p50_ms": top["local_remember_single_over_embed_p50_ms"],
        "http_remember_batch_per_s": top["http_remember_batch_per_s"],
        "passage_embed_per_s": top["passage_embed_per_s"],
        "recall_at_10": top["memstore_recall_at_10"],
        "server_rss_mb": top["server_rss_mb"],
    }
    for name in peer_names:
        key = name.replace("-", "_")
        p = top[name]
        s[f"{key}_recall_p50_ms"] = p["recall"]["p50"]
        s[f"{key}_recall_p99_ms"] = p["recall"]["p99"]
        s[f"{key}_search_p50_ms"] = p["search"]["p50"]
        s[f"{key}_recall_at_10"] = p["recall_at_10"]
        s[f"{key}_remember_batch_per_s"] = p["remember_batch_per_s"]
        s[f"ratio_local_vs_{key}_p50"] = top["local_recall"]["p50"] / p["recall"]["p50"]
        s[f"ratio_http_vs_{key}_p50"] = top["http_recall"]["p50"] / p["recall"]["p50"]
        s[f"ratio_cached_local_vs_{key}_search_p50"] = (
            top["local_recall_cached"]["p50"] / p["search"]["p50"]
        )
    s["growth"] = [
        {
            "n": lv["n"],
            "http_recall_p50_ms": lv["http_recall"]["p50"],
            "local_dense_search_p50_ms": lv["local_dense_search"]["p50"],
            "server_rss_mb": lv["server_rss_mb"],
            "query_embed_p50_ms": lv["query_embed"]["p50"],
            "local_recall_p50_ms": lv["local_recall"]["p50"],
            "local_recall_p99_ms": lv["local_recall"]["p99"],
            "http_recall_p99_ms": lv["http_recall"]["p99"],
            **ratios(lv, peer_names),
            **{
                f"pg_{scope}_{key}": value
                for scope, p in lv.get("postgres", {}).items()
                for key, value in (
                    ("recall_p50_ms", p["recall"]["p50"]),
                    ("recall_p99_ms", p["recall"]["p99"]),
                    ("recall_cached_p50_ms", p["recall_cached"]["p50"]),
                    ("dense_p50_ms", p["search"]["p50"]),
                    ("recall_at_10", p["recall_at_10"]),
                )
            },
        }
        for lv in levels
    ]
    s.update({f"{k}": v for k, v in ratios(top, peer_names).items()})
    s.update(meta)
    return s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10_000, help="memories at the largest size")
    corpus_options(ap)
    ap.add_argument("--queries", type=int, default=200, help="distinct queries per pass")
    ap.add_argument("--remember", type=int, default=200, help="texts per remember measurement")
    ap.add_argument("--singles", type=int, default=50, help="of those, remembered one by one")
    ap.add_argument("--jitter", type=float, default=0.35, help="noise of derived vectors")
    ap.add_argument(
        "--peers-max",
        type=int,
        default=100_000,
        help="skip the peers above this many memories (their fill is slow)",
    )
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--work-dir", help="where stores go (default: a temporary directory)")
    ap.add_argument("--json", action="store_true", help="print one JSON object last")
    ap.add_argument(
        "--postgres", action="store_true", help="also memstore local over a throwaway pgserver"
    )
    ap.add_argument("--pg-max", type=int, default=10_000, help="largest size run on PostgreSQL")
    ap.add_argument("--levels-json", help="also write every measurement of every size here")
    args = ap.parse_args()

    command = "bench/latency.py " + " ".join(sys.argv[1:])
    embedder = load_embedder()
    texts, queries, source = load_texts(args.data, args.queries)
    # Remember throughput uses texts outside the corpus' base (or re-used with a new session).
    base_vectors, embed_rate = embed_corpus(embedder, texts, Path(args.cache_dir))
    corpus = Corpus(texts, base_vectors, args.jitter)
    extra = texts[::-1]
    sizes = sorted({s for s in LEVELS if s < args.n} | {args.n})
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="memstore-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    peers: list[Any] = []
    if not args.no_peers:
        dim = embedder.dim
        peers = [LancePeer(work / "lancedb", dim), ChromaPeer(work / "chroma", dim)]
    filled = {"memstore": 0, **{p.name: 0 for p in peers}}
    peer_ids: dict[str, list[str]] = {p.name: [] for p in peers}
    levels = []
    pg = None
    if args.postgres:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from latency_pg import PostgresLevels

        pg = PostgresLevels(embedder)
        pg_qvecs = np.stack([embedder.embed_query(q) for q in queries])
    try:
        for n in sizes:
            active = [p for p in peers if n <= args.peers_max]
            lv = measure_level(
                n, args, embedder, corpus, queries, extra, work, active, filled, peer_ids
            )
            if pg is not None and n <= args.pg_max:
                lv["postgres"] = pg.measure(n, corpus, queries, pg_qvecs)
                lv["load_after"] = load_average()
            levels.append(lv)
            print(f"measured {n:,} memories (load {lv['load_after']})", file=sys.stderr)
    finally:
        if pg is not None:
            pg.close()
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    peer_names = [p.name for p in peers]
    if args.levels_json:  # bench/report.py builds its table from these
        Path(args.levels_json).write_text(json.dumps({"levels": levels, "peers": peer_names}))
    print(
        f"\nmemstore recall / remember, {source}; {len(queries)} distinct queries per pass; "
        f"corpus base {len(texts)} real e5 vectors (embedded at "
        f"{embed_rate:.0f} texts/s; nan = from cache), jitter {args.jitter}"
    )
    print(table(levels, [p for p in peer_names if all(p in lv for lv in levels)]))
    print(f"\nreproduce: .venv/bin/python {command}")
    if args.json:
        meta = {
            "command": command,
            "cpus": os.cpu_count(),
            "load": load_average(),
            "queries": len(queries),
            "source": source,
        }
        measured_peers = [p for p in peer_names if p in levels[-1]]
        print(json.dumps(summary(levels, measured_peers, meta)))


if __name__ == "__main__":
    main()
